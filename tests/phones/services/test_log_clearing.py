"""Clearing logs everywhere: this server's at once, audited with the caller; every
other server's on its own queue, after commit."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from django.conf import settings
from django.test import Client
from django.utils import timezone
from pytest_django.fixtures import Settings

from phones.models import DeviceLog
from phones.services.log_clearing import logs_clear_everywhere
from phones.services.spool_loader import spool_load_once
from portal.errors import DomainError
from portal.models import AuditEntry, Pool, Server
from portal.services.audit import Actor
from tests.phones.test_log_upload import age, stored_files, upload

pytestmark = pytest.mark.django_db


@pytest.fixture
def log_dir(settings: Settings, tmp_path: Path) -> Path:
    settings.DEVICE_LOG_DIR = tmp_path / "logs"
    return settings.DEVICE_LOG_DIR


def test_this_servers_logs_go_now_and_the_others_are_asked_after_commit(
    client: Client, log_dir: Path, django_capture_on_commit_callbacks: Callable[..., Any]
) -> None:
    pool = Pool.objects.get()
    for fqdn in ("fe03.example.org", "fe02.example.org"):
        Server.objects.create(pool=pool, fqdn=fqdn)
    upload(client, b"old log", name="old.dmp")
    upload(client, b"new", name="new.dmp")
    spool_load_once()
    age(log_dir, "old.dmp", timezone.now() - dt.timedelta(days=8))
    with mock.patch("phones.tasks.server_logs_clear_task.delay") as delay:
        with django_capture_on_commit_callbacks(execute=False) as callbacks:
            cleared = logs_clear_everywhere(days_back=7, actor=Actor.system("manage.py (root)"))
        assert list(DeviceLog.objects.values_list("name", flat=True)) == ["new.dmp"]
        delay.assert_not_called()  # the other servers are asked only after commit
        assert len(callbacks) == 2
        for callback in callbacks:
            callback()
    assert delay.call_args_list == [
        mock.call(server_fqdn="fe02.example.org", days_back=7),
        mock.call(server_fqdn="fe03.example.org", days_back=7),
    ]
    assert cleared.queued_servers == ["fe02.example.org", "fe03.example.org"]
    assert (cleared.here.device_logs, cleared.here.device_log_bytes) == (1, 7)
    assert stored_files(log_dir) == ["Client/Watson/0004F2112233/new.dmp"]
    entry = AuditEntry.objects.get(action="phones.logs.cleared")
    assert (entry.actor_name, entry.changes["device_logs"]) == ("manage.py (root)", [1, 0])
    assert settings.SERVER_FQDN not in cleared.queued_servers


@pytest.mark.parametrize("days_back", [0, 31])
def test_a_range_outside_1_to_30_days_changes_nothing(
    client: Client,
    log_dir: Path,
    days_back: int,
    django_capture_on_commit_callbacks: Callable[..., Any],
) -> None:
    upload(client, b"old log", name="old.dmp")
    spool_load_once()
    age(log_dir, "old.dmp", timezone.now() - dt.timedelta(days=40))
    with (
        django_capture_on_commit_callbacks(execute=False) as callbacks,
        pytest.raises(DomainError, match=f"^days_back must be 1 to 30, not {days_back}$"),
    ):
        logs_clear_everywhere(days_back=days_back, actor=Actor.system("t"))
    assert callbacks == []
    assert DeviceLog.objects.count() == 1
    assert not AuditEntry.objects.filter(action="phones.logs.cleared").exists()
