"""GET /healthz: 200 when the database takes a write, the broker answers, the stores have
room and the recorder keeps up; 503 naming what failed otherwise; JSON either way."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
from django.db.migrations.recorder import MigrationRecorder
from django.test import Client
from kombu import Connection

from deviceupdate.celery import app as celery_app
from phones.recorder import SPOOL_SUFFIX, spool_dir


@pytest.fixture
def cabextract(monkeypatch: pytest.MonkeyPatch) -> None:
    """As if cabextract were installed, whatever this machine has."""
    monkeypatch.setattr(
        "portal.packaging.cabinet.cabextract.shutil.which", lambda name: f"/usr/bin/{name}"
    )


@pytest.mark.django_db
def test_healthz_reports_ok_when_database_and_broker_answer(
    client: Client, cabextract: None
) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert response.json() == {
        "status": "ok",
        "checks": {"database": "ok", "broker": "ok", "store": "ok", "recorder": "ok"},
        "failed": [],
        "notices": [],
        "quarantined_records": 0,
        "spool": {"bytes": 0, "dropped": 0},
    }
    assert "no-cache" in response["Cache-Control"]


@pytest.mark.django_db
def test_healthz_answers_503_when_the_broker_is_unreachable(
    client: Client, monkeypatch: pytest.MonkeyPatch, cabextract: None
) -> None:
    # Port 9 (discard) on loopback: nothing listens, the connection is refused at once.
    # Only this check's connection is replaced: the app's configuration and its
    # connection pools stay as they are for the tests that follow.
    monkeypatch.setattr(
        celery_app, "connection_for_write", lambda: Connection("redis://127.0.0.1:9/0")
    )
    response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json() == {
        "status": "unavailable",
        "checks": {
            "database": "ok",
            "broker": "the broker does not answer",
            "store": "ok",
            "recorder": "ok",
        },
        "failed": ["broker"],
        "notices": [],
        "quarantined_records": 0,
        "spool": {"bytes": 0, "dropped": 0},
    }


@pytest.mark.django_db
def test_healthz_refuses_writes(client: Client) -> None:
    assert client.post("/healthz").status_code == 405


@pytest.mark.django_db
def test_healthz_says_when_lzx_packages_cannot_be_read(
    client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("portal.packaging.cabinet.cabextract.shutil.which", lambda name: None)
    response = client.get("/healthz")
    assert response.status_code == 200  # the phones are served all the same
    assert response.json()["notices"] == [
        "LZX-compressed packages need the cabextract program (Debian package 'cabextract'), "
        "which is not installed"
    ]


@pytest.mark.django_db
def test_healthz_answers_503_when_a_store_runs_short_of_space(
    client: Client, settings: Any, tmp_path: Path, cabextract: None
) -> None:
    settings.SERVER_STORE_DIR = tmp_path / "not-made-yet" / "DeviceUpdateStore"
    free_mb = shutil.disk_usage(tmp_path).free // 1024**2
    settings.HEALTH_MIN_FREE_BYTES = (free_mb + 10**6) * 1024**2
    response = client.get("/healthz")
    assert response.status_code == 503
    body = response.json()
    assert (body["status"], body["failed"]) == ("unavailable", ["store"])
    assert body["checks"]["store"].startswith("this server's store has ")
    assert body["checks"]["store"].endswith(f"(at least {free_mb + 10**6:,} MB needed)")


@pytest.mark.django_db
def test_healthz_answers_503_when_the_recorder_falls_behind(
    client: Client, settings: Any, monkeypatch: pytest.MonkeyPatch, cabextract: None
) -> None:
    """Records the loader has not written yet: 1,001 bytes of them against a limit of
    1,000 (the loader is stopped or its writes fail)."""
    settings.HEALTH_MAX_SPOOL_BACKLOG_BYTES = 1000
    spool = spool_dir()
    spool.mkdir(parents=True, exist_ok=True)
    (spool / f"waiting{SPOOL_SUFFIX}").write_bytes(b"x" * 1001)
    response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json()["failed"] == ["recorder"]
    assert response.json()["checks"]["recorder"] == (
        "1,001 bytes of phone records wait for the loader (more than 1,000): "
        "phone_record_loader is stopped or its writes are failing"
    )


@pytest.mark.django_db
def test_healthz_leaves_no_trace_in_the_database(client: Client) -> None:
    before = list(MigrationRecorder.Migration.objects.order_by("id").values_list())
    assert client.get("/healthz").status_code == 200
    assert list(MigrationRecorder.Migration.objects.order_by("id").values_list()) == before
