"""A database that takes no writes (a read-only SQLite connection, a PostgreSQL session
in read-only mode): /healthz answers 503 naming it, the control panel an HTML 503 page,
the API a JSON 503 and the commands one `error:` line with exit status 1; never a
traceback, and nothing changes."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command
from django.db import connection
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.backends.signals import connection_created
from django.test import Client
from rest_framework.authtoken.models import Token

from portal.device_class import RuleClass
from portal.models import AuditEntry, DeviceUpdateRule, Pool, Site
from tests.conftest import PROJECT_DIR, database_url_for_subprocess

pytestmark = pytest.mark.django_db(transaction=True)

CX600 = RuleClass("UCPhone", "Polycom", "CX600", "Rev-1", "ENU", "CPE")
# What each database says to the first write of a read-only connection: /healthz's
# UPDATE, and an approve's row lock (SELECT ... FOR UPDATE) before it writes.
REFUSAL = {
    "sqlite": "attempt to write a readonly database",
    "postgresql": "cannot execute UPDATE in a read-only transaction",
}
APPROVE_REFUSAL = {
    "sqlite": "attempt to write a readonly database",
    "postgresql": "cannot execute SELECT FOR UPDATE in a read-only transaction",
}
LINE_PREFIX = "the database is not writable: "


def _read_only(wrapper: BaseDatabaseWrapper, on: bool) -> None:
    with wrapper.cursor() as cursor:
        if wrapper.vendor == "sqlite":
            cursor.execute(f"PRAGMA query_only = {'ON' if on else 'OFF'}")
        else:
            cursor.execute(
                f"SET SESSION CHARACTERISTICS AS TRANSACTION READ {'ONLY' if on else 'WRITE'}"
            )


@pytest.fixture
def read_only_database() -> Iterator[None]:
    """Every connection of this process takes no writes until the test ends."""

    def on_connect(sender: Any, connection: BaseDatabaseWrapper, **kwargs: Any) -> None:
        _read_only(connection, True)

    _read_only(connection, True)
    connection_created.connect(on_connect)
    try:
        yield
    finally:
        connection_created.disconnect(on_connect)
        _read_only(connection, False)


@pytest.fixture
def rule() -> DeviceUpdateRule:
    site = Site.objects.create(name="Read-only")
    pool = Pool.objects.create(
        site=site, fqdn="pool-ro.example.org", internal_web_fqdn="pool-ro.example.org"
    )
    return DeviceUpdateRule.objects.create(
        pool=pool,
        rule_id="2de8cbf6-8a1e-4bc0-9d9e-0b2b5a1c1f11",
        pending_version="4.0.2",
        approved_version="4.0.1",
        **vars(CX600),
    )


def _versions(rule: DeviceUpdateRule) -> tuple[str, str, str]:
    rule.refresh_from_db()
    return (rule.pending_version, rule.approved_version, rule.restore_version)


def _administrator() -> User:
    return User.objects.create_superuser("root-ro", password="correct horse battery")


def test_healthz_names_the_database_that_takes_no_writes(
    client: Client, read_only_database: None
) -> None:
    response = client.get("/healthz")
    assert response.status_code == 503
    body = response.json()
    assert (body["status"], body["failed"]) == ("unavailable", ["database"])
    assert body["checks"]["database"] == LINE_PREFIX + REFUSAL[connection.vendor]
    assert (body["checks"]["broker"], body["checks"]["store"]) == ("ok", "ok")


def test_an_approve_in_the_control_panel_answers_a_503_page(
    client: Client, rule: DeviceUpdateRule, caplog: pytest.LogCaptureFixture
) -> None:
    client.force_login(_administrator())
    changelist = "/admin/portal/deviceupdaterule/"
    _read_only(connection, True)
    try:
        response = client.post(
            changelist, {"action": "approve_rules", "_selected_action": [rule.pk], "post": "yes"}
        )
    finally:
        _read_only(connection, False)
    assert response.status_code == 503
    assert response["Content-Type"] == "text/html; charset=utf-8"
    page = response.content.decode()
    assert f"<p>{LINE_PREFIX}{APPROVE_REFUSAL[connection.vendor]}</p>" in page
    assert "Traceback" not in page
    assert _versions(rule) == ("4.0.2", "4.0.1", "")
    assert AuditEntry.objects.count() == 0
    assert [record.getMessage() for record in caplog.records if record.levelname == "ERROR"] == [
        f"POST {changelist}: {LINE_PREFIX}{APPROVE_REFUSAL[connection.vendor]}"
    ]
    assert all(record.exc_info is None for record in caplog.records)


def test_an_approve_through_the_api_answers_a_json_503(
    client: Client, rule: DeviceUpdateRule
) -> None:
    token = Token.objects.create(user=_administrator())
    _read_only(connection, True)
    try:
        response = client.post(
            f"/api/v1/rules/{rule.pk}/approve/", HTTP_AUTHORIZATION=f"Token {token.key}"
        )
    finally:
        _read_only(connection, False)
    assert response.status_code == 503
    assert response["Content-Type"] == "application/json"
    assert response.json() == {"detail": LINE_PREFIX + APPROVE_REFUSAL[connection.vendor]}
    assert _versions(rule) == ("4.0.2", "4.0.1", "")
    assert AuditEntry.objects.count() == 0


def test_a_command_prints_one_error_line_and_exits_1(
    rule: DeviceUpdateRule, read_only_database: None
) -> None:
    out, err = io.StringIO(), io.StringIO()
    with pytest.raises(SystemExit) as stop:
        call_command("device_update_rules", "approve", rule.identity, stdout=out, stderr=err)
    assert stop.value.code == 1
    assert (out.getvalue(), err.getvalue()) == (
        "",
        f"error: {LINE_PREFIX}{APPROVE_REFUSAL[connection.vendor]}\n",
    )
    _read_only(connection, False)
    assert _versions(rule) == ("4.0.2", "4.0.1", "")


def test_a_command_run_against_a_read_only_postgresql_says_so_in_one_line(
    postgres: None, rule: DeviceUpdateRule
) -> None:
    # The role's sessions default to read-only transactions, as on a hot standby.
    env = dict(
        os.environ,
        DATABASE_URL=database_url_for_subprocess(),
        PGOPTIONS="-c default_transaction_read_only=on",
    )
    result = subprocess.run(
        [sys.executable, "manage.py", "device_update_rules", "approve", rule.identity],
        cwd=PROJECT_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert (result.returncode, result.stdout, result.stderr) == (
        1,
        "",
        f"error: {LINE_PREFIX}{APPROVE_REFUSAL['postgresql']}\n",
    )
    assert _versions(rule) == ("4.0.2", "4.0.1", "")


def test_a_command_outside_the_portals_actions_says_so_in_one_line_too(
    read_only_database: None,
) -> None:
    out, err = io.StringIO(), io.StringIO()
    with pytest.raises(SystemExit) as stop:
        call_command("ensure_admin", stdout=out, stderr=err)
    assert stop.value.code == 1
    assert out.getvalue() == ""
    assert err.getvalue().startswith(f"error: {LINE_PREFIX}")
    assert err.getvalue().count("\n") == 1
    _read_only(connection, False)
    assert not User.objects.exists()
