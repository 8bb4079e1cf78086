"""Device log upload: limits, quota, repeats, refusals that keep nothing; the rows written
in a batch, the usage counter on disk; retention."""

from __future__ import annotations

import base64
import datetime as dt
import errno
import io
import os
import time
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

from phones.choices import Channel
from phones.decision import decision_tables, server_log_config
from phones.logs import LogUpload, log_upload_parse
from phones.models import DeviceLog, LogStoreUsage, RequestAudit
from phones.protocol import ProtocolError
from phones.recorder import recorder
from phones.services import log_store as logstore
from phones.services.log_store import log_store_usage
from phones.services.log_uploads import log_upload_store
from phones.services.records import StoredLog
from phones.services.spool_loader import (
    Pending,
    spool_load_once,
    spool_pending,
    spool_pending_records,
)
from phones.tasks import server_logs_retention_task
from portal.models import AuditEntry
from portal.selectors import EffectiveLogConfig
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
    """Every file in the store but its own usage counter: part files would show."""
    return (
        sorted(
            str(p.relative_to(log_dir))
            for p in log_dir.rglob("*")
            if p.is_file() and p.name != ".usage"
        )
        if log_dir.exists()
        else []
    )


def age(log_dir: Path, name: str, when: dt.datetime) -> None:
    """Make a stored log (its file and its row) as old as ``when``."""
    for path in log_dir.glob(f"Client/*/*/{name}"):
        os.utime(path, (when.timestamp(), when.timestamp()))
    DeviceLog.objects.filter(name=name).update(created_at=when)


def crash_dump_upload(config: EffectiveLogConfig) -> LogUpload:
    """A phone's crash dump, as the endpoint parses it, for the store's own tests."""
    return log_upload_parse(
        params={"type": "Watson", "name": "a.dmp", "mac": "0004F2112233"},
        channel=Channel.INTERNAL,
        config=config,
    )


def refused_changes_nothing(log_dir: Path) -> None:
    spool_load_once()
    assert stored_files(log_dir) == []
    assert (DeviceLog.objects.count(), LogStoreUsage.objects.count()) == (0, 0)
    assert log_store_usage().bytes == 0


@pytest.mark.django_db
def test_a_log_is_stored_under_its_type_and_device(
    client: Client, log_dir: Path, settings: Settings
) -> None:
    response = upload(client, b"dump bytes")
    assert (response.status_code, response.content) == (201, STORED)
    assert stored_files(log_dir) == ["Client/Watson/0004F2112233/crash.dmp"]
    stored = log_dir / "Client/Watson/0004F2112233/crash.dmp"
    assert stored.read_bytes() == b"dump bytes"
    assert (log_store_usage().bytes, log_store_usage().files) == (10, 1)
    # Listed by the recorder's next batch, with the file's own time.
    assert (DeviceLog.objects.count(), spool_pending_records()) == (0, 1)
    assert spool_load_once() == 1
    log = DeviceLog.objects.get()
    assert (log.log_type, log.device, log.name, log.size, log.channel, log.path) == (
        "Watson", "0004F2112233", "crash.dmp", 10, "internal",
        "Client/Watson/0004F2112233/crash.dmp",
    )  # fmt: skip
    assert log.created_at == dt.datetime.fromtimestamp(stored.stat().st_mtime, tz=dt.UTC)
    usage = LogStoreUsage.objects.get()
    assert (usage.server, usage.total_bytes, usage.files) == (settings.SERVER_FQDN, 10, 1)


@pytest.mark.django_db
def test_an_upload_makes_no_database_query(
    client: Client, log_dir: Path, django_assert_num_queries: Any
) -> None:
    upload(client, b"first", name="a.dmp")  # builds the decision table
    with django_assert_num_queries(0):
        assert upload(client, b"second", name="b.dmp").status_code == 201
    assert spool_load_once() == 2
    assert sorted(DeviceLog.objects.values_list("name", flat=True)) == ["a.dmp", "b.dmp"]


@pytest.mark.django_db
def test_the_same_file_again_is_stored_once_and_a_new_one_replaces_it(
    client: Client, log_dir: Path
) -> None:
    assert upload(client, b"first").status_code == 201
    assert upload(client, b"first").status_code == 201
    assert spool_load_once() == 1  # the repeat was not recorded again
    assert (DeviceLog.objects.count(), LogStoreUsage.objects.get().total_bytes) == (1, 5)
    assert upload(client, b"other").status_code == 201  # the same size, other bytes
    assert upload(client, b"third, same name").status_code == 201
    assert spool_load_once() == 2
    assert DeviceLog.objects.get().size == 16
    usage = LogStoreUsage.objects.get()
    assert (usage.total_bytes, usage.files) == (16, 1)
    assert stored_files(log_dir) == ["Client/Watson/0004F2112233/crash.dmp"]
    assert (log_dir / "Client/Watson/0004F2112233/crash.dmp").read_bytes() == b"third, same name"


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
        ({"name": ".hidden.dmp"}, 400, "InvalidRequest"),
        ({"name": ".upload-0123.part"}, 400, "InvalidRequest"),
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
    refused_changes_nothing(log_dir)


@pytest.mark.django_db
@pytest.mark.parametrize("method", ["get", "put", "options"])
def test_only_post_is_an_upload(client: Client, log_dir: Path, method: str) -> None:
    response = getattr(client, method)(f"{URL}?type=Watson&name=a.dmp&mac=0004F2112233")
    assert (response.status_code, response["Content-Type"]) == (400, "text/xml; charset=utf-8")
    assert response.content.endswith(
        b"<Error><Code>InvalidRequest</Code><Message>use POST</Message></Error>"
    )
    refused_changes_nothing(log_dir)


@pytest.mark.django_db
def test_an_unexpected_failure_is_an_xml_error_not_a_500(
    client: Client, log_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # It fails after the body is received: the part file goes too.
    with mock.patch("phones.services.log_uploads.log_keep", side_effect=RuntimeError("boom")):
        response = upload(client, b"data")
    assert response.status_code == 400
    assert response.content.endswith(
        b"<Error><Code>InvalidRequest</Code>"
        b"<Message>the upload could not be processed</Message></Error>"
    )
    assert [r.getMessage() for r in caplog.records if r.name == "phones.views"] == [
        "log upload failed"
    ]
    refused_changes_nothing(log_dir)


@pytest.mark.django_db
def test_an_oversized_body_is_refused_before_it_is_read(client: Client, log_dir: Path) -> None:
    log_config_set(scope="global", values={"max_log_file_size": 100}, actor=Actor.system("t"))
    response = upload(client, b"x" * 101)
    assert response.status_code == 413
    assert b"<Code>TooLarge</Code>" in response.content
    refused_changes_nothing(log_dir)
    # Without a Content-Length the stream is cut as soon as it passes the limit.
    config = server_log_config()
    request = crash_dump_upload(config)
    consumed: list[int] = []

    def endless() -> Any:
        for index in range(1_000):
            consumed.append(index)
            yield b"y" * 60

    with pytest.raises(ProtocolError, match="larger than 100 bytes"):
        log_upload_store(upload=request, chunks=endless(), declared_length=None, config=config)
    assert len(consumed) == 2
    refused_changes_nothing(log_dir)


@pytest.mark.django_db
def test_an_interrupted_upload_keeps_nothing(log_dir: Path) -> None:
    config = server_log_config()
    request = crash_dump_upload(config)

    def hangs_up() -> Any:
        yield b"0123456789"
        raise OSError("connection reset by peer")

    with pytest.raises(ProtocolError, match=r"^the upload was interrupted after 10 bytes$"):
        log_upload_store(upload=request, chunks=hangs_up(), declared_length=None, config=config)
    with pytest.raises(ProtocolError, match=r"^the upload was interrupted \(10 of 1000 bytes\)$"):
        log_upload_store(
            upload=request, chunks=iter([b"0123456789"]), declared_length=1000, config=config
        )
    refused_changes_nothing(log_dir)


@pytest.mark.django_db
def test_a_full_disk_is_507_and_keeps_nothing(log_dir: Path) -> None:
    config = server_log_config()
    request = crash_dump_upload(config)
    create_part = logstore.log_part_create

    class FullDisk:
        def __init__(self, out: Any) -> None:
            self.out = out

        def write(self, data: bytes) -> int:
            raise OSError(errno.ENOSPC, "No space left on device")

        def __enter__(self) -> FullDisk:
            return self

        def __exit__(self, *exc: object) -> None:
            self.out.close()

    def part_on_a_full_disk(relative: str) -> tuple[Any, str]:
        out, part = create_part(relative)
        return FullDisk(out), part

    with (
        mock.patch("phones.services.log_uploads.log_part_create", part_on_a_full_disk),
        pytest.raises(ProtocolError, match=r"^the log store's disk is full$") as refused,
    ):
        log_upload_store(upload=request, chunks=iter([b"0123"]), declared_length=4, config=config)
    assert refused.value.code == "QuotaExceeded"
    refused_changes_nothing(log_dir)


@pytest.mark.django_db
def test_an_upload_past_the_quota_is_507(client: Client, log_dir: Path) -> None:
    log_config_set(scope="global", values={"log_store_quota": 15}, actor=Actor.system("t"))
    assert upload(client, b"0123456789", name="a.dmp").status_code == 201
    response = upload(client, b"0123456789", name="b.dmp")
    assert response.status_code == 507
    assert response.content.endswith(
        b"<Error><Code>QuotaExceeded</Code>"
        b"<Message>the log store is full (10 of 15 bytes used)</Message></Error>"
    )
    # A smaller file replacing a stored one fits.
    assert upload(client, b"01234", name="a.dmp").status_code == 201
    assert stored_files(log_dir) == ["Client/Watson/0004F2112233/a.dmp"]
    assert spool_load_once() == 2
    assert (LogStoreUsage.objects.get().total_bytes, DeviceLog.objects.get().size) == (5, 5)


@pytest.mark.django_db(transaction=True)
def test_concurrent_uploads_never_pass_the_quota(
    log_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    log_config_set(scope="global", values={"log_store_quota": 450}, actor=Actor.system("t"))
    # Hold every reservation open a while: without the lock, the uploads would all read
    # the same free space and all be kept.
    add = logstore._Counter.add

    def slow_add(counter: logstore._Counter, size: int, files: int) -> None:
        time.sleep(0.02)
        add(counter, size, files)

    monkeypatch.setattr(logstore._Counter, "add", slow_add)

    def one(index: int) -> int:
        try:
            return int(upload(Client(), b"z" * 100, name=f"log{index}.dmp").status_code)
        finally:
            connection.close()  # each thread's own connection, or the test database stays busy

    with ThreadPoolExecutor(max_workers=8) as pool:
        statuses = sorted(pool.map(one, range(8)))
    assert statuses == [201] * 4 + [507] * 4
    assert spool_load_once() == 4
    usage = LogStoreUsage.objects.get()
    assert (usage.total_bytes, usage.files, DeviceLog.objects.count()) == (400, 4, 4)
    assert len(stored_files(log_dir)) == 4  # and no part file left behind


@pytest.mark.django_db
def test_a_first_upload_survives_a_clean_up_removing_its_new_folder(
    client: Client, log_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    makedirs = os.makedirs
    calls: list[str] = []

    def raced(path: str, exist_ok: bool = False) -> None:
        makedirs(path, exist_ok=exist_ok)
        if os.path.basename(path) == "0004F2112233":
            calls.append(path)
            if len(calls) == 1:
                os.rmdir(path)  # a clean-up removes the emptied folder before the part opens

    monkeypatch.setattr("phones.services.log_store.os.makedirs", raced)
    assert upload(client, b"dump").status_code == 201
    assert len(calls) == 2
    assert stored_files(log_dir) == ["Client/Watson/0004F2112233/crash.dmp"]


@pytest.mark.django_db
def test_the_usage_counter_is_counted_from_disk_when_it_is_missing(
    client: Client, log_dir: Path
) -> None:
    upload(client, b"0123456789", name="a.dmp")
    upload(client, b"01234", name="b.dmp", mac="0004F2AABBCC")
    # A part file a killed process left behind is not a log.
    (log_dir / "Client/Watson/0004F2112233/.upload-0123.part").write_bytes(b"partial")
    (log_dir / ".usage").unlink()
    assert (log_store_usage().bytes, log_store_usage().files) == (15, 2)
    (log_dir / ".usage").write_text("garbage")
    assert (log_store_usage().bytes, log_store_usage().files) == (15, 2)
    assert (log_dir / ".usage").read_text() == f"{15:020d} {2:012d}\n"


@pytest.mark.django_db
def test_a_new_log_setting_reaches_the_upload_once_the_generation_moves(
    client: Client,
    log_dir: Path,
    django_capture_on_commit_callbacks: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(type(decision_tables), "CHECK_EVERY", 0.0)
    assert upload(client, b"x" * 20, name="a.dmp").status_code == 201
    with django_capture_on_commit_callbacks(execute=True):
        log_config_set(scope="global", values={"max_log_file_size": 10}, actor=Actor.system("t"))
    assert upload(client, b"x" * 20, name="b.dmp").status_code == 413
    with django_capture_on_commit_callbacks(execute=True):
        log_config_set(
            scope="global", values={"valid_log_file_types": ["CELog"]}, actor=Actor.system("t")
        )
    assert upload(client, b"x", name="c.dmp").status_code == 415
    assert upload(client, b"x", name="c.dmp", type="CELog").status_code == 201


def stored_log(name: str) -> StoredLog:
    return StoredLog(
        created_at=timezone.now(), channel=Channel.INTERNAL, log_type="Watson",
        device="0004F2112233", mac="0004F2112233", serial="", user="", name=name, size=1,
        path=f"Client/Watson/0004F2112233/{name}",
    )  # fmt: skip


@pytest.mark.django_db
def test_a_stored_log_makes_the_loader_write_at_once() -> None:
    """The loader writes a batch within about a second when a stored log waits (the
    request audit may wait LogFlushInterval)."""
    recorder.record(stored_log("a.dmp"))
    pending = spool_pending()
    assert (pending.bytes > 0, pending.logs) == (True, True)
    assert (spool_load_once(), spool_pending()) == (1, Pending(0, False))
    assert DeviceLog.objects.get().name == "a.dmp"


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
    refused_changes_nothing(log_dir)
    signed = client.post(
        url + query, data=b"x", content_type="application/octet-stream", HTTP_AUTHORIZATION=auth
    )
    assert signed.status_code == 201
    spool_load_once()
    assert DeviceLog.objects.get().channel == "external"


@pytest.mark.django_db
def test_retention_deletes_what_is_older_than_the_interval_and_audits_it(
    client: Client, log_dir: Path, settings: Settings
) -> None:
    log_config_set(
        scope="global",
        values={"log_cleanup_time_of_day": dt.time(3, 0)},
        actor=Actor.system("t"),
    )
    upload(client, b"old log", name="old.dmp")
    upload(client, b"new log", name="new.dmp")
    spool_load_once()
    now = dt.datetime(2026, 11, 29, 3, 0, tzinfo=dt.UTC)
    age(log_dir, "old.dmp", now - dt.timedelta(days=11))
    age(log_dir, "new.dmp", now - dt.timedelta(days=9))
    # A part file a process killed mid-upload long ago goes too; a fresh one stays.
    part = log_dir / "Client/Watson/0004F2112233/.upload-01.part"
    part.write_bytes(b"partial")
    os.utime(part, ((now - dt.timedelta(days=12)).timestamp(),) * 2)
    live_part = log_dir / "Client/Watson/0004F2112233/.upload-02.part"
    live_part.write_bytes(b"in progress")
    audit_dir = log_dir / "Server" / "Audit" / "ImageUpdates"
    audit_dir.mkdir(parents=True)
    old_file = audit_dir / f"RequestHandlerAuditLog_{settings.SERVER_FQDN}_20261117.log"
    old_file.write_text("line\n")
    recent_file = audit_dir / f"RequestHandlerAuditLog_{settings.SERVER_FQDN}_20261125.log"
    recent_file.write_text("line\n")
    with mock.patch("phones.tasks.timezone.now", return_value=now - dt.timedelta(hours=1)):
        assert server_logs_retention_task(server_fqdn=settings.SERVER_FQDN) is None  # not 3 am
    with mock.patch("phones.tasks.timezone.now", return_value=now):
        assert server_logs_retention_task(server_fqdn=settings.SERVER_FQDN) == {
            "device_logs": 1,
            "audit_rows": 0,
        }
        assert server_logs_retention_task(server_fqdn=settings.SERVER_FQDN) is None  # once a day
    assert list(DeviceLog.objects.values_list("name", flat=True)) == ["new.dmp"]
    assert stored_files(log_dir) == [
        "Client/Watson/0004F2112233/.upload-02.part",
        "Client/Watson/0004F2112233/new.dmp",
        f"Server/Audit/ImageUpdates/RequestHandlerAuditLog_{settings.SERVER_FQDN}_20261125.log",
    ]
    usage = LogStoreUsage.objects.get()
    assert (usage.total_bytes, usage.files) == (7, 1)
    assert (log_store_usage().bytes, log_store_usage().files) == (7, 1)
    entry = AuditEntry.objects.filter(action="phones.logs.cleared").get()
    assert (entry.actor_name, entry.changes["device_logs"], entry.changes["audit_files"]) == (
        "retention", [1, 0], [1, 0],
    )  # fmt: skip
    assert entry.changes["device_log_bytes"] == [7, 0]


@pytest.mark.django_db
def test_clear_logs_command_checks_its_range_and_reports(client: Client, log_dir: Path) -> None:
    for bad in ("0", "31"):
        with pytest.raises(CommandError, match=f"--days-back must be 1 to 30, not {bad}"):
            call_command("clear_device_update_logs", "--days-back", bad)
    upload(client, b"old", name="old.dmp")
    spool_load_once()
    age(log_dir, "old.dmp", timezone.now() - dt.timedelta(days=8))
    RequestAudit.objects.all().delete()
    out = io.StringIO()
    call_command("clear_device_update_logs", "--days-back", "7", stdout=out)
    assert out.getvalue().split(": ", 1)[1] == (
        "removed 1 device logs (3 bytes), 0 audit rows, 0 audit files (0 bytes); "
        "queued for 0 other server(s)\n"
    )
    assert DeviceLog.objects.count() == 0
    assert stored_files(log_dir) == []  # the emptied device folder went too
    assert not (log_dir / "Client/Watson/0004F2112233").exists()


@pytest.mark.django_db
def test_logs_are_listed_downloadable_and_cleared_from_the_control_panel(
    client: Client, log_dir: Path, administrator: User, helpdesk: User
) -> None:
    upload(client, b"dump bytes", name="crash.dmp")
    spool_load_once()
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
    age(log_dir, "crash.dmp", timezone.now() - dt.timedelta(days=2))
    cleared = client.post("/admin/phones/devicelog/clear/", {"days_back": "1"})
    assert cleared.status_code == 302
    assert (DeviceLog.objects.count(), stored_files(log_dir)) == (0, [])
    entry = AuditEntry.objects.get(action="phones.logs.cleared")
    assert (entry.actor_name, entry.changes["device_logs"]) == ("ada", [1, 0])
    client.logout()
    assert client.get(f"/admin/phones/devicelog/{log.pk}/download/").status_code == 302
