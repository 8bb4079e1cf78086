"""The spool and its loader, in one process: web processes append and make no database
write on the phone path; the loader writes each record exactly once (its position saved
with the rows), finishes and deletes the files nobody writes, quarantines a torn line,
and a full spool folder still answers phones, loudly."""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from pytest_django.fixtures import Settings

from phones.choices import Channel, Outcome
from phones.decision import Decision
from phones.models import Device, DeviceLog, RequestAudit, SpoolPosition
from phones.protocol import Module, UpdateCheck
from phones.recorder import DROPPED_FILE, SPOOL_SUFFIX, Recorder, recorder
from phones.services import spool_loader
from phones.services.records import CheckRecord, StoredLog, check_row
from phones.services.spool_lines import spool_line, spool_record
from phones.services.spool_loader import spool_load_once, spool_pending_records
from portal.models import AuditEntry
from portal.services.audit import Actor
from portal.services.log_config import log_config_set

pytestmark = pytest.mark.django_db
T0 = dt.datetime(2026, 11, 2, 8, 0, tzinfo=dt.UTC)
URL = "/RequestHandler/ucdevice.upx"


@pytest.fixture(autouse=True)
def data_dir(settings: Settings, tmp_path: Path) -> Path:
    settings.DATA_DIR = tmp_path / "var"
    settings.DEVICE_LOG_DIR = tmp_path / "logs"
    return Path(settings.PHONE_SPOOL_DIR)


def record(index: int, *, version: str = "1.0", minute: int = 0) -> CheckRecord:
    check = UpdateCheck(
        device_type="UCPhone", mac=f"0004F200000{index}", serial="", vendor="Polycom",
        model="CX600", revision="Rev-1", locale="ENU", user_id="",
        modules=(Module("CPE", "CPE.nbt", version, ""),),
    )  # fmt: skip
    return CheckRecord(
        created_at=T0 + dt.timedelta(minutes=minute), channel=Channel.INTERNAL,
        client_address="10.1.2.3", check=check,
        decision=Decision(server_known=True, test_device=False, offered=[], modules=[]),
        user="", outcome=Outcome.NO_RULE, status=200, request_id=uuid.uuid4(),
    )  # fmt: skip


def spool_files(folder: Path) -> list[str]:
    return sorted(name for name in os.listdir(folder) if name.endswith(SPOOL_SUFFIX))


def body(mac: str) -> bytes:
    return (
        '<?xml version="1.0" encoding="utf-8"?>\n<Request><DeviceType>UCPhone</DeviceType>'
        f"<MACAddress>{mac}</MACAddress><SerialNumber></SerialNumber><Vendor>Polycom</Vendor>"
        "<Model>CX600</Model><Revision>Rev-1</Revision><Locale>ENU</Locale><Modules><Module>"
        "<UpdateType>CPE</UpdateType><FileName>CPE.nbt</FileName><Version>1.0</Version>"
        "<TimeStamp>2026-10-01T08:00:00Z</TimeStamp></Module></Modules></Request>"
    ).encode()


def test_a_spool_line_reads_back_as_the_rows_the_check_makes() -> None:
    check = record(1)
    line = spool_line(check, "fe01.example.org")
    assert line.index(b"\n") == len(line) - 1
    assert spool_record(line) == check_row(check, "fe01.example.org")
    log = StoredLog(
        created_at=T0, channel=Channel.EXTERNAL, log_type="Watson", device="0004F2000001",
        mac="0004F2000001", serial="", user="u", name="a.dmp", size=3, path="Client/a.dmp",
    )  # fmt: skip
    assert spool_record(spool_line(log, "fe01.example.org")) == log
    for bad in (b"{}", b"[]", b'["c", 1]', b'["x"]', b"not json"):
        with pytest.raises(ValueError, match="spool record|Expecting value"):
            spool_record(bad)


def test_the_phone_path_makes_no_database_write(client: Client) -> None:
    client.post(URL, data=body("0004F2000009"), content_type="text/xml")  # tables warm
    with CaptureQueriesContext(connection) as queries:
        answered = client.post(URL, data=body("0004F2000001"), content_type="text/xml")
        refused = client.post(URL, data=b"<broken", content_type="text/xml")
    assert (answered.status_code, refused.status_code) == (200, 400)
    writes = [q["sql"] for q in queries if not q["sql"].lstrip().upper().startswith("SELECT")]
    assert writes == []
    assert (RequestAudit.objects.count(), spool_pending_records()) == (0, 3)
    assert spool_load_once() == 3
    assert RequestAudit.objects.count() == 3


def test_a_batch_that_dies_before_its_commit_is_written_again_exactly_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for index in (1, 2, 3):
        recorder.record(record(index))

    def killed(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt  # the process dies after the rows, before the commit

    monkeypatch.setattr(SpoolPosition.objects, "bulk_create", killed)
    with pytest.raises(KeyboardInterrupt):
        spool_load_once()
    assert (RequestAudit.objects.count(), spool_pending_records()) == (0, 3)
    monkeypatch.undo()
    assert (spool_load_once(), spool_load_once()) == (3, 0)
    assert RequestAudit.objects.count() == 3


def test_rotated_files_are_finished_and_deleted(settings: Settings, data_dir: Path) -> None:
    # A file a line: each is rotated once it holds one.
    settings.PHONE_SPOOL_FILE_BYTES = len(spool_line(record(1), settings.SERVER_FQDN))
    writer = Recorder()
    for index in (1, 2, 3):
        writer.record(record(index))
    assert len(spool_files(data_dir)) == 3
    assert spool_load_once() == 3
    assert len(spool_files(data_dir)) == 1  # the current file stays, locked

    # The finished files' positions go with the next batch (a loader killed between
    # the commit and the deletion deletes them then, never reading them again).
    def positions() -> list[bool]:
        return list(SpoolPosition.objects.order_by("file").values_list("finished", flat=True))

    assert positions() == [True, True, False]
    writer.close()  # the process goes: its file is finished
    assert (spool_load_once(), spool_files(data_dir), positions()) == (0, [], [True])
    assert (spool_load_once(), SpoolPosition.objects.count()) == (0, 0)
    assert RequestAudit.objects.count() == 3


def test_an_older_check_read_late_never_undoes_a_newer_one() -> None:
    other = Recorder()  # another web process
    recorder.record(record(1, version="2.0", minute=5))
    assert spool_load_once() == 1
    other.record(record(1, version="1.0", minute=1))
    assert spool_load_once() == 1
    assert Device.objects.get().installed == {"CPE": "2.0"}
    assert RequestAudit.objects.count() == 2
    other.close()


def test_a_torn_last_line_is_quarantined_and_the_file_deleted(
    settings: Settings, data_dir: Path
) -> None:
    data_dir.mkdir(parents=True)
    good = spool_line(record(1), settings.SERVER_FQDN)
    (data_dir / f"{1:020d}-99999{SPOOL_SUFFIX}").write_bytes(good + good[:40])
    assert spool_load_once() == 1
    assert spool_files(data_dir) == []
    quarantine = Path(settings.DATA_DIR) / "quarantine" / "phone-records.jsonl"
    (line,) = [json.loads(text) for text in quarantine.read_text().splitlines()]
    assert (line["kind"], line["row"]) == ("line", good[:40].decode())
    assert AuditEntry.objects.filter(action="phones.record.quarantined").count() == 1


def test_a_full_spool_folder_still_answers_and_says_so(
    client: Client, settings: Settings, data_dir: Path
) -> None:
    assert client.post(URL, data=body("0004F2000001"), content_type="text/xml").status_code == 200
    settings.PHONE_SPOOL_MAX_BYTES = 100  # the one line already there fills it
    recorder._bound_at = 0.0  # look at the folder now, not within the second
    statuses = [
        client.post(URL, data=body(f"0004F200000{i}"), content_type="text/xml").status_code
        for i in (2, 3)
    ]
    assert statuses == [200, 200]
    assert (data_dir / DROPPED_FILE).read_bytes() == b"xx"
    health = client.get("/healthz").json()
    assert health["spool"]["dropped"] == 2
    assert [n.split(":")[0] for n in health["notices"]] == [
        f"the spool folder {data_dir} reached its bound (100 bytes)",
        f"2 phone records were dropped because the spool folder was full (counted in "
        f"{data_dir / DROPPED_FILE}; audited as phones.spool.dropped)",
    ]
    assert spool_load_once() == 1
    entry = AuditEntry.objects.get(action="phones.spool.dropped")
    assert (entry.actor_name, entry.changes) == ("phone_record_loader", {"dropped": [0, 2]})
    assert spool_load_once() == 0  # audited once
    assert AuditEntry.objects.filter(action="phones.spool.dropped").count() == 1


def test_the_loader_command_writes_one_batch(capsys: pytest.CaptureFixture[str]) -> None:
    from django.core.management import call_command

    recorder.record(record(1))
    call_command("phone_record_loader", "--once")
    assert capsys.readouterr().out == "1 records written\n"
    assert RequestAudit.objects.count() == 1


def test_a_stored_log_is_written_by_the_loader_run_at_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The loop writes when a log waits, without waiting LogFlushInterval."""
    recorder.record(
        StoredLog(
            created_at=T0, channel=Channel.INTERNAL, log_type="Watson", device="0004F2000001",
            mac="0004F2000001", serial="", user="", name="a.dmp", size=3, path="Client/a.dmp",
        )
    )  # fmt: skip
    stop: list[bool] = []
    monkeypatch.setattr(spool_loader.time, "sleep", lambda seconds: stop.append(True))
    spool_loader.spool_loader_run(stop=stop, interval=3600)
    assert list(DeviceLog.objects.values_list("name", flat=True)) == ["a.dmp"]


@pytest.mark.parametrize(
    ("changed_at", "written_at"),
    [(None, 300.0), (30.0, 60.0), (90.0, 90.0)],
    ids=["5 minutes kept", "1 minute set 30 s in", "1 minute set 90 s in"],
)
def test_the_running_loader_writes_at_a_changed_flush_interval_from_its_next_poll(
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    django_capture_on_commit_callbacks: Callable[..., Any],
    changed_at: float | None,
    written_at: float,
) -> None:
    """A check waits from second 0 under LogFlushInterval 5 minutes; set to 1 minute
    while the loop runs (a fake clock, each poll's sleep one second), the batch is
    written once the new interval has passed, or at the very next poll if it already has."""
    actor = Actor.system("tests")

    def flush_every(minutes: int) -> None:
        with django_capture_on_commit_callbacks(execute=True):  # the generation moves
            log_config_set(
                scope="global",
                values={"log_flush_interval_minutes": minutes, "max_log_cache_limit": 1_000_000},
                actor=actor,
            )

    flush_every(5)
    recorder.record(record(1))
    clock = [0.0]
    writes: list[float] = []
    stop: list[bool] = []

    def sleep(seconds: float) -> None:
        clock[0] += seconds
        if clock[0] == changed_at:
            flush_every(1)

    def load_once() -> int:
        writes.append(clock[0])
        stop.append(True)
        return spool_load_once()

    # time.monotonic is also the decision table's clock: it re-reads the settings when
    # the fake second has passed, as the real one does.
    monkeypatch.setattr(spool_loader.time, "monotonic", lambda: clock[0])
    monkeypatch.setattr(spool_loader.time, "sleep", sleep)
    monkeypatch.setattr(spool_loader, "spool_load_once", load_once)
    caplog.set_level(logging.INFO, logger=spool_loader.__name__)
    spool_loader.spool_loader_run(stop=stop)
    assert writes == [written_at]
    assert clock[0] == written_at + 1  # one poll a second; the loop ends after the batch
    assert RequestAudit.objects.count() == 1
    said = [r.getMessage() for r in caplog.records if r.getMessage().startswith("writing")]
    every = ["300"] if changed_at is None else ["300", "60"]
    assert said == [
        f"writing the spool at least every {seconds} s (LogFlushInterval), sooner when "
        "1000000 bytes wait (MaxLogCacheLimit)"
        for seconds in every
    ]


def test_a_spool_folder_that_cannot_be_written_still_answers_and_logs(
    client: Client, settings: Settings, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_bytes(b"")
    settings.PHONE_SPOOL_DIR = blocker / "spool"  # under a file: nothing can be created
    recorder._last_alarm = 0.0  # the once-a-second alarm not taken by an earlier test
    response = client.post(URL, data=body("0004F2000001"), content_type="text/xml")
    assert response.status_code == 200
    assert [r.getMessage().split(":")[0] for r in caplog.records if r.levelname == "ERROR"] == [
        f"could not open a spool file in {blocker / 'spool'}",
        f"could not count a dropped record in {blocker / 'spool'}",
        "a phone record was dropped",
    ]
    assert RequestAudit.objects.count() == 0
