"""Celery tasks of the control panel: thin interfaces over services."""

from __future__ import annotations

from datetime import timedelta

from celery import shared_task
from django.conf import settings

from portal.models import Server
from portal.services.topology import server_record_heartbeat


@shared_task
def server_heartbeat_task(*, server_fqdn: str) -> bool:
    """Runs on the server's own queue, so its success proves that worker consumes it."""
    return server_record_heartbeat(fqdn=server_fqdn)


@shared_task
def servers_heartbeat_task() -> int:
    """Beat: send a heartbeat to every server's queue; returns how many were sent."""
    fqdns = list(Server.objects.values_list("fqdn", flat=True))
    for fqdn in fqdns:
        server_heartbeat_task.delay(server_fqdn=fqdn)
    return len(fqdns)


@shared_task
def package_import_task(*, job_id: int) -> str | None:
    """Run one import; the job is claimed atomically (queued -> running), so a message
    delivered twice runs it once."""
    from portal.services.imports import package_import_run

    job = package_import_run(job_id=job_id)
    return None if job is None else job.status


@shared_task
def imports_recover_task() -> dict[str, int]:
    """Beat: fail imports whose worker died, requeue lost ones, sweep orphan files."""
    from portal.services.imports import central_store_sweep_orphans, imports_recover

    stale_after = timedelta(seconds=settings.CELERY_TASK_TIME_LIMIT + 60)
    failed, requeued = imports_recover(stale_after=stale_after)
    swept = central_store_sweep_orphans(older_than=stale_after)
    return {"failed": failed, "requeued": requeued, "swept": len(swept)}
