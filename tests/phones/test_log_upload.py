"""Device log upload: limits, quota, repeats, refusals that keep nothing; retention."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import io
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.test import Client
from django.utils import timezone
from pytest_django.fixtures import Settings

from phones.models import DeviceLog, LogStoreUsage, RequestAudit
from phones.tasks import server_logs_retention_task
from portal.models import AuditEntry
from portal.services.audit import Actor
from portal.services.log_config import log_config_set

URL = "/RequestHandler/Files"
STORED = (
    b'<?xml version="1.0" encoding="utf-8"?>\n'
    b"<LogUploadResponse><Status>Stored</Status></LogUploadResponse>"
)


@pytest.fixture
def log_dir(settings: Settings, tmp_path: Path) -> Path:
    settings.DEVICE_LOG_DIR = tmp_path / "logs"
    settings.PHONE_AUDIT_FLUSH_THREAD = False
    return settings.DEVICE_LOG_DIR


def upload(
    client: Client,
    body: bytes,
    *,
    url: str = URL,
    type: str = "Watson",
    name: str = "crash.dmp",
    mac: str = "00-04-F2-11-22-33",
    serial: str = "",
    **extra: Any,
) -> Any:
    query = f"?type={type}&name={name}&mac={mac}&serial={serial}"
    return client.post(url + query, data=body, content_type="application/octet-stream", **extra)


def stored_files(log_dir: Path) -> list[str]:
    return (
        sorted(str(p.relative_to(log_dir)) for p in log_dir.rglob("*") if p.is_file())
        if log_dir.exists()
        else []
    )


@pytest.mark.django_db
def test_a_log_is_stored_under_its_type_and_device(client: Client, log_dir: Path) -> None:
    response = upload(client, b"dump bytes")
    assert (response.status_code, response.content) == (201, STORED)
    assert stored_files(log_dir) == ["Client/Watson/0004F2112233/crash.dmp"]
    assert (log_dir / "Client/Watson/0004F2112233/crash.dmp").read_bytes() == b"dump bytes"
    log = DeviceLog.objects.get()
    assert (log.log_type, log.device, log.name, log.size, log.sha256, log.channel) == (
        "Watson", "0004F2112233", "crash.dmp", 10, hashlib.sha256(b"dump bytes").hexdigest(),
        "internal",
    )  # fmt: skip
    usage = LogStoreUsage.objects.get()
    assert (usage.total_bytes, usage.files) == (10, 1)


@pytest.mark.django_db
def test_the_same_file_again_is_stored_once_and_a_new_one_replaces_it(
    client: Client, log_dir: Path
) -> None:
    assert upload(client, b"first").status_code == 201
    assert upload(client, b"first").status_code == 201
    assert (DeviceLog.objects.count(), LogStoreUsage.objects.get().total_bytes) == (1, 5)
    assert upload(client, b"second version").status_code == 201
    assert (DeviceLog.objects.count(), LogStoreUsage.objects.get().total_bytes) == (1, 14)
    assert (log_dir / "Client/Watson/0004F2112233/crash.dmp").read_bytes() == b"second version"


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("kwargs", "status", "code"),
    [
        ({"type": "Secret"}, 415, "UnsupportedLogType"),
        ({"name": "crash.exe"}, 415, "UnsupportedLogType"),
        ({"name": "a/b.dmp"}, 400, "InvalidRequest"),
        ({"name": "..%5Cb.dmp"}, 400, "InvalidRequest"),
        ({"name": "..dmp"}, 400, "InvalidRequest"),
        ({"name": "a%07.dmp"}, 400, "InvalidRequest"),
        ({"name": ""}, 400, "InvalidRequest"),
        ({"mac": "", "serial": ""}, 400, "InvalidRequest"),
        ({"mac": "00-04"}, 400, "InvalidRequest"),
        ({"mac": "", "serial": "CX6/../x"}, 400, "InvalidRequest"),
    ],
)
def test_bad_parameters_are_refused_and_nothing_is_kept(
    client: Client, log_dir: Path, kwargs: dict[str, str], status: int, code: str
) -> None:
    response = upload(client, b"data", **kwargs)
    assert response.status_code == status
    assert f"<Code>{code}</Code>".encode() in response.content
    assert [f for f in stored_files(log_dir) if not f.startswith(".incoming")] == []
    assert (DeviceLog.objects.count(), LogStoreUsage.objects.count()) == (0, 0)


@pytest.mark.django_db
def test_an_oversized_body_is_refused_before_it_is_read(client: Client, log_dir: Path) -> None:
    log_config_set(scope="global", values={"max_log_file_size": 100}, actor=Actor.system("t"))
    response = upload(client, b"x" * 101)
    assert response.status_code == 413
    assert b"<Code>TooLarge</Code>" in response.content
    assert stored_files(log_dir) == []
    # Without a Content-Length the stream is cut as soon as it passes the limit.
    from phones.logs import log_upload_parse, log_upload_store, server_log_config
    from phones.protocol import ProtocolError

    config = server_log_config()
    request = log_upload_parse(
        params={"type": "Watson", "name": "a.dmp", "mac": "0004F2112233"},
        channel="internal",  # type: ignore[arg-type]
        config=config,
    )
    consumed: list[int] = []

    def endless() -> Any:
        for index in range(1_000):
            consumed.append(index)
            yield b"y" * 60

    with pytest.raises(ProtocolError, match="larger than 100 bytes"):
        log_upload_store(upload=request, chunks=endless(), declared_length=None, config=config)
    assert len(consumed) == 2
    assert stored_files(log_dir) == []


@pytest.mark.django_db
def test_an_interrupted_upload_keeps_nothing(log_dir: Path) -> None:
    from phones.logs import log_upload_parse, log_upload_store, server_log_config
    from phones.protocol import ProtocolError

    config = server_log_config()
    request = log_upload_parse(
        params={"type": "Watson", "name": "a.dmp", "mac": "0004F2112233"},
        channel="internal",  # type: ignore[arg-type]
        config=config,
    )

    def hangs_up() -> Any:
        yield b"0123456789"
        raise OSError("connection reset by peer")

    with pytest.raises(ProtocolError, match=r"^the upload was interrupted after 10 bytes$"):
        log_upload_store(upload=request, chunks=hangs_up(), declared_length=None, config=config)
    with pytest.raises(ProtocolError, match=r"^the upload was interrupted \(10 of 1000 bytes\)$"):
        log_upload_store(
            upload=request, chunks=iter([b"0123456789"]), declared_length=1000, config=config
        )
    assert stored_files(log_dir) == []
    assert (DeviceLog.objects.count(), LogStoreUsage.objects.count()) == (0, 0)


@pytest.mark.django_db
def test_an_upload_past_the_quota_is_507(client: Client, log_dir: Path) -> None:
    log_config_set(scope="global", values={"log_store_quota": 15}, actor=Actor.system("t"))
    assert upload(client, b"0123456789", name="a.dmp").status_code == 201
    response = upload(client, b"0123456789", name="b.dmp")
    assert response.status_code == 507
    assert b"<Code>QuotaExceeded</Code>" in response.content
    assert stored_files(log_dir) == ["Client/Watson/0004F2112233/a.dmp"]
    assert LogStoreUsage.objects.get().total_bytes == 10


@pytest.mark.django_db(transaction=True)
def test_concurrent_uploads_never_pass_the_quota(log_dir: Path) -> None:
    log_config_set(scope="global", values={"log_store_quota": 450}, actor=Actor.system("t"))

    def one(index: int) -> int:
        try:
            return int(upload(Client(), b"z" * 100, name=f"log{index}.dmp").status_code)
        finally:
            connection.close()  # each thread's own connection, or the test database stays busy

    with ThreadPoolExecutor(max_workers=8) as pool:
        statuses = sorted(pool.map(one, range(8)))
    assert statuses == [201] * 4 + [507] * 4
    usage = LogStoreUsage.objects.get()
    assert (usage.total_bytes, usage.files, DeviceLog.objects.count()) == (400, 4, 4)
    assert len([f for f in stored_files(log_dir) if f.startswith("Client")]) == 4


@pytest.mark.django_db
def test_external_uploads_follow_the_external_rules(client: Client, log_dir: Path) -> None:
    User.objects.create_user(username="alice@contoso.com", password="Pa55-word-alice")
    url = "/RequestHandlerExt/Files"
    assert upload(client, b"x", url=url).status_code == 403
    auth = "Basic " + base64.b64encode(b"alice@contoso.com:Pa55-word-alice").decode()
    query = "?type=Watson&name=a.dmp&mac=0004F2112233&user=sip:alice@contoso.com"
    anonymous = client.post(url + query, data=b"x", content_type="application/octet-stream")
    assert anonymous.status_code == 401
    assert anonymous["WWW-Authenticate"] == 'Basic realm="Device Update"'
    signed = client.post(
        url + query, data=b"x", content_type="application/octet-stream", HTTP_AUTHORIZATION=auth
    )
    assert signed.status_code == 201
    assert DeviceLog.objects.get().channel == "external"


@pytest.mark.django_db
def test_retention_deletes_what_is_older_than_the_interval_and_audits_it(
    client: Client, log_dir: Path, settings: Settings
) -> None:
    upload(client, b"old log", name="old.dmp")
    upload(client, b"new log", name="new.dmp")
    now = dt.datetime(2026, 11, 29, 3, 0, tzinfo=dt.UTC)
    DeviceLog.objects.filter(name="old.dmp").update(created_at=now - dt.timedelta(days=11))
    DeviceLog.objects.filter(name="new.dmp").update(created_at=now - dt.timedelta(days=9))
    audit_dir = log_dir / "Server" / "Audit" / "ImageUpdates"
    audit_dir.mkdir(parents=True)
    old_file = audit_dir / f"RequestHandlerAuditLog_{settings.SERVER_FQDN}_20261117.log"
    old_file.write_text("line\n")
    recent_file = audit_dir / f"RequestHandlerAuditLog_{settings.SERVER_FQDN}_20261125.log"
    recent_file.write_text("line\n")
    log_config_set(
        scope="global",
        values={"log_cleanup_time_of_day": dt.time(3, 0)},
        actor=Actor.system("t"),
    )
    with mock.patch("phones.tasks.timezone.now", return_value=now - dt.timedelta(hours=1)):
        assert server_logs_retention_task(server_fqdn=settings.SERVER_FQDN) is None  # not 3 am
    with mock.patch("phones.tasks.timezone.now", return_value=now):
        assert server_logs_retention_task(server_fqdn=settings.SERVER_FQDN) == {
            "device_logs": 1,
            "audit_rows": 0,
        }
        assert server_logs_retention_task(server_fqdn=settings.SERVER_FQDN) is None  # once a day
    assert list(DeviceLog.objects.values_list("name", flat=True)) == ["new.dmp"]
    assert not (log_dir / "Client/Watson/0004F2112233/old.dmp").exists()
    assert (not old_file.exists(), recent_file.exists()) == (True, True)
    assert LogStoreUsage.objects.get().total_bytes == 7
    entry = AuditEntry.objects.filter(action="phones.logs.cleared").get()
    assert (entry.actor_name, entry.changes["device_logs"], entry.changes["audit_files"]) == (
        "retention", [1, 0], [1, 0],
    )  # fmt: skip


@pytest.mark.django_db
def test_clear_logs_command_checks_its_range_and_reports(client: Client, log_dir: Path) -> None:
    for bad in ("0", "31"):
        with pytest.raises(CommandError, match=f"--days-back must be 1 to 30, not {bad}"):
            call_command("clear_device_update_logs", "--days-back", bad)
    upload(client, b"old", name="old.dmp")
    DeviceLog.objects.update(created_at=timezone.now() - dt.timedelta(days=8))
    RequestAudit.objects.all().delete()
    out = io.StringIO()
    call_command("clear_device_update_logs", "--days-back", "7", stdout=out)
    assert out.getvalue().split(": ", 1)[1] == (
        "removed 1 device logs (3 bytes), 0 audit rows, 0 audit files (0 bytes); "
        "queued for 0 other server(s)\n"
    )
    assert DeviceLog.objects.count() == 0


@pytest.mark.django_db
def test_logs_are_listed_downloadable_and_cleared_from_the_control_panel(
    client: Client, log_dir: Path, administrator: User, helpdesk: User
) -> None:
    upload(client, b"dump bytes", name="crash.dmp")
    log = DeviceLog.objects.get()
    for user in (administrator, helpdesk):
        client.force_login(user)
        page = client.get("/admin/phones/devicelog/")
        assert page.status_code == 200
        assert "crash.dmp" in page.content.decode()
        download = client.get(f"/admin/phones/devicelog/{log.pk}/download/")
        assert download.status_code == 200
        # Consuming the stream closes the file (the test client closes the response).
        assert b"".join(download.streaming_content) == b"dump bytes"  # type: ignore[attr-defined]
    # The helpdesk may not clear; nothing changes.
    assert client.post("/admin/phones/devicelog/clear/", {"days_back": "1"}).status_code == 403
    assert DeviceLog.objects.count() == 1
    client.force_login(administrator)
    refused = client.post("/admin/phones/devicelog/clear/", {"days_back": "31"})
    assert refused.status_code == 200
    assert "Ensure this value is less than or equal to 30." in refused.content.decode()
    DeviceLog.objects.update(created_at=timezone.now() - dt.timedelta(days=2))
    cleared = client.post("/admin/phones/devicelog/clear/", {"days_back": "1"})
    assert cleared.status_code == 302
    assert DeviceLog.objects.count() == 0
    entry = AuditEntry.objects.get(action="phones.logs.cleared")
    assert (entry.actor_name, entry.changes["device_logs"]) == ("ada", [1, 0])
    client.logout()
    assert client.get(f"/admin/phones/devicelog/{log.pk}/download/").status_code == 302
