"""Clearing device and audit logs everywhere (management spec, "Clear device logs"):
this server's at once, every other server's on its own worker, since each server's
logs are on its own disk."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.conf import settings
from django.utils import timezone

from deviceupdate.dispatch import enqueue
from phones.services.log_retention import ClearResult, server_logs_clear
from portal.errors import DomainError
from portal.models import Server
from portal.services.audit import Actor

MAX_DAYS_BACK = 30


@dataclass(frozen=True)
class LogsCleared:
    here: ClearResult
    queued_servers: list[str]


def logs_clear_everywhere(*, days_back: int, actor: Actor) -> LogsCleared:
    """Delete this server's logs older than ``days_back`` days now (audited with
    ``actor``) and, after commit, ask every other server to delete its own."""
    if not 1 <= days_back <= MAX_DAYS_BACK:
        raise DomainError(
            f"days_back must be 1 to {MAX_DAYS_BACK}, not {days_back}", field="days_back"
        )
    here = server_logs_clear(older_than=timezone.now() - dt.timedelta(days=days_back), actor=actor)
    others = list(Server.objects.exclude(fqdn=settings.SERVER_FQDN).values_list("fqdn", flat=True))
    for fqdn in others:
        enqueue("phones.tasks.server_logs_clear_task", server_fqdn=fqdn, days_back=days_back)
    return LogsCleared(here=here, queued_servers=others)
