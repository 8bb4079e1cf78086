"""One record the database refuses never costs the others: the batch is written again one
record at a time, the poison record goes to the quarantine (a JSON line, audited, counted
on /healthz), the rest land; a database that cannot be reached keeps the whole batch."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from pathlib import Path

import pytest
from django.db import OperationalError
from django.test import Client
from pytest_django.fixtures import Settings

from phones.choices import Channel, Outcome
from phones.decision import Decision
from phones.models import Device, RequestAudit
from phones.protocol import Module, UpdateCheck
from phones.recorder import recorder
from phones.services import records
from phones.services.records import CheckRecord, records_quarantined, write_records
from phones.services.spool_loader import spool_load_once, spool_pending_records
from portal.models import AuditEntry

pytestmark = pytest.mark.django_db
SERVER = "fe01.example.org"
T0 = dt.datetime(2026, 11, 2, 8, 0, tzinfo=dt.UTC)


@pytest.fixture(autouse=True)
def data_dir(settings: Settings, tmp_path: Path) -> Path:
    """A data directory (and so a quarantine) and a log store private to the test."""
    settings.DATA_DIR = tmp_path / "var"
    settings.DEVICE_LOG_DIR = tmp_path / "logs"
    return settings.DATA_DIR


def record(index: int, *, status: int = 200, model: str = "CX600") -> CheckRecord:
    check = UpdateCheck(
        device_type="UCPhone", mac=f"0004F200000{index}", serial="", vendor="Polycom",
        model=model, revision="Rev-1", locale="ENU", user_id="",
        modules=(Module("CPE", "CPE.nbt", "1.0", ""),),
    )  # fmt: skip
    return CheckRecord(
        created_at=T0, channel=Channel.INTERNAL, client_address="10.1.2.3", check=check,
        decision=Decision(server_known=True, test_device=False, offered=[], modules=[]),
        user="", outcome=Outcome.NO_RULE, status=status, request_id=uuid.UUID(int=index),
    )  # fmt: skip


def quarantined_lines(data_dir: Path) -> list[dict[str, object]]:
    path = data_dir / "quarantine" / "phone-records.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def landed_and_quarantined(poison: CheckRecord, data_dir: Path, error: str) -> None:
    good = [record(1), record(3)]
    assert write_records([good[0], poison, good[1]], server=SERVER) == 2
    assert sorted(RequestAudit.objects.values_list("request_id", flat=True)) == [
        uuid.UUID(int=1),
        uuid.UUID(int=3),
    ]
    assert sorted(Device.objects.values_list("identity", flat=True)) == [
        "MAC:0004F2000001",
        "MAC:0004F2000003",
    ]
    (line,) = quarantined_lines(data_dir)
    assert (line["kind"], line["key"], line["server"]) == ("check", str(uuid.UUID(int=2)), SERVER)
    assert str(line["error"]).startswith(error)
    row = line["row"]
    assert isinstance(row, dict)
    assert (row["mac"], row["status"], row["outcome"]) == (
        "0004F2000002",
        poison.status,
        "no rule",
    )
    entry = AuditEntry.objects.get(action="phones.record.quarantined")
    assert (entry.actor_name, entry.object_type, entry.object_id) == (
        "recorder",
        "phones.check",
        str(uuid.UUID(int=2)),
    )
    assert entry.changes["quarantine"] == [None, str(data_dir / "quarantine/phone-records.jsonl")]
    assert records_quarantined() == 1
    # The audit files hold the lines of the records written, not the poison one.
    files = list((Path(records.audit_files_dir())).glob("*.log"))
    lines = [line for path in files for line in path.read_text().splitlines()]
    assert sorted(line.split(";")[3] for line in lines) == ["0004F2000001", "0004F2000003"]


def test_a_poison_record_is_quarantined_and_the_others_land(data_dir: Path) -> None:
    # A status the column's CHECK constraint refuses, on SQLite and PostgreSQL alike.
    landed_and_quarantined(record(2, status=-1), data_dir, "IntegrityError: ")


def test_a_value_too_long_for_its_column_is_quarantined_on_postgresql(
    postgres: None, data_dir: Path
) -> None:
    # What a 256-character MAC did before the fields had bounds: PostgreSQL refuses it.
    landed_and_quarantined(
        record(2, model="M" * 300), data_dir, "DataError: value too long for type character"
    )


def test_the_loader_keeps_nothing_back_for_a_poison_record(data_dir: Path) -> None:
    for item in (record(1), record(2, status=-1), record(3)):
        recorder.record(item)
    assert (spool_load_once(), spool_pending_records()) == (2, 0)
    assert RequestAudit.objects.count() == 2
    assert len(quarantined_lines(data_dir)) == 1
    assert spool_load_once() == 0  # never retried


def test_a_database_that_cannot_be_reached_keeps_the_whole_batch(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def unreachable(*args: object, **kwargs: object) -> None:
        raise OperationalError("connection refused")

    monkeypatch.setattr(records, "_write_rows", unreachable)
    recorder.record(record(1))
    recorder.record(record(2))
    with pytest.raises(OperationalError):
        spool_load_once()
    assert spool_pending_records() == 2  # no position moved
    assert (quarantined_lines(data_dir), AuditEntry.objects.count()) == ([], 0)
    monkeypatch.undo()
    assert (spool_load_once(), RequestAudit.objects.count()) == (2, 2)


def test_the_quarantine_is_bounded(data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert write_records([record(1, status=-1)], server=SERVER) == 0
    size = (data_dir / "quarantine" / "phone-records.jsonl").stat().st_size
    monkeypatch.setattr(records, "QUARANTINE_MAX_BYTES", size * 3 // 2)  # one line, not two
    assert write_records([record(2, status=-1)], server=SERVER) == 0
    assert [line["key"] for line in quarantined_lines(data_dir)] == [str(uuid.UUID(int=1))]
    assert records_quarantined() == 1
    assert list(
        AuditEntry.objects.order_by("id").values_list("object_id", "changes__quarantine")
    ) == [
        (str(uuid.UUID(int=1)), [None, str(data_dir / "quarantine/phone-records.jsonl")]),
        (str(uuid.UUID(int=2)), [None, "full"]),
    ]


def test_healthz_counts_the_quarantined_records(client: Client, data_dir: Path) -> None:
    write_records([record(1, status=-1)], server=SERVER)
    assert client.get("/healthz").json()["quarantined_records"] == 1
