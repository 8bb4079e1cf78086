"""Per-server routing and the worker heartbeat service."""

from __future__ import annotations

import pytest
from django.conf import settings

from deviceupdate.celery_routes import route_task
from portal.models import Server
from portal.services.topology import server_record_heartbeat


def test_heartbeat_goes_to_the_servers_own_queue() -> None:
    route = route_task(
        "portal.tasks.server_heartbeat_task", (), {"server_fqdn": "FE01.Example.org."}, {}
    )
    assert route == {"queue": "server.fe01.example.org"}


def test_other_tasks_take_the_default_route() -> None:
    assert route_task("portal.tasks.servers_heartbeat_task", (), {}, {}) is None


def test_this_servers_worker_consumes_its_own_queue() -> None:
    names = [queue.name for queue in settings.CELERY_TASK_QUEUES]
    assert names == ["default", "imports", f"server.{settings.SERVER_FQDN}"]


@pytest.mark.django_db
def test_heartbeat_records_the_time_for_that_server_only() -> None:
    server = Server.objects.get()
    assert server.worker_seen_at is None
    assert server_record_heartbeat(fqdn=server.fqdn) is True
    server.refresh_from_db()
    assert server.worker_seen_at is not None
    assert server_record_heartbeat(fqdn="unknown.example.org") is False
