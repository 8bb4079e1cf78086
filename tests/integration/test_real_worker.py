"""A real Celery worker process runs a real task end to end, on each broker kind."""

from __future__ import annotations

import subprocess
import time
import uuid
from collections.abc import Callable

import pytest
from django.conf import settings
from kombu import Connection

from deviceupdate.brokers import filesystem_transport_options
from portal.models import Pool, Server, Site
from portal.tasks import server_heartbeat_task

pytestmark = pytest.mark.django_db(transaction=True)


def make_server() -> Server:
    # Transactional tests flush the database, so build the topology here.
    fqdn = f"fe-{uuid.uuid4().hex[:10]}.example.org"
    site, _ = Site.objects.get_or_create(name="Workers")
    pool, _ = Pool.objects.get_or_create(
        site=site, fqdn="pool-workers.example.org", internal_web_fqdn="pool-workers.example.org"
    )
    return Server.objects.create(pool=pool, fqdn=fqdn)


def wait_for_heartbeat(
    server: Server, worker: subprocess.Popen[bytes], *, deadline_seconds: float
) -> None:
    """Poll the database until the worker wrote the heartbeat, or fail at the deadline."""
    deadline = time.monotonic() + deadline_seconds
    while time.monotonic() < deadline:
        server.refresh_from_db()
        if server.worker_seen_at is not None:
            return
        assert worker.poll() is None, "the worker process exited"
        time.sleep(0.2)
    pytest.fail(f"no heartbeat from the worker of {server.fqdn} within {deadline_seconds} s")


def test_worker_on_redis_and_postgresql_runs_the_heartbeat(
    postgres: None, redis_url: str, start_worker: Callable[..., subprocess.Popen[bytes]]
) -> None:
    server = make_server()
    worker = start_worker(queues=[server.queue], broker_url=redis_url)
    with Connection(redis_url) as connection:
        server_heartbeat_task.apply_async(
            kwargs={"server_fqdn": server.fqdn},
            connection=connection,  # type: ignore[call-arg]  # celery-types lacks it
        )
    wait_for_heartbeat(server, worker, deadline_seconds=60)


def test_worker_on_the_embedded_filesystem_broker_runs_the_heartbeat(
    start_worker: Callable[..., subprocess.Popen[bytes]],
) -> None:
    server = make_server()
    worker = start_worker(queues=[server.queue], broker_url="filesystem://")
    options = filesystem_transport_options(settings.BROKER_DIR)
    with Connection("filesystem://", transport_options=options) as connection:
        server_heartbeat_task.apply_async(
            kwargs={"server_fqdn": server.fqdn},
            connection=connection,  # type: ignore[call-arg]  # celery-types lacks it
        )
    wait_for_heartbeat(server, worker, deadline_seconds=60)
