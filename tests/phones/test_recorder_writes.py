"""The recorder's batch writes: audit rows idempotent by request id, one inventory
upsert per phone that keeps when it was first seen (on the configured database)."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest

from phones.choices import Channel, DeviceState, Outcome
from phones.decision import Decision
from phones.models import Device, RequestAudit
from phones.protocol import Module, UpdateCheck
from phones.services.records import CheckRecord, write_records

pytestmark = pytest.mark.django_db
SERVER = "fe01.example.org"
T0 = dt.datetime(2026, 11, 2, 8, 0, tzinfo=dt.UTC)


def record(at: dt.datetime, version: str, *, request_id: uuid.UUID | None = None) -> CheckRecord:
    check = UpdateCheck(
        device_type="UCPhone", mac="0004F2000001", serial="", vendor="Polycom", model="CX600",
        revision="Rev-1", locale="ENU", user_id="",
        modules=(Module("CPE", "CPE.nbt", version, ""),),
    )  # fmt: skip
    decision = Decision(server_known=True, test_device=False, offered=[], modules=[])
    made = CheckRecord(
        created_at=at, channel=Channel.INTERNAL, client_address="10.1.2.3", check=check,
        decision=decision, user="", outcome=Outcome.UP_TO_DATE, status=200, message="",
    )  # fmt: skip
    if request_id is not None:
        made = CheckRecord(**{**vars(made), "request_id": request_id})
    return made


def test_a_phone_is_upserted_and_keeps_its_first_seen() -> None:
    first, later = record(T0, "1.0"), record(T0 + dt.timedelta(hours=1), "2.0")
    assert write_records([first], server=SERVER) == 1
    assert write_records([later], server=SERVER) == 1

    device = Device.objects.get()
    assert (device.identity, device.first_seen, device.last_seen) == (
        "MAC:0004F2000001",
        T0,
        T0 + dt.timedelta(hours=1),
    )
    assert (device.installed, device.state, device.last_address, device.last_server) == (
        {"CPE": "2.0"},
        DeviceState.NO_RULE,  # the decision offered no module
        "10.1.2.3",
        SERVER,
    )
    rows = list(RequestAudit.objects.order_by("created_at").values_list("request_id", "mac"))
    assert rows == [(first.request_id, "0004F2000001"), (later.request_id, "0004F2000001")]


def test_writing_the_same_records_again_adds_no_audit_row() -> None:
    same = record(T0, "1.0", request_id=uuid.UUID(int=7))
    write_records([same], server=SERVER)
    write_records([same], server=SERVER)
    audit = RequestAudit.objects.get()
    assert (audit.request_id, audit.created_at, audit.request_modules) == (
        uuid.UUID(int=7),
        T0,
        [{"update_type": "CPE", "file": "CPE.nbt", "version": "1.0"}],
    )
    assert Device.objects.count() == 1
