"""The rollout watch: phones check in through the real endpoint, the observation job
judges each running rollout's current wave by its gates, with a clock the tests move."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

import pytest
from django.core import mail
from django.core.cache import cache
from django.test import Client
from pytest_django.fixtures import Settings

from phones.decision import decision_tables
from phones.models import Device, DeviceOutcome, ObservationCursor, RolloutSample
from phones.services.rollout_watch import LOCK_KEY, rollout_progress, rollouts_observe
from phones.services.spool_loader import spool_load_once
from phones.tasks import rollouts_observe_task
from portal.models import AuditEntry, DeviceGroup, DeviceUpdateRule, Rollout, TestDevice
from portal.services.fleet import device_hold
from portal.services.rollout_plans import RolloutPlan, WavePlan
from portal.services.rollouts import rollout_advance, rollout_plan, rollout_resume
from portal.waves import bucket
from tests.factories import RULE_A as RULE_ID
from tests.factories import RolloutFactory
from tests.phones.services.test_outcomes import (
    ADMIN,
    START,
    Clock,
    SimPhone,
    check_in,
    frozen_clock,
)

# The rollout e-mail is a queued task: here it runs at once, in this process.
pytestmark = pytest.mark.usefixtures("rollout_mail_at_once")

A, P = "4.0.7577.4387", "4.0.7577.5000"
PHONES = 40
Capture = Callable[..., AbstractContextManager[Any]]


def in_percent(phone: SimPhone, percent: int) -> bool:
    return bucket(str(RULE_ID), phone.identity) < percent * 100


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    return frozen_clock(monkeypatch)


@pytest.fixture
def phones() -> list[SimPhone]:
    """40 CX600s running the approved version: 10 in the first 25 %, 20 in 50 %."""
    fleet = [SimPhone(index, A) for index in range(1, PHONES + 1)]
    assert [sum(in_percent(p, pct) for p in fleet) for pct in (25, 50, 100)] == [10, 20, 40]
    return fleet


@pytest.fixture(autouse=True)
def notify(settings: Settings) -> None:
    settings.DEVICEUPDATE_NOTIFY_EMAILS = ["ops@example.org"]


def plan(rule: DeviceUpdateRule, *percents: int, **gates: Any) -> Rollout:
    waves = tuple(WavePlan(percent=p) for p in percents)
    gates = {"min_soak_minutes": 60, "min_sample": 5, **gates}
    return RolloutFactory.create(rule=rule, waves=waves, actor=ADMIN, now=START, **gates)


def check_round(client: Client, clock: Clock, fleet: list[SimPhone]) -> dict[int, str]:
    """A minute later every phone checks once; what each was offered (phone index)."""
    clock.advance(minutes=1)
    offered = {phone.index: check_in(client, phone) for phone in fleet}
    return {index: version for index, version in offered.items() if version}


def watch(clock: Clock, capture: Capture, *, at: float) -> list[str]:
    """The observation job at START + ``at`` minutes (mails sent after commit)."""
    spool_load_once()
    clock.now = START + dt.timedelta(minutes=at)
    with capture(execute=True):
        lines = rollouts_observe().lines()
    decision_tables.reset()  # the next checks see the transition at once
    return lines[1:]  # without the outcomes' summary


def transitions(rollout: Rollout) -> list[tuple[str, str, str]]:
    entries = AuditEntry.objects.filter(
        object_type__iendswith="rollout", object_id=str(rollout.pk)
    ).exclude(action="portal.rollout.planned")
    return [
        (entry.action, entry.actor_name, entry.changes["reason"][1])
        for entry in entries.order_by("id")
    ]


@pytest.mark.django_db
def test_a_healthy_rollout_advances_wave_by_wave_and_approves_the_rule(
    client: Client,
    rule: DeviceUpdateRule,
    clock: Clock,
    phones: list[SimPhone],
    django_capture_on_commit_callbacks: Capture,
) -> None:
    rollout = plan(rule, 25, 50, 100)
    wave_1 = {p.index for p in phones if in_percent(p, 25)}
    wave_2 = {p.index for p in phones if in_percent(p, 50)} - wave_1

    assert set(check_round(client, clock, phones)) == wave_1
    assert check_round(client, clock, phones) == {}
    assert watch(clock, django_capture_on_commit_callbacks, at=30) == [
        f"rollout #{rollout.pk}: wave 1 waits: 10 of 10 phones running {P} (100 % >= 95 %), "
        "0 failed, soaked 30 min of 60"
    ]
    passed_1 = f"wave 1: 10 of 10 phones running {P} (100 % >= 95 %), soaked 60 min (>= 60 min)"
    assert watch(clock, django_capture_on_commit_callbacks, at=60) == [
        f"rollout #{rollout.pk} advanced: {passed_1}"
    ]

    clock.now = START + dt.timedelta(minutes=60)
    assert check_round(client, clock, phones) == dict.fromkeys(wave_2, P)
    check_round(client, clock, phones)
    passed_2 = f"wave 2: 10 of 10 phones running {P} (100 % >= 95 %), soaked 60 min (>= 60 min)"
    assert watch(clock, django_capture_on_commit_callbacks, at=120) == [
        f"rollout #{rollout.pk} advanced: {passed_2}"
    ]

    clock.now = START + dt.timedelta(minutes=120)
    assert len(check_round(client, clock, phones)) == 20
    check_round(client, clock, phones)
    passed_3 = f"wave 3: 20 of 20 phones running {P} (100 % >= 95 %), soaked 60 min (>= 60 min)"
    assert watch(clock, django_capture_on_commit_callbacks, at=180) == [
        f"rollout #{rollout.pk} completed: {passed_3}"
    ]

    rollout.refresh_from_db()
    rule.refresh_from_db()
    assert (rollout.state, rollout.current_wave, rollout.finished_at) == (
        "completed", 2, START + dt.timedelta(minutes=180),
    )  # fmt: skip
    assert (rule.approved_version, rule.pending_version) == (P, "")
    assert transitions(rollout) == [
        ("portal.rollout.advanced", "rollout watch", passed_1),
        ("portal.rollout.advanced", "rollout watch", passed_2),
        ("portal.rollout.completed", "rollout watch", passed_3),
    ]
    assert (
        AuditEntry.objects.filter(action="portal.rule.approved", actor_name="rollout watch").count()
        == 1
    )
    assert [message.subject for message in mail.outbox] == [
        f"[Device Update] Rollout #{rollout.pk} of CX600 {P} completed on {rollout.rule.pool.fqdn}"
    ]
    last = RolloutSample.objects.filter(rollout=rollout, taken_at=START + dt.timedelta(minutes=180))
    assert list(last.values_list("wave", "planned", "offered", "running", "failed")) == [
        (0, 10, 10, 10, 0),
        (1, 10, 10, 10, 0),
        (2, 20, 20, 20, 0),
    ]
    assert RolloutSample.objects.filter(rollout=rollout).count() == 1 + 1 + 2 + 3


@pytest.fixture
def halted(
    client: Client,
    rule: DeviceUpdateRule,
    clock: Clock,
    phones: list[SimPhone],
    django_capture_on_commit_callbacks: Capture,
) -> Rollout:
    """25 % then 100 %: 3 of the first wave's 10 phones never install; halted at +3 min."""
    rollout = plan(rule, 25, 100)
    wave_1 = sorted(p.index for p in phones if in_percent(p, 25))
    for phone in phones:
        phone.fails = phone.index in wave_1[:3]
    assert len(check_round(client, clock, phones)) == 10
    assert sorted(check_round(client, clock, phones)) == wave_1[:3]  # offered again
    assert watch(clock, django_capture_on_commit_callbacks, at=3) == [
        f"rollout #{rollout.pk} halted: wave 1: 3 of 10 observed phones failed (30 % > 5 %)"
    ]
    return rollout


@pytest.mark.django_db
def test_a_rollout_whose_phones_keep_the_old_version_halts_and_offers_nothing_more(
    client: Client,
    clock: Clock,
    phones: list[SimPhone],
    halted: Rollout,
    django_capture_on_commit_callbacks: Capture,
) -> None:
    halted.refresh_from_db()
    assert (halted.state, halted.current_wave, halted.reason) == (
        "halted", 0, "wave 1: 3 of 10 observed phones failed (30 % > 5 %)",
    )  # fmt: skip
    assert transitions(halted) == [
        ("portal.rollout.halted", "rollout watch", halted.reason),
    ]
    assert [message.subject for message in mail.outbox] == [
        f"[Device Update] Rollout #{halted.pk} of CX600 {P} halted on {halted.rule.pool.fqdn}"
    ]
    assert "Reason: wave 1: 3 of 10 observed phones failed (30 % > 5 %)" in mail.outbox[0].body

    # Nobody new gets the version: not the failed phones, not new phones of the first wave.
    newcomers = [SimPhone(index, A) for index in (44, 46, 47)]
    assert all(in_percent(phone, 25) for phone in newcomers)
    assert check_round(client, clock, phones + newcomers) == {}
    assert {p.installed for p in phones} == {A, P}
    # A later run leaves it halted, with no new transition and no new mail.
    assert watch(clock, django_capture_on_commit_callbacks, at=10) == []
    assert (len(transitions(halted)), len(mail.outbox)) == (1, 1)


@pytest.mark.django_db
def test_after_a_resume_only_new_failures_count(
    client: Client,
    clock: Clock,
    phones: list[SimPhone],
    halted: Rollout,
    django_capture_on_commit_callbacks: Capture,
) -> None:
    clock.now = START + dt.timedelta(minutes=10)
    rollout_resume(rollout=halted, actor=ADMIN, now=clock.now)
    decision_tables.reset()
    wave_1 = sorted(p.index for p in phones if in_percent(p, 25))
    assert sorted(check_round(client, clock, phones)) == wave_1[:3]  # offered again

    assert watch(clock, django_capture_on_commit_callbacks, at=12) == [
        f"rollout #{halted.pk}: wave 1 waits: 7 of 10 phones running {P} (70 % < 95 %), "
        "0 failed, soaked 12 min of 60"
    ]
    first = rollout_progress(rollout=Rollout.objects.get(pk=halted.pk)).waves[0]
    assert (first.running, first.failed, first.failed_before) == (7, 0, 3)

    back = next(p for p in phones if p.index == wave_1[3])
    back.installed, back.fails = A, True  # goes back to the old version
    check_round(client, clock, phones)
    assert watch(clock, django_capture_on_commit_callbacks, at=14) == [
        f"rollout #{halted.pk} halted: wave 1: 1 of 7 observed phones failed (14.3 % > 5 %)"
    ]
    first = rollout_progress(rollout=Rollout.objects.get(pk=halted.pk)).waves[0]
    assert (first.planned, first.running, first.failed, first.failed_before) == (10, 6, 1, 3)
    assert [f.identity for f in rollout_progress(rollout=halted).failed_phones][0] == (
        back.identity
    )
    assert len(mail.outbox) == 2


@pytest.mark.django_db
def test_no_halt_below_the_minimum_sample(
    client: Client,
    rule: DeviceUpdateRule,
    clock: Clock,
    phones: list[SimPhone],
    django_capture_on_commit_callbacks: Capture,
) -> None:
    rollout = plan(rule, 25, 100, min_sample=11)
    wave_1 = sorted(p.index for p in phones if in_percent(p, 25))
    for phone in phones:
        phone.fails = phone.index in wave_1[:3]
    check_round(client, clock, phones)
    check_round(client, clock, phones)

    assert watch(clock, django_capture_on_commit_callbacks, at=3) == [
        f"rollout #{rollout.pk}: wave 1 waits: 7 of 10 phones running {P} (70 % < 95 %), "
        "3 failed, soaked 3 min of 60"
    ]
    rollout.refresh_from_db()
    assert (rollout.state, transitions(rollout), mail.outbox) == ("running", [], [])


@pytest.mark.django_db
def test_more_failed_phones_than_the_maximum_halts(
    client: Client,
    rule: DeviceUpdateRule,
    clock: Clock,
    phones: list[SimPhone],
    django_capture_on_commit_callbacks: Capture,
) -> None:
    rollout = plan(rule, 25, 100, failure_percent=50, failure_max_phones=2)
    wave_1 = sorted(p.index for p in phones if in_percent(p, 25))
    for phone in phones:
        phone.fails = phone.index in wave_1[:3]
    check_round(client, clock, phones)
    check_round(client, clock, phones)

    assert watch(clock, django_capture_on_commit_callbacks, at=3) == [
        f"rollout #{rollout.pk} halted: wave 1: 3 of 10 observed phones failed (3 > 2 phones)"
    ]


@pytest.mark.django_db
def test_with_the_automatic_halt_off_a_failing_wave_is_only_reported(
    client: Client,
    rule: DeviceUpdateRule,
    clock: Clock,
    phones: list[SimPhone],
    django_capture_on_commit_callbacks: Capture,
) -> None:
    rollout = plan(rule, 25, 100, automatic_halt=False)
    wave_1 = sorted(p.index for p in phones if in_percent(p, 25))
    for phone in phones:
        phone.fails = phone.index in wave_1[:3]
    check_round(client, clock, phones)
    check_round(client, clock, phones)

    assert watch(clock, django_capture_on_commit_callbacks, at=90) == [
        f"rollout #{rollout.pk}: wave 1: 3 of 10 observed phones failed (30 % > 5 %); "
        "automatic halt is off"
    ]
    rollout.refresh_from_db()
    assert (rollout.state, transitions(rollout), mail.outbox) == ("running", [], [])


@pytest.mark.django_db
def test_with_manual_advance_a_passed_wave_is_only_reported_ready(
    client: Client,
    rule: DeviceUpdateRule,
    clock: Clock,
    phones: list[SimPhone],
    django_capture_on_commit_callbacks: Capture,
) -> None:
    rollout = plan(rule, 25, 100, automatic_advance=False)
    check_round(client, clock, phones)
    check_round(client, clock, phones)

    assert watch(clock, django_capture_on_commit_callbacks, at=60) == [
        f"rollout #{rollout.pk}: wave 1: 10 of 10 phones running {P} (100 % >= 95 %), "
        "soaked 60 min (>= 60 min); ready to advance by hand"
    ]
    rollout.refresh_from_db()
    assert (rollout.state, rollout.current_wave, transitions(rollout)) == ("running", 0, [])
    assert rollout_progress(rollout=rollout, now=clock.now).gate.endswith(
        "ready to advance by hand"
    )


@pytest.mark.django_db
def test_a_wave_without_phones_never_passes_by_itself_only_by_hand(
    client: Client,
    rule: DeviceUpdateRule,
    clock: Clock,
    django_capture_on_commit_callbacks: Capture,
) -> None:
    DeviceGroup.objects.create(name="nobody")
    rollout = rollout_plan(
        rule=rule,
        plan=RolloutPlan(waves=(WavePlan(groups=("nobody",)), WavePlan(percent=100))),
        actor=ADMIN,
        now=START,
    )

    waiting = "wave 1 waits: no phones in the wave yet (advance it by hand to skip it)"
    assert watch(clock, django_capture_on_commit_callbacks, at=59) == [
        f"rollout #{rollout.pk}: {waiting}, soaked 59 min"
    ]
    assert watch(clock, django_capture_on_commit_callbacks, at=600) == [
        f"rollout #{rollout.pk}: {waiting}, soaked 600 min"
    ]
    rollout.refresh_from_db()
    assert (rollout.state, rollout.current_wave, transitions(rollout)) == ("running", 0, [])

    rollout_advance(rollout=rollout, actor=ADMIN, now=clock.now)
    rollout.refresh_from_db()
    assert (rollout.state, rollout.current_wave) == ("running", 1)


@pytest.mark.django_db
def test_the_population_leaves_out_test_devices_held_phones_and_other_pools(
    client: Client,
    rule: DeviceUpdateRule,
    clock: Clock,
    phones: list[SimPhone],
) -> None:
    rollout = plan(rule, 25, 100)
    TestDevice.objects.create(
        site=None, name="lab", identifier_type="MACAddress", identifier="0004F2000001"
    )
    device_hold(identity=phones[1].identity, rule=rule, actor=ADMIN)
    decision_tables.reset()
    check_round(client, clock, phones)
    spool_load_once()
    Device.objects.filter(identity=phones[2].identity).update(last_server="elsewhere.example")

    progress = rollout_progress(rollout=rollout, now=clock.now)

    assert progress.population == PHONES - 3
    assert [w.planned for w in progress.waves] == [
        sum(in_percent(p, 25) for p in phones[3:]),
        sum(not in_percent(p, 25) for p in phones[3:]),
    ]
    assert [(w.position, w.label) for w in progress.waves] == [(0, "25 %"), (1, "100 %")]


@pytest.mark.django_db
def test_a_second_run_while_one_is_going_is_skipped(rule: DeviceUpdateRule, clock: Clock) -> None:
    cache.add(LOCK_KEY, "another", timeout=60)

    run = rollouts_observe(now=clock.now)

    assert (run.skipped, run.lines()) == (True, ["another observation run is in progress; skipped"])
    assert (ObservationCursor.objects.count(), DeviceOutcome.objects.count()) == (0, 0)


@pytest.mark.django_db
def test_the_beat_task_runs_the_observation(
    client: Client, rule: DeviceUpdateRule, clock: Clock, phones: list[SimPhone]
) -> None:
    rollout = plan(rule, 25, 100)
    check_round(client, clock, phones[:1])
    spool_load_once()

    lines = rollouts_observe_task()

    assert lines[0] == "read 1 checks and 0 downloads; 1 offered"
    assert lines[1:] == [
        f"rollout #{rollout.pk}: wave 1 waits: 0 of 1 phones running {P} (0 % < 95 %), "
        "0 failed, soaked 1 min of 60"
    ]
    assert cache.get(LOCK_KEY) is None
