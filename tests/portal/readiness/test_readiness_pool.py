"""Check 5, the pool: every server's copies of the approved files and its worker's
heartbeat (answered by a real worker process)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
import subprocess
from collections.abc import Callable
from typing import Any

import pytest
from django.conf import settings as django_settings
from django.utils import timezone
from kombu import Connection
from pytest_django.fixtures import Settings

from deviceupdate.brokers import filesystem_transport_options
from portal.choices import ReplicaState, UpdateFileRole
from portal.models import DeviceUpdateRule, Pool, Server, ServerFile, UpdateFile, UpdateVersion
from portal.readiness.base import CheckResult, Status
from portal.readiness.pool import pool_checks
from portal.tasks import server_heartbeat_task
from tests.conftest import wait_until

CLASSED = {
    "device_type": "UCPhone", "brand": "Polycom", "model": "CX600",
    "revision": "Rev-1", "locale": "ENU", "update_type": "CPE",
}  # fmt: skip


def approve(pool: Pool, version: str, *, verified_on: list[Server]) -> list[UpdateFile]:
    """``version`` approved in ``pool``, its two files verified on ``verified_on``."""
    folder = f"UCPhone/Polycom/CX600/Rev-1/ENU/{version}/CPE"
    stored = UpdateVersion.objects.create(
        **CLASSED, version=version, folder=folder, rule_id="2de8cbf6-8a1e-4bc0-9d9e-0b2b5a1c1f11",
        signer="CN=Test", catalog_digest="sha256",
    )  # fmt: skip
    files = [
        UpdateFile.objects.create(
            version=stored, name=name, role=role, size=10, sha256="a" * 64,
            storage_name=f"DeviceUpdateStore/{folder}/{name}",
        )
        for name, role in (("CPE.cat", UpdateFileRole.CATALOG), ("CPE.nbt", UpdateFileRole.IMAGE))
    ]  # fmt: skip
    for server in verified_on:
        for file in files:
            ServerFile.objects.create(
                server=server, file=file, state=ReplicaState.VERIFIED, verified_at=timezone.now()
            )
    lookup: dict[str, Any] = {"pool": pool, **CLASSED}
    DeviceUpdateRule.objects.update_or_create(defaults={"approved_version": version}, **lookup)
    return files


def test_a_server_holding_everything_with_a_live_worker_passes(
    pool: Pool, settings: Settings
) -> None:
    server = pool.servers.get()
    approve(pool, "4.0.7577.4387", verified_on=[server])
    Server.objects.filter(pk=server.pk).update(
        worker_seen_at=timezone.now() - dt.timedelta(seconds=30)
    )
    files, worker = pool_checks(timeout=5)
    assert (files.subject, files.status, files.detail) == (
        "fe01.example.org: approved files", Status.PASS, "all 2 approved files verified",
    )  # fmt: skip
    assert (worker.subject, worker.status) == ("fe01.example.org: worker", Status.PASS)
    # The age is whole seconds as the check ran, a moment after the 30 s set here.
    assert re.fullmatch(r"heartbeat 3\d s ago", worker.detail), worker.detail


def test_a_server_lagging_behind_and_a_silent_worker_fail(pool: Pool, settings: Settings) -> None:
    first = pool.servers.get()
    second = Server.objects.create(pool=pool, fqdn="fe02.example.org")
    files = approve(pool, "4.0.7577.4387", verified_on=[first])
    ServerFile.objects.create(server=second, file=files[0], state=ReplicaState.VERIFIED)
    ServerFile.objects.create(server=second, file=files[1], state=ReplicaState.FAILED)
    Server.objects.filter(pk=first.pk).update(
        worker_seen_at=timezone.now() - dt.timedelta(seconds=600)
    )
    settings.READINESS_HEARTBEAT_MAX_AGE = 180
    results = pool_checks(timeout=5)
    assert re.fullmatch(r"last heartbeat 60\d s ago \(limit 180 s\)", results[1].detail)
    results[1] = dataclasses.replace(results[1], detail="last heartbeat 600 s ago (limit 180 s)")
    assert results == [
        CheckResult("pool", "fe01.example.org: approved files", Status.PASS,
                    "all 2 approved files verified"),
        CheckResult(
            "pool", "fe01.example.org: worker", Status.FAIL,
            "last heartbeat 600 s ago (limit 180 s)",
            "start the Celery worker on fe01.example.org (consuming server.fe01.example.org) "
            "and Celery beat",
        ),
        CheckResult(
            "pool", "fe02.example.org: approved files", Status.FAIL,
            "1 of 2 approved files not verified here (first: DeviceUpdateStore/UCPhone/Polycom/"
            "CX600/Rev-1/ENU/4.0.7577.4387/CPE/CPE.nbt)",
            "start this server's worker (queue server.fe02.example.org) and Re-sync the server",
        ),
        CheckResult(
            "pool", "fe02.example.org: worker", Status.FAIL,
            "its worker never answered a heartbeat",
            "start the Celery worker on fe02.example.org (consuming server.fe02.example.org) "
            "and Celery beat",
        ),
    ]  # fmt: skip


def test_a_newly_approved_version_counts_and_the_old_one_does_not(pool: Pool) -> None:
    server = pool.servers.get()
    approve(pool, "4.0.7577.4363", verified_on=[server])
    approve(pool, "4.0.7577.4387", verified_on=[])
    files = pool_checks(timeout=5)[0]
    assert (files.status, files.detail.split(" (")[0]) == (
        Status.FAIL,
        "2 of 2 approved files not verified here",
    )


@pytest.mark.django_db(transaction=True)
def test_a_real_workers_heartbeat_makes_the_worker_check_pass(
    pool: Pool, start_worker: Callable[..., subprocess.Popen[bytes]]
) -> None:
    server = pool.servers.get()
    assert [r.status for r in pool_checks(timeout=5)] == [Status.PASS, Status.FAIL]
    worker = start_worker(queues=[server.queue], broker_url="filesystem://")
    options = filesystem_transport_options(django_settings.BROKER_DIR)
    with Connection("filesystem://", transport_options=options) as connection:
        server_heartbeat_task.apply_async(
            kwargs={"server_fqdn": server.fqdn},
            connection=connection,  # type: ignore[call-arg]  # celery-types lacks it
        )

    def answered() -> bool:
        assert worker.poll() is None, "the worker process exited"
        return Server.objects.filter(pk=server.pk, worker_seen_at__isnull=False).exists()

    wait_until(answered, "the worker's heartbeat", seconds=60)
    assert [(r.subject, r.status) for r in pool_checks(timeout=5)] == [
        ("fe01.example.org: approved files", Status.PASS),
        ("fe01.example.org: worker", Status.PASS),
    ]
