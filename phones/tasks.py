"""Celery tasks of the phone side: device-log retention on each server, the downloads
nginx logged on each server, and the observation job that judges staged rollouts."""

from __future__ import annotations

import datetime as dt

from celery import shared_task
from django.conf import settings
from django.core.cache import cache
from django.utils import timezone

from phones.services.download_log import download_log_read
from phones.services.fleet_metrics import fleet_metrics_compute
from phones.services.log_retention import server_logs_clear
from phones.services.rollout_watch import rollouts_observe
from portal.models import Server
from portal.selectors import log_config_effective
from portal.services.audit import Actor
from portal.tasks import this_server


@shared_task
def device_logs_retention_task() -> int:
    """Beat (hourly): every server applies its retention to the logs on its own disk."""
    fqdns = list(Server.objects.values_list("fqdn", flat=True))
    for fqdn in fqdns:
        server_logs_retention_task.delay(server_fqdn=fqdn)
    return len(fqdns)


@shared_task
def server_logs_retention_task(*, server_fqdn: str) -> dict[str, int] | None:
    """On the server's own queue: delete logs older than LogCleanUpInterval, once a day,
    in the hour of LogCleanUpTimeOfDay when one is set."""
    server = this_server(server_fqdn)
    if server is None:
        return None
    config = log_config_effective(site=server.pool.site)
    now = timezone.now()
    if config.log_cleanup_time_of_day is not None and (
        now.hour != config.log_cleanup_time_of_day.hour
    ):
        return None
    ran_key = f"phones:logs-retention:{server_fqdn}:{now.date().isoformat()}"
    if not cache.add(ran_key, 1, timeout=2 * 86400):
        return None  # already ran today
    result = server_logs_clear(
        older_than=now - dt.timedelta(days=config.log_cleanup_interval_days),
        actor=Actor.system("retention"),
    )
    return {"device_logs": result.device_logs, "audit_rows": result.audit_rows}


@shared_task
def server_logs_clear_task(*, server_fqdn: str, days_back: int) -> dict[str, int] | None:
    """On the server's own queue: clear logs older than ``days_back`` days on demand."""
    if this_server(server_fqdn) is None:
        return None
    result = server_logs_clear(
        older_than=timezone.now() - dt.timedelta(days=days_back),
        actor=Actor.system("clear_device_update_logs"),
    )
    return {"device_logs": result.device_logs, "audit_rows": result.audit_rows}


@shared_task
def rollouts_observe_task() -> list[str]:
    """Beat (every minute): observed outcomes from the new checks and downloads, then
    each running rollout against its gates; a run while another is going is skipped."""
    return rollouts_observe().lines()


@shared_task
def download_logs_read_task() -> int:
    """Beat (every minute): every server reads the downloads its nginx logged."""
    fqdns = list(Server.objects.values_list("fqdn", flat=True))
    for fqdn in fqdns:
        server_download_log_read_task.delay(server_fqdn=fqdn)
    return len(fqdns)


@shared_task
def server_download_log_read_task(*, server_fqdn: str) -> dict[str, int] | None:
    """On the server's own queue: the whole image downloads nginx logged since the last
    run become DownloadEvent rows (a bounded chunk; the next run goes on)."""
    server = this_server(server_fqdn)
    if server is None:
        return None
    result = download_log_read(server=server.fqdn, log=settings.DOWNLOAD_ACCESS_LOG)
    return {
        "lines": result.lines,
        "recorded": result.recorded,
        "ignored": result.ignored,
        "malformed": result.malformed,
        "offset": result.offset,
        "more": int(result.more),
        "busy": int(result.busy),
    }


@shared_task
def fleet_metrics_task() -> int:
    """Beat: recount the fleet gauges /metrics serves; returns the servers counted."""
    return len(fleet_metrics_compute()["servers"])
