"""The rule state machine: every action from every state, allowed and refused."""

from __future__ import annotations

import uuid
from collections.abc import Callable

import pytest

from portal.choices import RuleAction, RuleState
from portal.device_class import RuleClass
from portal.errors import DomainError
from portal.models import AuditEntry, DeviceUpdateRule, Pool
from portal.selectors import rule_by_identity
from portal.services.audit import Actor
from portal.services.rules import (
    rule_approve,
    rule_remove,
    rule_reset,
    rule_restore,
    rule_set_pending,
    rules_apply,
)
from tests.factories import CX600, RuleFactory
from tests.factories import RULE_A as RULE_ID

pytestmark = pytest.mark.django_db

ACTOR = Actor.system("tests")

# (P, A, R, restored) of every state a rule can be in.
STATES: dict[str, tuple[str, str, str, bool]] = {
    "pending": ("2.0", "", "", False),
    "pending+approved": ("3.0", "2.0", "1.0", False),
    "approved": ("", "2.0", "1.0", False),
    "approved, no restore": ("", "2.0", "", False),
    "restored": ("", "1.0", "", True),
    "not used": ("", "", "", False),
}


def make_rule(state: str) -> DeviceUpdateRule:
    pending, approved, restore, restored = STATES[state]
    return RuleFactory.create(
        pending_version=pending,
        approved_version=approved,
        restore_version=restore,
        restored=restored,
    )


def versions(rule: DeviceUpdateRule) -> tuple[str, str, str, bool]:
    rule.refresh_from_db()
    return (rule.pending_version, rule.approved_version, rule.restore_version, rule.restored)


Action = Callable[..., object]

# state -> action -> expected (P, A, R, restored) or the refusal message's ending.
EXPECTED: dict[str, dict[Action, tuple[str, str, str, bool] | str]] = {
    "pending": {
        rule_approve: ("", "2.0", "", False),
        rule_reset: ("", "", "", False),
        rule_restore: "nothing to restore (no approved version)",
    },
    "pending+approved": {
        rule_approve: ("", "3.0", "2.0", False),
        rule_reset: ("", "2.0", "1.0", False),
        rule_restore: ("3.0", "1.0", "", True),
    },
    "approved": {
        rule_approve: "nothing to approve (no pending version)",
        rule_reset: "nothing to cancel (no pending version)",
        rule_restore: ("", "1.0", "", True),
    },
    "approved, no restore": {
        rule_approve: "nothing to approve (no pending version)",
        rule_reset: "nothing to cancel (no pending version)",
        rule_restore: ("", "", "", True),
    },
    "restored": {
        rule_approve: "nothing to approve (no pending version)",
        rule_reset: "nothing to cancel (no pending version)",
        rule_restore: ("", "", "", True),
    },
    "not used": {
        rule_approve: "nothing to approve (no pending version)",
        rule_reset: "nothing to cancel (no pending version)",
        rule_restore: "nothing to restore (no approved version)",
    },
}

CASES = [
    pytest.param(state, action, expected, id=f"{state}-{action.__name__}")
    for state, row in EXPECTED.items()
    for action, expected in row.items()
]
ACTION_CODES: dict[Action, str] = {
    rule_approve: "portal.rule.approved",
    rule_reset: "portal.rule.reset",
    rule_restore: "portal.rule.restored",
}


@pytest.mark.parametrize(("state", "action", "expected"), CASES)
def test_every_action_from_every_state(
    state: str, action: Action, expected: tuple[str, str, str, bool] | str
) -> None:
    rule = make_rule(state)
    before = versions(rule)
    if isinstance(expected, str):
        with pytest.raises(DomainError) as error:
            action(rule=rule, actor=ACTOR)
        assert error.value.message == f"{rule.identity}: {expected}"
        assert versions(rule) == before
        assert AuditEntry.objects.count() == 0
        return
    action(rule=rule, actor=ACTOR)
    assert versions(rule) == expected
    entry = AuditEntry.objects.get()
    assert (entry.action, entry.actor_name, entry.object_id) == (
        ACTION_CODES[action],
        "tests",
        str(rule.pk),
    )
    names = ("pending_version", "approved_version", "restore_version", "restored")
    assert entry.changes == {
        name: [old, new]
        for name, old, new in zip(names, before, expected, strict=True)
        if old != new
    }


@pytest.mark.parametrize("state", list(STATES))
def test_remove_is_allowed_from_every_state(state: str) -> None:
    rule = make_rule(state)
    rule_remove(rule=rule, actor=ACTOR)
    assert DeviceUpdateRule.objects.count() == 0
    entry = AuditEntry.objects.get()
    assert entry.action == "portal.rule.removed"
    assert entry.changes["brand"] == ["Polycom", None]


@pytest.mark.parametrize(
    ("state", "shown"),
    [
        ("pending", RuleState.PENDING),
        ("pending+approved", RuleState.PENDING_APPROVED),
        ("approved", RuleState.APPROVED),
        ("restored", RuleState.RESTORED),
        ("not used", RuleState.NOT_USED),
    ],
)
def test_state_shown_in_lists(state: str, shown: RuleState) -> None:
    assert make_rule(state).state == shown


def test_import_creates_a_pending_rule_then_sets_pending_on_it() -> None:
    pool = Pool.objects.get()
    rule, changed = rule_set_pending(
        pool=pool, rule_id=RULE_ID, device_class=CX600, version="4.0.7577.04387", actor=ACTOR
    )
    assert changed is True
    assert (rule.pending_version, rule.approved_version, rule.restore_version) == (
        "4.0.7577.4387",
        "",
        "",
    )
    assert rule.identity == f"service:WebServer:{pool.fqdn}/{RULE_ID}"
    rule_approve(rule=rule, actor=ACTOR)
    rule, changed = rule_set_pending(
        pool=pool, rule_id=RULE_ID, device_class=CX600, version="4.0.7577.5000", actor=ACTOR
    )
    assert changed is True
    assert versions(rule) == ("4.0.7577.5000", "4.0.7577.4387", "", False)
    assert list(AuditEntry.objects.order_by("id").values_list("action", flat=True)) == [
        "portal.rule.created",
        "portal.rule.approved",
        "portal.rule.imported",
    ]


def test_importing_the_same_version_twice_changes_nothing() -> None:
    pool = Pool.objects.get()
    rule_set_pending(pool=pool, rule_id=RULE_ID, device_class=CX600, version="1.0", actor=ACTOR)
    rule, changed = rule_set_pending(
        pool=pool, rule_id=RULE_ID, device_class=CX600, version="1.0", actor=ACTOR
    )
    assert changed is False
    rule_approve(rule=rule, actor=ACTOR)
    rule, changed = rule_set_pending(
        pool=pool, rule_id=RULE_ID, device_class=CX600, version="1.0", actor=ACTOR
    )
    assert changed is False
    assert versions(rule) == ("", "1.0", "", False)
    assert AuditEntry.objects.count() == 2


def test_import_refuses_a_second_rule_for_the_same_device_class() -> None:
    pool = Pool.objects.get()
    rule, _ = rule_set_pending(
        pool=pool, rule_id=RULE_ID, device_class=CX600, version="1.0", actor=ACTOR
    )
    other = RuleClass("UCPhone", "POLYCOM", "cx600", "Rev-1", "ENU", "CPE")
    with pytest.raises(DomainError) as error:
        rule_set_pending(
            pool=pool, rule_id=uuid.uuid4(), device_class=other, version="2.0", actor=ACTOR
        )
    assert error.value.message == (
        f"{rule.identity} already serves UCPhone/Polycom/CX600/Rev-1/ENU/CPE with another rule Id"
    )
    assert DeviceUpdateRule.objects.count() == 1
    assert AuditEntry.objects.count() == 1


def test_import_refuses_a_bad_version_and_a_class_that_disagrees_with_the_rule() -> None:
    pool = Pool.objects.get()
    with pytest.raises(DomainError, match="is not a version"):
        rule_set_pending(
            pool=pool, rule_id=RULE_ID, device_class=CX600, version="4.0-beta", actor=ACTOR
        )
    rule_set_pending(pool=pool, rule_id=RULE_ID, device_class=CX600, version="1.0", actor=ACTOR)
    other = RuleClass("UCPhone", "Polycom", "CX700", "Rev-1", "ENU", "CPE")
    with pytest.raises(DomainError, match="serves UCPhone/Polycom/CX600/Rev-1/ENU/CPE, not"):
        rule_set_pending(pool=pool, rule_id=RULE_ID, device_class=other, version="2.0", actor=ACTOR)
    assert versions(DeviceUpdateRule.objects.get()) == ("1.0", "", "", False)


def test_bulk_actions_report_each_outcome() -> None:
    pool = Pool.objects.get()
    pending, _ = rule_set_pending(
        pool=pool, rule_id=RULE_ID, device_class=CX600, version="1.0", actor=ACTOR
    )
    other_class = RuleClass("UCPhone", "Polycom", "CX700", "Rev-1", "ENU", "CPE")
    idle = DeviceUpdateRule.objects.create(pool=pool, **vars(other_class))
    outcomes = rules_apply(action=RuleAction.APPROVE, rules=[pending, idle], actor=ACTOR)
    assert [(o.identity, o.ok, o.message) for o in outcomes] == [
        (pending.identity, True, "approved"),
        (idle.identity, False, f"{idle.identity}: nothing to approve (no pending version)"),
    ]
    assert versions(idle) == ("", "", "", False)
    assert versions(pending) == ("", "1.0", "", False)


def test_rule_by_identity_finds_the_rule_and_refuses_bad_names() -> None:
    rule = make_rule("approved")
    assert (
        rule_by_identity(rule.identity.upper().replace("SERVICE:WEBSERVER:", "service:WebServer:"))
        == rule
    )
    with pytest.raises(DomainError, match="is not a rule identity"):
        rule_by_identity("pool01/abc")
    with pytest.raises(DomainError, match="is not a GUID"):
        rule_by_identity("service:WebServer:pool01.example.org/not-a-guid")
    missing = f"service:WebServer:{rule.pool.fqdn}/{uuid.uuid4()}"
    with pytest.raises(DomainError) as error:
        rule_by_identity(missing)
    assert (error.value.message, error.value.code) == (f"no rule {missing}", "not_found")
