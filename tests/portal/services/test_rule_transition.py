"""The rule state machine as a pure function: the table of the management spec, cell by
cell, and the confirmation preview refusing exactly where the services refuse."""

from __future__ import annotations

import pytest

from portal.admin.rules import rule_preview
from portal.choices import RuleAction
from portal.models import DeviceUpdateRule
from portal.services.rules import (
    RuleVersions,
    TransitionRefused,
    rule_import_transition,
    rule_transition,
)

V = RuleVersions


@pytest.mark.parametrize(
    ("action", "before", "after"),
    [
        (RuleAction.APPROVE, V("2.0", "1.0", "0.9", True), V("", "2.0", "1.0", False)),
        (RuleAction.APPROVE, V("2.0", "", "", False), V("", "2.0", "", False)),
        (RuleAction.RESET, V("2.0", "1.0", "0.9", True), V("", "1.0", "0.9", True)),
        (RuleAction.RESTORE, V("2.0", "1.0", "0.9", False), V("2.0", "0.9", "", True)),
        (RuleAction.RESTORE, V("", "1.0", "", False), V("", "", "", True)),
        (RuleAction.REMOVE, V("", "", "", False), None),
        (RuleAction.REMOVE, V("2.0", "1.0", "0.9", False), None),
    ],
)
def test_each_allowed_action_gives_the_spec_versions(
    action: RuleAction, before: RuleVersions, after: RuleVersions | None
) -> None:
    assert rule_transition(action, before) == after


@pytest.mark.parametrize(
    ("action", "before", "reason"),
    [
        (RuleAction.APPROVE, V("", "1.0", "0.9", False), "nothing to approve (no pending version)"),
        (RuleAction.RESET, V("", "1.0", "", False), "nothing to cancel (no pending version)"),
        (RuleAction.RESTORE, V("2.0", "", "", False), "nothing to restore (no approved version)"),
    ],
)
def test_each_refusal_says_why(action: RuleAction, before: RuleVersions, reason: str) -> None:
    with pytest.raises(TransitionRefused) as refused:
        rule_transition(action, before)
    assert refused.value.reason == reason


@pytest.mark.parametrize(
    ("before", "version", "after"),
    [
        (V("", "", "", False), "1.0", V("1.0", "", "", False)),
        (V("2.0", "1.0", "", True), "3.0", V("3.0", "1.0", "", False)),
        (V("2.0", "1.0", "", False), "2.0", None),  # the same pending version again
        (V("", "1.0", "", False), "1.0", None),  # the approved one, nothing pending
        (V("", "1.0", "", False), "0.9", V("0.9", "1.0", "", False)),  # a downgrade pends
    ],
)
def test_an_import_sets_pending_unless_nothing_changes(
    before: RuleVersions, version: str, after: RuleVersions | None
) -> None:
    assert rule_import_transition(before, version) == after


@pytest.mark.parametrize("action", list(RuleAction))
@pytest.mark.parametrize("pending", ["", "2.0"])
@pytest.mark.parametrize("approved", ["", "1.0"])
@pytest.mark.parametrize("restore", ["", "0.9"])
def test_the_preview_refuses_exactly_where_the_state_machine_does(
    action: RuleAction, pending: str, approved: str, restore: str
) -> None:
    rule = DeviceUpdateRule(
        pending_version=pending, approved_version=approved, restore_version=restore
    )
    try:
        rule_transition(action, RuleVersions.of(rule))
        refused = False
    except TransitionRefused:
        refused = True
    assert rule_preview(action, rule).refused is refused
