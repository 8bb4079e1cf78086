"""GET /healthz: 200 when database and broker answer, 503 otherwise, JSON either way."""

from __future__ import annotations

import pytest
from django.test import Client
from kombu import Connection

from deviceupdate.celery import app as celery_app


@pytest.fixture
def cabextract(monkeypatch: pytest.MonkeyPatch) -> None:
    """As if cabextract were installed, whatever this machine has."""
    monkeypatch.setattr("portal.packaging.cabinet.shutil.which", lambda name: f"/usr/bin/{name}")


@pytest.mark.django_db
def test_healthz_reports_ok_when_database_and_broker_answer(
    client: Client, cabextract: None
) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert response.json() == {
        "status": "ok",
        "checks": {"database": "ok", "broker": "ok"},
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
        "checks": {"database": "ok", "broker": "unavailable"},
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
    monkeypatch.setattr("portal.packaging.cabinet.shutil.which", lambda name: None)
    response = client.get("/healthz")
    assert response.status_code == 200  # the phones are served all the same
    assert response.json()["notices"] == [
        "LZX-compressed packages need the cabextract program (Debian package 'cabextract'), "
        "which is not installed"
    ]
