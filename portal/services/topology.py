"""Writes to the topology that are not administrator edits (worker heartbeats)."""

from __future__ import annotations

from django.utils import timezone

from portal.models import Server


def server_record_heartbeat(*, fqdn: str) -> bool:
    """Record that the worker of server ``fqdn`` is alive; False if no such server."""
    return Server.objects.filter(fqdn=fqdn).update(worker_seen_at=timezone.now()) == 1
