"""The rollout services: every action from every state, the plan's refusals, the rule
actions a rollout holds back, and the e-mail to administrators."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from typing import Any

import pytest
from django.contrib.auth.models import Group, User
from django.core import mail
from django.core.mail.backends.base import BaseEmailBackend
from django.core.mail.message import EmailMessage
from pytest_django.fixtures import Settings

from portal.choices import RolloutState
from portal.errors import DomainError
from portal.models import (
    AuditEntry,
    DeviceGroup,
    DeviceUpdateRule,
    Rollout,
    RolloutWave,
    Site,
)
from portal.roles import ADMINISTRATORS, HELPDESK
from portal.selectors import rollout_by_id
from portal.services.audit import Actor
from portal.services.generation import decision_generation_current
from portal.services.rollout_notifications import notification_recipients, rollout_notify
from portal.services.rollout_plans import MAX_WAVES, RolloutPlan, WavePlan, plan_summary, wave_parse
from portal.services.rollouts import (
    rollout_advance,
    rollout_cancel,
    rollout_halt,
    rollout_pause,
    rollout_plan,
    rollout_restore,
    rollout_resume,
)
from portal.services.rules import (
    rule_approve,
    rule_remove,
    rule_reset,
    rule_restore,
    rule_set_pending,
)
from tests.factories import CX600, RuleFactory
from tests.factories import RULE_A as RULE_ID

# The rollout e-mail is a queued task: here it runs at once, in this process.
pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("rollout_mail_at_once")]

Capture = Callable[..., AbstractContextManager[Any]]
ACTOR = Actor.system("tests")
R, A, P = "4.0.7577.4363", "4.0.7577.4387", "4.0.7577.5000"
T0 = dt.datetime(2026, 1, 5, 9, 0, tzinfo=dt.UTC)  # the plan
T1 = T0 + dt.timedelta(hours=5)  # the setup's last transition
T2 = T0 + dt.timedelta(hours=8)  # the action under test
REASON = "the tests say so"
HALT_REASON = "wave 2: 3 of 10 observed phones failed (30 % > 5 %)"
MAIL_SUBJECT = "[Device Update] Rollout #{pk} of CX600 " + P + " {state} on {fqdn}"


@pytest.fixture(autouse=True)
def notify(settings: Settings) -> None:
    settings.DEVICEUPDATE_NOTIFY_EMAILS = ["ops@example.org"]


@pytest.fixture
def rule() -> DeviceUpdateRule:
    """Pending P, approved A, restore R."""
    return RuleFactory.create(
        pending_version=P,
        approved_version=A,
        restore_version=R,
    )


def versions(rule: DeviceUpdateRule) -> tuple[str, str, str, bool]:
    rule.refresh_from_db()
    return (rule.pending_version, rule.approved_version, rule.restore_version, rule.restored)


def percents(*values: int) -> RolloutPlan:
    return RolloutPlan(waves=tuple(WavePlan(percent=value) for value in values))


def started(rule: DeviceUpdateRule, plan: RolloutPlan | None = None) -> Rollout:
    return rollout_plan(rule=rule, plan=plan or percents(5, 25, 100), actor=ACTOR, now=T0)


def in_state(rule: DeviceUpdateRule, state: RolloutState, wave: int) -> Rollout:
    """A rollout of 5, 25, 100 % advanced to ``wave`` (index) by T0 + ``wave`` hours,
    then brought to ``state`` at T1 (a completed one advanced to its end at T1)."""
    rollout = started(rule)
    for index in range(wave):
        rollout_advance(rollout=rollout, actor=ACTOR, now=T0 + dt.timedelta(hours=index + 1))
    if state == RolloutState.PAUSED:
        rollout_pause(rollout=rollout, actor=ACTOR, now=T1)
    elif state == RolloutState.HALTED:
        rollout_halt(rollout=rollout, actor=ACTOR, reason=HALT_REASON, now=T1)
    elif state == RolloutState.COMPLETED:
        while rollout.state != RolloutState.COMPLETED:
            rollout = rollout_advance(rollout=rollout, actor=ACTOR, now=T1)
    elif state == RolloutState.CANCELLED:
        rollout_cancel(rollout=rollout, actor=ACTOR, now=T1)
    elif state == RolloutState.RESTORED:
        rollout_restore(rollout=rollout, actor=ACTOR, now=T1)
    rollout = Rollout.objects.get(pk=rollout.pk)
    assert (rollout.state, rollout.current_wave) == (
        state,
        2 if state == RolloutState.COMPLETED else wave,
    )
    return rollout


def stored(rollout: Rollout) -> dict[str, Any]:
    """Everything a transition may change: the rollout row, its waves, its rule's
    versions and the audit trail."""
    return {
        "rollout": Rollout.objects.filter(pk=rollout.pk).values().get(),
        "waves": list(
            RolloutWave.objects.filter(rollout=rollout)
            .order_by("position")
            .values_list("position", "percent", "started_at", "completed_at")
        ),
        "rule": versions(rollout.rule),
        "audit": list(AuditEntry.objects.order_by("id").values_list("id", "action")),
    }


def audit_of(obj: Rollout | DeviceUpdateRule, after: int = 0) -> list[tuple[str, str, Any]]:
    entries = AuditEntry.objects.filter(
        object_type=obj._meta.label_lower, object_id=str(obj.pk), id__gt=after
    )
    return [(e.action, e.actor_name, e.changes) for e in entries.order_by("id")]


def last_audit_id() -> int:
    return AuditEntry.objects.order_by("-id").values_list("id", flat=True).first() or 0


# --- every action from every state --------------------------------------------------

ActionFn = Callable[..., Rollout]
ACTIONS: dict[str, ActionFn] = {
    "advance": rollout_advance,
    "pause": rollout_pause,
    "halt": rollout_halt,
    "resume": rollout_resume,
    "cancel": rollout_cancel,
    "restore": rollout_restore,
}
VERB = {
    "advance": "advanced",
    "pause": "paused",
    "halt": "halted",
    "resume": "resumed",
    "cancel": "cancelled",
    "restore": "restored",
}
ALLOWED_FROM = {
    "advance": "paused or running",
    "pause": "running",
    "halt": "running",
    "resume": "halted or paused",
    "cancel": "halted or paused or running",
    "restore": "halted or paused or running",
}
S = RolloutState
RUNNING, PAUSED, HALTED = S.RUNNING, S.PAUSED, S.HALTED
APPROVED = ("", P, A, False)  # the rule once the rollout completed
RESET = ("", A, R, False)  # the rule once the rollout restored
UNCHANGED = (P, A, R, False)

# state before, wave before (index), action -> state after, wave after (index), the rule's
# versions after, the audit's action and changes besides the reason.
ALLOWED: list[tuple[S, int, str, S, int, tuple[str, str, str, bool], str, dict[str, Any]]] = [
    (RUNNING, 0, "advance", RUNNING, 1, UNCHANGED, "advanced", {"wave": [1, 2]}),
    (RUNNING, 1, "advance", RUNNING, 2, UNCHANGED, "advanced", {"wave": [2, 3]}),
    (RUNNING, 2, "advance", S.COMPLETED, 2, APPROVED, "completed",
     {"state": ["running", "completed"]}),
    (PAUSED, 0, "advance", RUNNING, 1, UNCHANGED, "advanced",
     {"state": ["paused", "running"], "wave": [1, 2]}),
    (PAUSED, 2, "advance", S.COMPLETED, 2, APPROVED, "completed",
     {"state": ["paused", "completed"]}),
    (RUNNING, 1, "pause", PAUSED, 1, UNCHANGED, "paused", {"state": ["running", "paused"]}),
    (RUNNING, 1, "halt", HALTED, 1, UNCHANGED, "halted", {"state": ["running", "halted"]}),
    (PAUSED, 1, "resume", RUNNING, 1, UNCHANGED, "resumed", {"state": ["paused", "running"]}),
    (HALTED, 1, "resume", RUNNING, 1, UNCHANGED, "resumed",
     {"state": ["halted", "running"], "counting_since": [T0.isoformat(), T2.isoformat()]}),
    (RUNNING, 1, "cancel", S.CANCELLED, 1, UNCHANGED, "cancelled",
     {"state": ["running", "cancelled"]}),
    (PAUSED, 1, "cancel", S.CANCELLED, 1, UNCHANGED, "cancelled",
     {"state": ["paused", "cancelled"]}),
    (HALTED, 1, "cancel", S.CANCELLED, 1, UNCHANGED, "cancelled",
     {"state": ["halted", "cancelled"]}),
    (RUNNING, 1, "restore", S.RESTORED, 1, RESET, "restored",
     {"state": ["running", "restored"]}),
    (PAUSED, 1, "restore", S.RESTORED, 1, RESET, "restored", {"state": ["paused", "restored"]}),
    (HALTED, 1, "restore", S.RESTORED, 1, RESET, "restored", {"state": ["halted", "restored"]}),
]  # fmt: skip
ALLOWED_PAIRS = {(case[0], case[2]) for case in ALLOWED}
REFUSED = [
    (state, action) for state in S for action in ACTIONS if (state, action) not in ALLOWED_PAIRS
]


def test_the_tables_cover_every_action_from_every_state() -> None:
    assert len(ALLOWED_PAIRS) + len(REFUSED) == len(S) * len(ACTIONS) == 36
    assert len(REFUSED) == 24


@pytest.mark.parametrize(
    ("state", "wave", "action", "after", "wave_after", "rule_after", "code", "extra"),
    [pytest.param(*case, id=f"{case[0]}@{case[1]}-{case[2]}") for case in ALLOWED],
)
def test_an_allowed_action_moves_the_rollout_audits_it_and_moves_the_generation(
    rule: DeviceUpdateRule,
    django_capture_on_commit_callbacks: Capture,
    state: S,
    wave: int,
    action: str,
    after: S,
    wave_after: int,
    rule_after: tuple[str, str, str, bool],
    code: str,
    extra: dict[str, Any],
) -> None:
    rollout = in_state(rule, state, wave)
    before = stored(rollout)
    since = last_audit_id()
    generation = decision_generation_current()

    with django_capture_on_commit_callbacks(execute=True):
        returned = ACTIONS[action](rollout=rollout, actor=ACTOR, reason=REASON, now=T2)

    row = Rollout.objects.get(pk=rollout.pk)
    assert (returned.pk, returned.state, returned.current_wave) == (rollout.pk, after, wave_after)
    advanced = action == "advance" and after == S.RUNNING
    assert (row.state, row.current_wave, row.reason, row.updated_at) == (
        after,
        wave_after,
        REASON,
        T2,
    )
    assert row.wave_started_at == (T2 if advanced else before["rollout"]["wave_started_at"])
    assert row.counting_since == (T2 if (state, action) == (HALTED, "resume") else T0)
    assert row.finished_at == (T2 if after in S.finished() else None)
    # The untouched columns stay as planned.
    same = ("from_version", "to_version", "created_at", "actor_name", "min_sample")
    assert {k: getattr(row, k) for k in same} == {k: before["rollout"][k] for k in same}

    waves = [list(w) for w in before["waves"]]
    if action == "advance":
        waves[wave][3] = T2
        if wave + 1 < len(waves):
            waves[wave + 1][2] = T2
    assert [list(w) for w in stored(rollout)["waves"]] == waves
    assert versions(rule) == rule_after

    assert audit_of(rollout, after=since) == [
        (f"portal.rollout.{code}", "tests", {"reason": [None, REASON], **extra})
    ]
    rule_entries = audit_of(rule, after=since)
    if rule_after == APPROVED:
        assert rule_entries == [
            (
                "portal.rule.approved",
                "tests",
                {"approved_version": [A, P], "pending_version": [P, ""], "restore_version": [R, A]},
            )
        ]
    elif rule_after == RESET:
        assert rule_entries == [("portal.rule.reset", "tests", {"pending_version": [P, ""]})]
    else:
        assert rule_entries == []
    assert AuditEntry.objects.filter(id__gt=since).count() == 1 + len(rule_entries)

    assert decision_generation_current() != generation
    # Administrators hear of a halt or a completion, after the commit.
    if after in (S.HALTED, S.COMPLETED):
        assert [(m.subject, m.to) for m in mail.outbox] == [
            (
                MAIL_SUBJECT.format(pk=rollout.pk, state=after, fqdn=rollout.rule.pool.fqdn),
                ["ops@example.org"],
            )
        ]
    else:
        assert mail.outbox == []


@pytest.mark.parametrize(
    ("state", "action"), [pytest.param(s, a, id=f"{s}-{a}") for s, a in REFUSED]
)
def test_a_refused_action_names_the_state_and_changes_nothing(
    rule: DeviceUpdateRule,
    django_capture_on_commit_callbacks: Capture,
    state: S,
    action: str,
) -> None:
    rollout = in_state(rule, state, 1)
    before = stored(rollout)
    generation = decision_generation_current()

    with (
        django_capture_on_commit_callbacks(execute=True) as callbacks,
        pytest.raises(DomainError) as error,
    ):
        ACTIONS[action](rollout=rollout, actor=ACTOR, reason=REASON, now=T2)

    assert error.value.message == (
        f"rollout #{rollout.pk} is {state}: it cannot be {VERB[action]} "
        f"(only when {ALLOWED_FROM[action]})"
    )
    assert error.value.field == "state"
    assert stored(rollout) == before
    assert callbacks == []
    assert decision_generation_current() == generation
    assert mail.outbox == []


@pytest.mark.parametrize("action", list(ACTIONS))
def test_an_action_on_a_deleted_rollout_is_refused(rule: DeviceUpdateRule, action: str) -> None:
    rollout = started(rule)
    pk = rollout.pk
    Rollout.objects.filter(pk=pk).delete()
    audit = AuditEntry.objects.count()
    with pytest.raises(DomainError) as error:
        ACTIONS[action](rollout=rollout, actor=ACTOR, reason=REASON, now=T2)
    assert error.value.message == f"rollout #{pk} no longer exists"
    assert (AuditEntry.objects.count(), versions(rule)) == (audit, UNCHANGED)


def test_advancing_through_every_wave_stamps_each_wave_and_completes_once(
    rule: DeviceUpdateRule,
) -> None:
    rollout = started(rule)
    hours = [T0 + dt.timedelta(hours=n) for n in (1, 2, 3)]
    for moment in hours:
        rollout = rollout_advance(rollout=rollout, actor=ACTOR, now=moment)
    assert list(
        RolloutWave.objects.filter(rollout=rollout)
        .order_by("position")
        .values_list("percent", "started_at", "completed_at")
    ) == [(5, T0, hours[0]), (25, hours[0], hours[1]), (100, hours[1], hours[2])]
    assert [action for action, _, _ in audit_of(rollout)] == [
        "portal.rollout.planned",
        "portal.rollout.advanced",
        "portal.rollout.advanced",
        "portal.rollout.completed",
    ]
    assert [(e[2].get("wave"), e[2]["reason"]) for e in audit_of(rollout)[1:]] == [
        ([1, 2], [None, "advanced by hand"]),
        ([2, 3], [None, "advanced by hand"]),
        (None, [None, "advanced by hand"]),
    ]
    assert versions(rule) == APPROVED


def test_a_long_reason_is_cut_in_the_row_and_kept_whole_in_the_audit(
    rule: DeviceUpdateRule,
) -> None:
    rollout = started(rule)
    reason = "x" * 500
    rollout_halt(rollout=rollout, actor=ACTOR, reason=reason, now=T2)
    assert Rollout.objects.get().reason == "x" * 400
    assert audit_of(rollout)[-1][2]["reason"] == [None, reason]


def test_resume_after_a_pause_keeps_counting_failures_since_the_plan(
    rule: DeviceUpdateRule,
) -> None:
    rollout = in_state(rule, PAUSED, 0)
    rollout_resume(rollout=rollout, actor=ACTOR, now=T2)
    rollout_halt(rollout=rollout, actor=ACTOR, reason=HALT_REASON, now=T2 + dt.timedelta(hours=1))
    later = T2 + dt.timedelta(hours=2)
    rollout_resume(rollout=rollout, actor=ACTOR, now=later)
    assert Rollout.objects.get().counting_since == later


# --- rollout_by_id --------------------------------------------------------------------


def test_rollout_by_id_reads_the_number_in_any_form(rule: DeviceUpdateRule) -> None:
    rollout = started(rule)
    for text in (rollout.pk, str(rollout.pk), f"#{rollout.pk}", f" #{rollout.pk} "):
        assert rollout_by_id(text) == rollout


@pytest.mark.parametrize(
    ("text", "message", "code"),
    [
        ("seven", "'seven' is not a rollout number", "invalid"),
        ("", "'' is not a rollout number", "invalid"),
        ("#-1", "'#-1' is not a rollout number", "invalid"),
        # A character str.isdigit() accepts but int() does not read.
        ("#\u00b2", "'#\u00b2' is not a rollout number", "invalid"),
        ("999", "no rollout #999", "not_found"),
        ("#999", "no rollout #999", "not_found"),
    ],
)
def test_rollout_by_id_refuses_what_is_not_a_rollout(text: str, message: str, code: str) -> None:
    with pytest.raises(DomainError) as error:
        rollout_by_id(text)
    assert (error.value.message, error.value.field, error.value.code) == (
        message,
        "rollout",
        code,
    )


# --- rollout_plan ---------------------------------------------------------------------


def test_a_plan_stores_the_versions_the_waves_and_the_gates(
    rule: DeviceUpdateRule, django_capture_on_commit_callbacks: Capture
) -> None:
    Site.objects.create(name="Branch")
    lab = DeviceGroup.objects.create(name="Lab")
    pilots = DeviceGroup.objects.create(name="Pilots")
    plan = RolloutPlan(
        waves=(
            WavePlan(percent=5),
            WavePlan(sites=("branch",)),
            WavePlan(groups=("LAB", "pilots")),
            WavePlan(sites=("Default", "Branch"), groups=("Lab",)),
            WavePlan(percent=50),
            WavePlan(percent=100),
        ),
        min_soak_minutes=30,
        success_percent=90,
        failure_percent=10,
        failure_max_phones=3,
        min_sample=4,
        silence_minutes=600,
        automatic_advance=False,
        automatic_halt=False,
    )
    generation = decision_generation_current()

    with django_capture_on_commit_callbacks(execute=True):
        rollout = rollout_plan(rule=rule, plan=plan, actor=ACTOR, now=T0)

    row = Rollout.objects.filter(pk=rollout.pk).values().get()
    assert row == {
        "id": rollout.pk,
        "rule_id": rule.pk,
        "from_version": A,
        "to_version": P,
        "state": "running",
        "current_wave": 0,
        "wave_started_at": T0,
        "counting_since": T0,
        "min_soak_minutes": 30,
        "success_percent": 90,
        "failure_percent": 10,
        "failure_max_phones": 3,
        "min_sample": 4,
        "silence_minutes": 600,
        "automatic_advance": False,
        "automatic_halt": False,
        "reason": "planned",
        "actor_name": "tests",
        "created_at": T0,
        "updated_at": T0,
        "finished_at": None,
    }
    waves = list(RolloutWave.objects.filter(rollout=rollout).order_by("position"))
    assert [
        (
            w.position,
            w.percent,
            sorted(s.name for s in w.sites.all()),
            sorted(g.name for g in w.groups.all()),
            w.started_at,
            w.completed_at,
        )
        for w in waves
    ] == [
        (0, 5, [], [], T0, None),
        (1, None, ["Branch"], [], None, None),
        (2, None, [], ["Lab", "Pilots"], None, None),
        (3, None, ["Branch", "Default"], ["Lab"], None, None),
        (4, 50, [], [], None, None),
        (5, 100, [], [], None, None),
    ]
    assert [g.pk for g in waves[2].groups.order_by("name")] == [lab.pk, pilots.pk]
    summary = {
        "waves": [
            "5 %",
            "site:Branch",
            "group:Lab, group:Pilots",
            "site:Branch, site:Default, group:Lab",
            "50 %",
            "100 %",
        ],
        "min_soak_minutes": 30,
        "success_percent": 90,
        "failure_percent": 10,
        "failure_max_phones": 3,
        "min_sample": 4,
        "silence_minutes": 600,
        "automatic_advance": False,
        "automatic_halt": False,
    }
    assert plan_summary(rollout) == summary
    assert versions(rule) == UNCHANGED  # A stays, P stays
    assert audit_of(rollout) == [
        (
            "portal.rollout.planned",
            "tests",
            {
                "rule": [None, rule.identity],
                "versions": [A, P],
                "plan": [None, summary],
                "state": [None, "running"],
            },
        )
    ]
    assert AuditEntry.objects.count() == 1
    assert decision_generation_current() != generation


def test_a_plan_takes_the_default_gates_and_a_rule_without_an_approved_version(
    rule: DeviceUpdateRule,
) -> None:
    rule.approved_version = rule.restore_version = ""
    rule.save()
    rollout = rollout_plan(
        rule=rule, plan=RolloutPlan(waves=(WavePlan(percent=100),)), actor=ACTOR, now=T0
    )
    assert (rollout.from_version, rollout.to_version) == ("", P)
    assert plan_summary(rollout) == {
        "waves": ["100 %"],
        "min_soak_minutes": 60,
        "success_percent": 95,
        "failure_percent": 5,
        "failure_max_phones": None,
        "min_sample": 10,
        "silence_minutes": 2880,
        "automatic_advance": True,
        "automatic_halt": True,
    }
    assert AuditEntry.objects.get().changes["versions"] == [None, P]


def test_a_plan_takes_every_bound_of_its_gates(rule: DeviceUpdateRule) -> None:
    year = 366 * 24 * 60
    waves = tuple(WavePlan(percent=p) for p in range(5, 101, 5))
    assert len(waves) == MAX_WAVES
    first = rollout_plan(
        rule=rule,
        plan=RolloutPlan(
            waves=waves, min_soak_minutes=0, success_percent=0, failure_percent=100,
            failure_max_phones=0, min_sample=1, silence_minutes=1,
        ),
        actor=ACTOR,
    )  # fmt: skip
    rollout_cancel(rollout=first, actor=ACTOR)
    second = rollout_plan(
        rule=rule,
        plan=RolloutPlan(
            waves=(WavePlan(percent=0), WavePlan(percent=100)), min_soak_minutes=year,
            success_percent=100, failure_percent=0, silence_minutes=year,
        ),
        actor=ACTOR,
    )  # fmt: skip
    assert (first.waves.count(), second.waves.count()) == (20, 2)
    assert (second.min_soak_minutes, second.silence_minutes) == (year, year)


YEAR = 366 * 24 * 60
W = WavePlan
PLAN_REFUSALS: list[tuple[str, RolloutPlan, str, str]] = [
    ("no waves", RolloutPlan(waves=()), "a rollout plan needs at least one wave", "waves"),
    ("21 waves", RolloutPlan(waves=tuple(W(percent=p) for p in range(1, 22))),
     "a rollout plan has at most 20 waves", "waves"),
    ("negative percent", percents(-1, 100), "wave 1: a percentage is 0 to 100, not -1", "waves"),
    ("percent over 100", percents(5, 101), "wave 2: a percentage is 0 to 100, not 101", "waves"),
    ("same percent", percents(25, 25),
     "wave 2: the percentages must increase (25 % after 25 %)", "waves"),
    ("smaller percent", RolloutPlan(waves=(W(percent=50), W(sites=("Default",)), W(percent=25))),
     "wave 3: the percentages must increase (25 % after 50 %)", "waves"),
    ("percent and site", RolloutPlan(waves=(W(percent=5, sites=("Default",)),)),
     "wave 1 names a percentage and sites or groups: one or the other", "waves"),
    ("percent and group", RolloutPlan(waves=(W(percent=5), W(percent=50, groups=("Lab",)))),
     "wave 2 names a percentage and sites or groups: one or the other", "waves"),
    ("empty wave", RolloutPlan(waves=(W(percent=5), W())),
     "wave 2 is empty: give a percentage, sites or groups", "waves"),
    ("unknown site", RolloutPlan(waves=(W(sites=("Default", "Nowhere")),)),
     "wave 1: no site named 'Nowhere'", "waves"),
    ("unknown group", RolloutPlan(waves=(W(groups=("Lab",)), W(groups=("Ghosts",)))),
     "wave 2: no device group named 'Ghosts'", "waves"),
    ("success over 100", RolloutPlan(waves=(W(percent=100),), success_percent=101),
     "success_percent must be 0 to 100, not 101", "success_percent"),
    ("success negative", RolloutPlan(waves=(W(percent=100),), success_percent=-1),
     "success_percent must be 0 to 100, not -1", "success_percent"),
    ("failure over 100", RolloutPlan(waves=(W(percent=100),), failure_percent=101),
     "failure_percent must be 0 to 100, not 101", "failure_percent"),
    ("failure negative", RolloutPlan(waves=(W(percent=100),), failure_percent=-5),
     "failure_percent must be 0 to 100, not -5", "failure_percent"),
    ("min sample 0", RolloutPlan(waves=(W(percent=100),), min_sample=0),
     "min_sample must be at least 1, not 0", "min_sample"),
    ("negative failure phones", RolloutPlan(waves=(W(percent=100),), failure_max_phones=-1),
     "failure_max_phones cannot be negative", "failure_max_phones"),
    ("negative soak", RolloutPlan(waves=(W(percent=100),), min_soak_minutes=-1),
     "min_soak_minutes must be 0 to a year", "min_soak_minutes"),
    ("soak over a year", RolloutPlan(waves=(W(percent=100),), min_soak_minutes=YEAR + 1),
     "min_soak_minutes must be 0 to a year", "min_soak_minutes"),
    ("silence 0", RolloutPlan(waves=(W(percent=100),), silence_minutes=0),
     "silence_minutes must be 1 minute to a year", "silence_minutes"),
    ("silence over a year", RolloutPlan(waves=(W(percent=100),), silence_minutes=YEAR + 1),
     "silence_minutes must be 1 minute to a year", "silence_minutes"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("plan", "message", "field"),
    [pytest.param(plan, message, field, id=name) for name, plan, message, field in PLAN_REFUSALS],
)
def test_a_refused_plan_says_why_and_creates_nothing(
    rule: DeviceUpdateRule,
    django_capture_on_commit_callbacks: Capture,
    plan: RolloutPlan,
    message: str,
    field: str,
) -> None:
    DeviceGroup.objects.create(name="Lab")
    with (
        django_capture_on_commit_callbacks(execute=True) as callbacks,
        pytest.raises(DomainError) as error,
    ):
        rollout_plan(rule=rule, plan=plan, actor=ACTOR, now=T0)
    assert (error.value.message, error.value.field) == (message, field)
    assert (Rollout.objects.count(), RolloutWave.objects.count()) == (0, 0)
    assert (AuditEntry.objects.count(), versions(rule), callbacks) == (0, UNCHANGED, [])


def test_a_plan_without_a_pending_version_is_refused(
    rule: DeviceUpdateRule, django_capture_on_commit_callbacks: Capture
) -> None:
    rule.pending_version = ""
    rule.save()
    with (
        django_capture_on_commit_callbacks(execute=True) as callbacks,
        pytest.raises(DomainError) as error,
    ):
        started(rule)
    assert (error.value.message, error.value.field) == (
        f"{rule.identity}: no pending version to roll out",
        "rule",
    )
    assert (Rollout.objects.count(), RolloutWave.objects.count()) == (0, 0)
    assert (AuditEntry.objects.count(), callbacks) == (0, [])


@pytest.mark.parametrize("state", sorted(S.active()))
def test_a_second_active_rollout_is_refused(
    rule: DeviceUpdateRule, django_capture_on_commit_callbacks: Capture, state: S
) -> None:
    first = in_state(rule, state, 1)
    before = stored(first)
    with (
        django_capture_on_commit_callbacks(execute=True) as callbacks,
        pytest.raises(DomainError) as error,
    ):
        started(rule)
    assert (error.value.message, error.value.field) == (
        f"{rule.identity} already has an active rollout (#{first.pk}, {state})",
        "rule",
    )
    assert list(Rollout.objects.values_list("pk", flat=True)) == [first.pk]
    assert RolloutWave.objects.count() == 3
    assert (stored(first), callbacks) == (before, [])


@pytest.mark.parametrize("state", [S.CANCELLED, S.COMPLETED, S.RESTORED])
def test_a_new_plan_is_taken_once_the_rollout_ended(rule: DeviceUpdateRule, state: S) -> None:
    in_state(rule, state, 0)
    if state != S.CANCELLED:  # the pending version went with the rollout: import one
        rule_set_pending(
            pool=rule.pool, rule_id=RULE_ID, device_class=CX600, version="4.0.7577.6000",
            actor=ACTOR,
        )  # fmt: skip
    second = rollout_plan(rule=rule, plan=percents(50, 100), actor=ACTOR, now=T2)
    assert (second.state, second.to_version) == (
        "running",
        P if state == S.CANCELLED else "4.0.7577.6000",
    )
    assert Rollout.objects.count() == 2


# --- wave_parse -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "wave"),
    [
        ("25", WavePlan(percent=25)),
        ("25%", WavePlan(percent=25)),
        (" 25 % ", WavePlan(percent=25)),
        ("0", WavePlan(percent=0)),
        ("100", WavePlan(percent=100)),
        ("-5", WavePlan(percent=-5)),  # refused by the plan, with the wave's number
        ("007", WavePlan(percent=7)),
        ("site:Paris", WavePlan(sites=("Paris",))),
        ("SITE: Paris ", WavePlan(sites=("Paris",))),
        ("group:Lab", WavePlan(groups=("Lab",))),
        (
            "site:Paris, group:Lab,Group:Pilots",
            WavePlan(sites=("Paris",), groups=("Lab", "Pilots")),
        ),
        ("group:Lab,site:Paris,site:Oslo", WavePlan(sites=("Paris", "Oslo"), groups=("Lab",))),
        ("site:New York", WavePlan(sites=("New York",))),
    ],
)
def test_wave_parse_reads_a_percentage_or_sites_and_groups(text: str, wave: WavePlan) -> None:
    assert wave_parse(text) == wave


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "a wave is a percentage or site:NAME / group:NAME"),
        ("   ", "a wave is a percentage or site:NAME / group:NAME"),
        ("5.5", "'5.5' is not a wave (a percentage, site:NAME or group:NAME)"),
        ("+5", "'+5' is not a wave (a percentage, site:NAME or group:NAME)"),
        ("5%%", "'5%%' is not a wave (a percentage, site:NAME or group:NAME)"),
        ("half", "'half' is not a wave (a percentage, site:NAME or group:NAME)"),
        ("site:", "'site:' is not a wave (a percentage, site:NAME or group:NAME)"),
        ("group: ", "'group:' is not a wave (a percentage, site:NAME or group:NAME)"),
        ("pool:Paris", "'pool:Paris' is not a wave (a percentage, site:NAME or group:NAME)"),
        ("site:Paris,,group:Lab", "'' is not a wave (a percentage, site:NAME or group:NAME)"),
        ("site:Paris,25", "'25' is not a wave (a percentage, site:NAME or group:NAME)"),
        # Texts whose characters pass str.isdigit() but int() does not read.
        ("--5", "'--5' is not a wave (a percentage, site:NAME or group:NAME)"),
        ("\u00b2", "'\u00b2' is not a wave (a percentage, site:NAME or group:NAME)"),
    ],
)
def test_wave_parse_refuses_what_is_not_a_wave(text: str, message: str) -> None:
    with pytest.raises(DomainError) as error:
        wave_parse(text)
    assert (error.value.message, error.value.field) == (message, "waves")


# --- rule actions held back by an active rollout --------------------------------------

RuleActionFn = Callable[[DeviceUpdateRule], object]


def _import(version: str) -> RuleActionFn:
    def run(rule: DeviceUpdateRule) -> object:
        return rule_set_pending(
            pool=rule.pool, rule_id=RULE_ID, device_class=CX600, version=version, actor=ACTOR
        )

    return run


RULE_ACTIONS: dict[str, RuleActionFn] = {
    "approve": lambda rule: rule_approve(rule=rule, actor=ACTOR),
    "reset": lambda rule: rule_reset(rule=rule, actor=ACTOR),
    "restore": lambda rule: rule_restore(rule=rule, actor=ACTOR),
    "remove": lambda rule: rule_remove(rule=rule, actor=ACTOR),
    "import another version": _import("4.0.7577.6000"),
}


@pytest.mark.parametrize("action", list(RULE_ACTIONS))
@pytest.mark.parametrize("state", sorted(S.active()))
def test_a_rule_action_is_refused_while_a_rollout_is_active(
    rule: DeviceUpdateRule,
    django_capture_on_commit_callbacks: Capture,
    state: S,
    action: str,
) -> None:
    rollout = in_state(rule, state, 1)
    before = stored(rollout)
    with (
        django_capture_on_commit_callbacks(execute=True) as callbacks,
        pytest.raises(DomainError) as error,
    ):
        RULE_ACTIONS[action](rule)
    assert error.value.message == (
        f"{rule.identity}: rollout #{rollout.pk} of {P} is {state}; "
        "advance, restore or cancel the rollout first"
    )
    assert DeviceUpdateRule.objects.filter(pk=rule.pk).exists()
    assert (stored(rollout), callbacks) == (before, [])


@pytest.mark.parametrize("state", sorted(S.active()))
def test_importing_the_rolling_out_version_again_is_no_change_not_a_refusal(
    rule: DeviceUpdateRule, state: S
) -> None:
    rollout = in_state(rule, state, 1)
    before = stored(rollout)
    updated, changed = rule_set_pending(
        pool=rule.pool, rule_id=RULE_ID, device_class=CX600, version="4.0.7577.05000",
        actor=ACTOR,
    )  # fmt: skip
    assert (updated.pk, changed) == (rule.pk, False)
    assert stored(rollout) == before


# The rule after the rollout ended, and after each action then.
AFTER_THE_END: list[tuple[S, str, tuple[str, str, str, bool] | None]] = [
    (S.CANCELLED, "approve", ("", P, A, False)),
    (S.CANCELLED, "reset", ("", A, R, False)),
    (S.CANCELLED, "restore", (P, R, "", True)),
    (S.CANCELLED, "remove", None),
    (S.CANCELLED, "import another version", ("4.0.7577.6000", A, R, False)),
    (S.COMPLETED, "restore", ("", A, "", True)),
    (S.COMPLETED, "remove", None),
    (S.COMPLETED, "import another version", ("4.0.7577.6000", P, A, False)),
    (S.RESTORED, "restore", ("", R, "", True)),
    (S.RESTORED, "remove", None),
    (S.RESTORED, "import another version", ("4.0.7577.6000", A, R, False)),
]


@pytest.mark.parametrize(
    ("state", "action", "expected"),
    [pytest.param(*case, id=f"{case[0]}-{case[1]}") for case in AFTER_THE_END],
)
def test_rule_actions_are_allowed_again_once_the_rollout_ended(
    rule: DeviceUpdateRule,
    state: S,
    action: str,
    expected: tuple[str, str, str, bool] | None,
) -> None:
    in_state(rule, state, 1)
    RULE_ACTIONS[action](rule)
    if expected is None:
        assert not DeviceUpdateRule.objects.filter(pk=rule.pk).exists()
        assert Rollout.objects.count() == 0  # the rule's rollouts go with it
    else:
        assert versions(rule) == expected


# --- rollout_notify -------------------------------------------------------------------


def user(
    name: str,
    email: str,
    *,
    superuser: bool = False,
    active: bool = True,
    groups: Sequence[str] = (),
    staff: bool = False,
) -> User:
    made = User.objects.create_user(
        username=name, email=email, is_superuser=superuser, is_active=active,
        is_staff=staff or superuser,
    )  # fmt: skip
    for group in groups:
        made.groups.add(Group.objects.get(name=group))
    return made


@pytest.fixture
def administrators(settings: Settings) -> None:
    user("root", "root@example.org", superuser=True)
    user("ada", "ada@example.org", groups=[ADMINISTRATORS], staff=True)
    user("both", "both@example.org", superuser=True, groups=[ADMINISTRATORS, HELPDESK])
    user("gone", "gone@example.org", superuser=True, active=False)
    user("left", "left@example.org", groups=[ADMINISTRATORS], active=False)
    user("silent", "", groups=[ADMINISTRATORS])
    user("hal", "hal@example.org", groups=[HELPDESK], staff=True)
    user("staff", "staff@example.org", staff=True)
    settings.DEVICEUPDATE_NOTIFY_EMAILS = ["ops@example.org", "ada@example.org"]


@pytest.mark.usefixtures("administrators")
def test_recipients_are_active_administrators_with_an_address_and_the_setting() -> None:
    assert notification_recipients() == [
        "ada@example.org",
        "both@example.org",
        "ops@example.org",
        "root@example.org",
    ]


@pytest.mark.usefixtures("administrators")
def test_a_halt_mails_the_administrators_once(rule: DeviceUpdateRule) -> None:
    rollout = in_state(rule, HALTED, 1)
    assert rollout_notify(rollout_id=rollout.pk) == 1
    [message] = mail.outbox
    assert message.subject == MAIL_SUBJECT.format(
        pk=rollout.pk, state="halted", fqdn=rule.pool.fqdn
    )
    assert message.to == [
        "ada@example.org",
        "both@example.org",
        "ops@example.org",
        "root@example.org",
    ]
    assert message.body == "\n".join(
        [
            f"Rollout #{rollout.pk} of CX600 {P} (Polycom CX600 Rev-1 ENU CPE on "
            f"{rule.pool.fqdn}) is halted.",
            f"Rule: {rule.identity} (UCPhone/Polycom/CX600/Rev-1/ENU/CPE)",
            "",
            f"Reason: {HALT_REASON}",
            "Wave: 2 of 3",
            "Plan: waves=['5 %', '25 %', '100 %']; min_soak_minutes=60; success_percent=95; "
            "failure_percent=5; failure_max_phones=None; min_sample=10; silence_minutes=2880; "
            "automatic_advance=True; automatic_halt=True",
        ]
    )


def test_no_recipient_no_mail(settings: Settings, rule: DeviceUpdateRule) -> None:
    settings.DEVICEUPDATE_NOTIFY_EMAILS = []
    user("silent", "", superuser=True)
    user("hal", "hal@example.org", groups=[HELPDESK])
    rollout = in_state(rule, HALTED, 1)
    assert notification_recipients() == []
    assert rollout_notify(rollout_id=rollout.pk) == 0
    assert mail.outbox == []


def test_no_mail_for_a_rollout_that_is_gone(rule: DeviceUpdateRule) -> None:
    rollout = in_state(rule, HALTED, 1)
    Rollout.objects.all().delete()
    assert rollout_notify(rollout_id=rollout.pk) == 0
    assert mail.outbox == []


class FailingBackend(BaseEmailBackend):
    """A mail server that refuses every message."""

    def send_messages(self, email_messages: Sequence[EmailMessage]) -> int:
        raise ConnectionRefusedError("the mail server is down")


def test_a_failing_mail_server_is_logged_and_the_transition_stands(
    settings: Settings,
    rule: DeviceUpdateRule,
    caplog: pytest.LogCaptureFixture,
    django_capture_on_commit_callbacks: Capture,
) -> None:
    settings.EMAIL_BACKEND = f"{__name__}.FailingBackend"
    rollout = started(rule)
    with caplog.at_level(logging.ERROR, logger="portal.services.rollouts"):
        assert rollout_notify(rollout_id=rollout.pk) == 0
        with django_capture_on_commit_callbacks(execute=True):
            rollout_halt(rollout=rollout, actor=ACTOR, reason=HALT_REASON, now=T2)
    assert [(r.name, r.levelname, r.getMessage()) for r in caplog.records] == [
        (
            "portal.services.rollouts",
            "ERROR",
            f"could not send the rollout notification for #{rollout.pk}",
        )
    ] * 2
    assert all(
        r.exc_info and isinstance(r.exc_info[1], ConnectionRefusedError) for r in caplog.records
    )
    assert Rollout.objects.get().state == "halted"
    assert mail.outbox == []
