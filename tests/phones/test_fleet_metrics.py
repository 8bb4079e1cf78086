"""The fleet gauges: counted by the beat job into the cache, served by each scrape with
no query, ages computed at scrape time."""

from __future__ import annotations

import datetime as dt

import pytest
from django.conf import settings as django_settings
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from prometheus_client.parser import text_string_to_metric_families
from pytest_django.fixtures import Settings

from deviceupdate import metrics
from phones.models import Device
from phones.services.fleet_metrics import fleet_metrics_compute, fleet_metrics_snapshot
from phones.tasks import fleet_metrics_task
from portal.choices import ImportStatus, ReplicaState
from portal.models import DeviceUpdateRule, ImportJob, Pool, Server, ServerFile, UpdateVersion
from portal.services.rollouts import rollout_halt
from tests.phones.conftest import stored_version
from tests.phones.test_decision_rollouts import ACTOR, plan

pytestmark = pytest.mark.django_db

NOON = dt.datetime(2026, 12, 1, 12, 0, tzinfo=dt.UTC)


def phone(number: int, model: str, installed: dict[str, str], state: str) -> None:
    Device.objects.create(
        identity=f"MAC:0004F200000{number}", mac=f"0004F200000{number}", device_type="UCPhone",
        brand="Polycom", model=model, installed=installed, state=state, first_seen=NOON,
        last_seen=NOON, last_channel="internal", last_server="fe01.example.org",
    )  # fmt: skip


def gauges(body: bytes) -> dict[str, list[tuple[dict[str, str], float]]]:
    return {
        family.name: [(sample.labels, sample.value) for sample in family.samples]
        for family in text_string_to_metric_families(body.decode())
        if family.type == "gauge"
    }


@pytest.fixture
def fleet(rule: DeviceUpdateRule, server: Server, settings: Settings) -> Server:
    """Three phones, a halted rollout, two imports waiting, a second server lacking a
    version imported at 11:00 whose worker was last seen at 11:59."""
    phone(1, "CX600", {"CPE": "4.0.7577.4363"}, "update offered")
    phone(2, "CX600", {"CPE": "4.0.7577.4363"}, "update offered")
    phone(3, "CX600", {"CPE": "4.0.7577.4387"}, "up to date")
    phone(4, "CX700", {}, "no rule")
    rollout = plan(rule, 25, 100)
    rollout_halt(rollout=rollout, actor=ACTOR, reason="too many failures")
    for status in (ImportStatus.QUEUED, ImportStatus.QUEUED, ImportStatus.SUCCEEDED):
        ImportJob.objects.create(
            actor_name="t", status=status, package_name="p.cab", package_size=1,
            package_sha256="0" * 64,
        )  # fmt: skip
    other = Server.objects.create(
        pool=Pool.objects.get(), fqdn="fe02.example.org", worker_seen_at=NOON - dt.timedelta(0, 60)
    )
    Server.objects.filter(pk=server.pk).update(worker_seen_at=None)
    folder = stored_version("4.0.7577.6000", verified_on=None)
    version = UpdateVersion.objects.get(folder=folder)
    UpdateVersion.objects.filter(pk=version.pk).update(created_at=NOON - dt.timedelta(hours=1))
    for file in version.files.all():
        ServerFile.objects.create(server=other, file=file, state=ReplicaState.PENDING)
    return other


def test_a_scrape_serves_the_jobs_counts_without_a_query(
    client: Client, fleet: Server, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("django.utils.timezone.now", lambda: NOON)
    assert fleet_metrics_task() == 2
    rollout = str(fleet_metrics_snapshot()["rollout_waves"][0]["rollout"])  # type: ignore[index]
    # A minute after the job: the ages have grown by that minute.
    monkeypatch.setattr(metrics.time, "time", lambda: NOON.timestamp() + 60)

    with CaptureQueriesContext(connection) as queries:
        response = client.get("/metrics")

    assert (response.status_code, len(queries)) == (200, 0)
    found = gauges(response.content)
    assert found["deviceupdate_fleet_metrics_age_seconds"] == [({}, 60.0)]
    polycom = {"brand": "Polycom", "model": "CX600", "update_type": "CPE"}
    assert found["deviceupdate_phones"] == [
        ({**polycom, "version": "4.0.7577.4363", "state": "update offered"}, 2.0),
        ({**polycom, "version": "4.0.7577.4387", "state": "up to date"}, 1.0),
        (
            {"brand": "Polycom", "model": "CX700", "update_type": "", "version": "",
             "state": "no rule"},
            1.0,
        ),
    ]  # fmt: skip
    assert found["deviceupdate_rollouts"] == [
        ({"state": "running"}, 0.0),
        ({"state": "paused"}, 0.0),
        ({"state": "halted"}, 1.0),
        ({"state": "completed"}, 0.0),
        ({"state": "cancelled"}, 0.0),
        ({"state": "restored"}, 0.0),
    ]
    assert found["deviceupdate_rollout_current_wave"] == [
        ({"rollout": rollout, "state": "halted"}, 1.0)
    ]
    assert found["deviceupdate_imports"] == [
        ({"status": "queued"}, 2.0),
        ({"status": "running"}, 0.0),
    ]
    assert found["deviceupdate_server_unverified_files"] == [
        ({"server": "fe02.example.org"}, 3.0),
        ({"server": settings.SERVER_FQDN}, 0.0),
    ]
    assert found["deviceupdate_server_replication_lag_seconds"] == [
        ({"server": "fe02.example.org"}, 3660.0),
        ({"server": settings.SERVER_FQDN}, 0.0),
    ]
    assert found["deviceupdate_worker_heartbeat_age_seconds"] == [
        ({"server": "fe02.example.org"}, 120.0),
        ({"server": settings.SERVER_FQDN}, float("inf")),
    ]


def test_before_the_first_run_there_are_no_fleet_gauges(client: Client) -> None:
    assert fleet_metrics_snapshot() is None
    response = client.get("/metrics")
    assert response.status_code == 200
    assert [name for name in gauges(response.content) if "fleet" in name or "server" in name] == []


def test_a_verified_server_is_in_sync(server: Server, rule: DeviceUpdateRule) -> None:
    snapshot = fleet_metrics_compute()
    assert snapshot["servers"] == [
        {
            "server": server.fqdn,
            "unverified_files": 0,
            "oldest_unverified_at": None,
            "worker_seen_at": None,
        }
    ]
    assert fleet_metrics_snapshot() == snapshot


def test_beat_runs_the_job_every_configured_interval() -> None:
    from deviceupdate.celery import app

    entry = django_settings.CELERY_BEAT_SCHEDULE["fleet-metrics"]
    assert entry == {"task": "phones.tasks.fleet_metrics_task", "schedule": 60}
    assert app.tasks["phones.tasks.fleet_metrics_task"].name == fleet_metrics_task.name
