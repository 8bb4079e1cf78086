"""Observed outcomes: the batch job that reads answered checks and downloads into what
each phone was seen doing with each offered version, one case at a time, with a clock
the tests move."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone
from pytest_django.fixtures import Settings

from deviceupdate_devtools.simulator import parse_offer
from phones.decision import decision_tables
from phones.models import Device, DeviceOutcome, DownloadEvent, ObservationCursor, RequestAudit
from phones.selectors import device_outcomes
from phones.services import outcomes as outcomes_module
from phones.services.outcomes import outcomes_observe
from phones.services.spool_loader import spool_load_once
from portal.models import DeviceUpdateRule
from portal.services.audit import Actor
from portal.services.fleet import device_hold
from portal.services.rollout_plans import RolloutPlan, WavePlan
from portal.services.rollouts import rollout_plan
from portal.services.rules import rule_approve
from tests.phones.test_update_check import URL, request_xml

A, P, R = "4.0.7577.4387", "4.0.7577.5000", "4.0.7577.4363"
START = dt.datetime(2026, 11, 2, 9, 0, tzinfo=dt.UTC)
FOLDER = "UCPhone/Polycom/CX600/Rev-1/ENU/{version}/CPE"
ADMIN = Actor.system("test")


class Clock:
    """The time ``django.utils.timezone.now`` answers, moved by the test."""

    def __init__(self, start: dt.datetime) -> None:
        self.now = start

    def __call__(self) -> dt.datetime:
        return self.now

    def advance(self, **delta: float) -> dt.datetime:
        self.now += dt.timedelta(**delta)
        return self.now


def frozen_clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    """A clock at START that the request audit, the inventory and the decision read."""
    clock = Clock(START)
    monkeypatch.setattr(timezone, "now", clock)
    monkeypatch.setattr("phones.decision.now", clock, raising=False)
    return clock


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    return frozen_clock(monkeypatch)


@dataclass
class SimPhone:
    """A phone of the tests: a CX600 with a MAC from its index; ``fails``: it downloads
    what it is offered but never installs it."""

    index: int
    installed: str
    fails: bool = False

    @property
    def mac(self) -> str:
        return f"00-04-F2-00-{self.index >> 8:02X}-{self.index & 255:02X}"

    @property
    def identity(self) -> str:
        return "MAC:" + self.mac.replace("-", "")

    @property
    def address(self) -> str:
        return f"10.0.{self.index >> 8}.{self.index & 255}"


def check_in(client: Client, phone: SimPhone) -> str | None:
    """The phone checks; it installs what it is offered (unless it fails). The offered
    version, or None."""
    response = client.post(
        URL,
        data=request_xml(mac=phone.mac, serial=f"CX6-{phone.index:07d}", version=phone.installed),
        content_type="text/xml",
        REMOTE_ADDR=phone.address,
    )
    assert response.status_code == 200
    offers = parse_offer(response.content)
    if not offers:
        return None
    if not phone.fails:
        phone.installed = offers[0].version
    return offers[0].version


def observe(clock: Clock, **kwargs: Any) -> outcomes_module.ObservationResult:
    spool_load_once()
    return outcomes_observe(now=clock.now, **kwargs)


def outcome(phone: SimPhone, version: str) -> tuple[Any, ...]:
    row = DeviceOutcome.objects.get(identity=phone.identity, version=version)
    return (
        row.state, row.offered_first, row.offered_last, row.offered_count, row.downloaded_at,
        row.running_at, row.failed_at, row.failure, row.last_seen,
    )  # fmt: skip


def minutes(n: float) -> dt.datetime:
    return START + dt.timedelta(minutes=n)


@pytest.mark.django_db
def test_an_offer_is_recorded_with_its_time_and_count(
    client: Client, rule: DeviceUpdateRule, clock: Clock
) -> None:
    phone = SimPhone(1, R, fails=True)
    assert check_in(client, phone) == A

    result = observe(clock)

    assert (result.checks, dict(result.transitions)) == (1, {"offered": 1})
    assert outcome(phone, A) == ("offered", START, START, 1, None, None, None, "", START)
    assert DeviceOutcome.objects.count() == 1


@pytest.mark.django_db
def test_a_later_check_reporting_the_version_is_running(
    client: Client, rule: DeviceUpdateRule, clock: Clock
) -> None:
    phone = SimPhone(1, R)
    check_in(client, phone)
    clock.advance(minutes=30)
    assert check_in(client, phone) is None  # reports A now: up to date

    observe(clock)

    assert outcome(phone, A) == (
        "running", START, START, 1, None, minutes(30), None, "", minutes(30),
    )  # fmt: skip


@pytest.mark.django_db
def test_a_later_check_still_reporting_the_old_version_is_failed(
    client: Client, rule: DeviceUpdateRule, clock: Clock
) -> None:
    phone = SimPhone(1, R, fails=True)
    check_in(client, phone)
    observe(clock)
    clock.advance(minutes=30)
    assert check_in(client, phone) == A  # offered again: still reports R

    observe(clock)

    assert outcome(phone, A) == (
        "failed", START, minutes(30), 2, None, None, minutes(30),
        f"still reports {R} after the offer", minutes(30),
    )  # fmt: skip


@pytest.mark.django_db
def test_going_back_to_another_version_after_running_is_failed(
    client: Client, rule: DeviceUpdateRule, clock: Clock
) -> None:
    phone = SimPhone(1, R)
    check_in(client, phone)
    clock.advance(minutes=30)
    check_in(client, phone)  # runs A
    clock.advance(minutes=30)
    phone.installed = R  # a factory reset
    check_in(client, phone)

    observe(clock)

    assert outcome(phone, A) == (
        "failed", START, minutes(60), 2, None, minutes(30), minutes(60),
        f"went back to {R}", minutes(60),
    )  # fmt: skip


@pytest.mark.django_db
def test_a_failed_phone_that_reports_the_version_later_is_running(
    client: Client, rule: DeviceUpdateRule, clock: Clock
) -> None:
    phone = SimPhone(1, R, fails=True)
    check_in(client, phone)
    clock.advance(minutes=30)
    check_in(client, phone)
    observe(clock)
    phone.installed, phone.fails = A, False
    clock.advance(minutes=30)
    check_in(client, phone)

    observe(clock)

    assert outcome(phone, A) == (
        "running", START, minutes(30), 2, None, minutes(60), None, "", minutes(60),
    )  # fmt: skip


@pytest.mark.django_db
def test_a_phone_silent_after_the_offer_is_failed_after_the_default_silence(
    client: Client, rule: DeviceUpdateRule, clock: Clock
) -> None:
    phone = SimPhone(1, R, fails=True)
    check_in(client, phone)
    clock.advance(minutes=2880, seconds=-1)
    observe(clock)
    assert outcome(phone, A)[0] == "offered"

    clock.advance(seconds=1)
    result = observe(clock)

    assert result.transitions["failed (silent)"] == 1
    assert outcome(phone, A) == (
        "failed", START, START, 1, None, None, minutes(2880),
        "silent since 2026-11-02 09:00 UTC", START,
    )  # fmt: skip


@pytest.mark.django_db
def test_the_governing_rollouts_silence_applies(
    client: Client, rule: DeviceUpdateRule, clock: Clock
) -> None:
    rollout_plan(
        rule=rule, plan=RolloutPlan(waves=(WavePlan(percent=100),), silence_minutes=60),
        actor=ADMIN, now=START,
    )  # fmt: skip
    phone = SimPhone(1, A, fails=True)
    assert check_in(client, phone) == P
    clock.advance(minutes=59)
    observe(clock)
    assert outcome(phone, P)[0] == "offered"

    clock.advance(minutes=1)
    observe(clock)

    assert outcome(phone, P)[6:8] == (minutes(60), "silent since 2026-11-02 09:00 UTC")


@pytest.mark.django_db
def test_a_held_phone_is_recorded_held_with_the_version_it_would_get(
    client: Client, rule: DeviceUpdateRule, clock: Clock
) -> None:
    phone = SimPhone(1, R)
    device_hold(identity=phone.identity, rule=rule, actor=ADMIN)
    assert check_in(client, phone) is None

    result = observe(clock)

    assert dict(result.transitions) == {"held": 1}
    assert outcome(phone, A) == ("held", None, None, 0, None, None, None, "", START)


@pytest.mark.django_db
def test_a_download_from_the_phones_address_after_the_offer_is_downloaded(
    client: Client, rule: DeviceUpdateRule, clock: Clock
) -> None:
    phone, other = SimPhone(1, R, fails=True), SimPhone(2, R, fails=True)
    check_in(client, phone)
    check_in(client, other)
    folder = FOLDER.format(version=A)
    DownloadEvent.objects.bulk_create(
        [
            # Before the offer, another folder, another address: none of them counts.
            DownloadEvent(created_at=minutes(-1), server="fe", client_address=phone.address,
                          folder=folder, file_name="CPE.nbt"),
            DownloadEvent(created_at=minutes(1), server="fe", client_address=phone.address,
                          folder=FOLDER.format(version=P), file_name="CPE.nbt"),
            DownloadEvent(created_at=minutes(2), server="fe", client_address="10.9.9.9",
                          folder=folder, file_name="CPE.nbt"),
            DownloadEvent(created_at=minutes(3), server="fe", client_address=phone.address,
                          folder=folder, file_name="CPE.nbt"),
        ]
    )  # fmt: skip

    result = observe(clock)

    assert (result.downloads, result.transitions["downloaded"]) == (4, 1)
    assert outcome(phone, A)[:5] == ("downloaded", START, START, 1, minutes(3))
    assert outcome(other, A)[0] == "offered"
    # A download does not stop the next check from judging the offer.
    clock.advance(minutes=30)
    check_in(client, phone)
    observe(clock)
    assert outcome(phone, A)[0] == "failed"


@pytest.mark.django_db
def test_a_whole_image_served_by_django_is_recorded_as_a_download(
    client: Client, rule: DeviceUpdateRule, clock: Clock, settings: Settings, tmp_path: Path
) -> None:
    settings.SERVER_STORE_DIR = tmp_path
    folder = FOLDER.format(version=A)
    (tmp_path / folder).mkdir(parents=True)
    (tmp_path / folder / "CPE.nbt").write_bytes(b"x" * 1000)
    (tmp_path / folder / "CPE.cat").write_bytes(b"catalog")
    url = f"/DeviceUpdateFiles_Int/{folder}"

    whole = client.get(f"{url}/CPE.nbt", REMOTE_ADDR="10.0.0.1")
    assert b"".join(whole.streaming_content) == b"x" * 1000  # type: ignore[attr-defined]
    part = client.get(f"{url}/CPE.nbt", REMOTE_ADDR="10.0.0.2", HTTP_RANGE="bytes=0-9")
    assert b"".join(part.streaming_content) == b"x" * 10  # type: ignore[attr-defined]
    catalog = client.get(f"{url}/CPE.cat", REMOTE_ADDR="10.0.0.3")
    assert b"".join(catalog.streaming_content) == b"catalog"  # type: ignore[attr-defined]
    spool_load_once()

    assert list(
        DownloadEvent.objects.values_list(
            "created_at", "server", "client_address", "folder", "file_name"
        )
    ) == [(START, settings.SERVER_FQDN, "10.0.0.1", folder, "CPE.nbt")]


@pytest.mark.django_db
def test_refused_and_anonymous_checks_are_not_observed(
    client: Client, rule: DeviceUpdateRule, clock: Clock
) -> None:
    response = client.post(URL, data=b"<Request>", content_type="text/xml")
    assert response.status_code == 400
    spool_load_once()
    assert RequestAudit.objects.count() == 1

    result = observe(clock)

    assert (result.checks, DeviceOutcome.objects.count()) == (0, 0)
    assert ObservationCursor.objects.get(name="audit").last_id == RequestAudit.objects.get().pk


@pytest.mark.django_db
def test_a_second_run_reads_nothing_again_and_changes_nothing(
    client: Client, rule: DeviceUpdateRule, clock: Clock
) -> None:
    phone = SimPhone(1, R, fails=True)
    check_in(client, phone)
    clock.advance(minutes=30)
    check_in(client, phone)
    observe(clock)
    before = outcome(phone, A)

    result = observe(clock)

    assert (result.checks, result.downloads, dict(result.transitions)) == (0, 0, {})
    assert outcome(phone, A) == before
    assert (
        ObservationCursor.objects.get(name="audit").last_id == RequestAudit.objects.latest("id").pk
    )


@pytest.mark.django_db
def test_a_run_killed_between_batches_resumes_from_its_cursor_without_counting_twice(
    client: Client, rule: DeviceUpdateRule, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    phone = SimPhone(1, R, fails=True)
    for _ in range(3):
        check_in(client, phone)
        clock.advance(minutes=30)
    spool_load_once()
    first, *_ = RequestAudit.objects.order_by("id").values_list("id", flat=True)
    real_write = outcomes_module._Batch.write
    calls = []

    def write_then_die(batch: outcomes_module._Batch) -> None:
        calls.append(1)
        if len(calls) == 2:
            raise RuntimeError("killed")
        real_write(batch)

    monkeypatch.setattr(outcomes_module._Batch, "write", write_then_die)
    with pytest.raises(RuntimeError, match="killed"):
        observe(clock, batch_size=1)
    assert ObservationCursor.objects.get(name="audit").last_id == first
    assert outcome(phone, A)[:4] == ("offered", START, START, 1)

    monkeypatch.setattr(outcomes_module._Batch, "write", real_write)
    result = observe(clock, batch_size=1)

    assert result.checks == 2
    assert outcome(phone, A) == (
        "failed", START, minutes(60), 3, None, None, minutes(30),
        f"still reports {R} after the offer", minutes(60),
    )  # fmt: skip


@pytest.mark.django_db
def test_the_inventory_lists_a_phones_outcomes_newest_first(
    client: Client, rule: DeviceUpdateRule, clock: Clock
) -> None:
    phone = SimPhone(1, R)
    check_in(client, phone)  # offered A, installs it
    observe(clock)
    rule_approve(rule=rule, actor=ADMIN)
    decision_tables.reset()
    clock.advance(minutes=30)
    assert check_in(client, phone) == P
    observe(clock)

    rows = device_outcomes(identity=phone.identity)

    assert [(row.version, row.state, row.updated_at) for row in rows] == [
        (P, "offered", minutes(30)),
        (A, "running", minutes(30)),
    ]
    assert Device.objects.get(identity=phone.identity).last_address == phone.address
