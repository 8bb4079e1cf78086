"""Device update rules and their state machine (management spec, "Device update rules").

| action  | allowed when | effect                                              |
| import  | always       | P := version (a new rule: P set, A and R empty)     |
| approve | P set        | R := A; A := P; P := empty                          |
| reset   | P set        | P := empty                                          |
| restore | A set        | A := R; R := empty (no R: A := empty)               |
| remove  | always       | the rule is deleted                                 |

``rule_transition`` is that table as a pure function: the services apply it under a row
lock, and the control panel's confirmation page previews it. A refused action raises
``DomainError`` and changes nothing (no audit row either).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from django.db import transaction

from portal.choices import RuleAction
from portal.device_class import RULE_CLASS_FIELDS, RuleClass
from portal.errors import DomainError
from portal.identifiers import normalise_version
from portal.models import DeviceUpdateRule, Pool
from portal.selectors import rollout_active
from portal.services.audit import Actor, audit_record, diff, snapshot
from portal.services.generation import decision_generation_bump

VERSION_FIELDS = ("pending_version", "approved_version", "restore_version", "restored")


@dataclass(frozen=True)
class RuleVersions:
    """What the state machine reads and writes: P, A, R and whether A came from a restore."""

    pending: str
    approved: str
    restore: str
    restored: bool

    @classmethod
    def of(cls, rule: DeviceUpdateRule) -> RuleVersions:
        return cls(rule.pending_version, rule.approved_version, rule.restore_version, rule.restored)

    def write_to(self, rule: DeviceUpdateRule) -> None:
        rule.pending_version = self.pending
        rule.approved_version = self.approved
        rule.restore_version = self.restore
        rule.restored = self.restored


class TransitionRefused(Exception):
    """The action does not apply to the rule's versions; ``reason`` says why."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


def rule_transition(action: RuleAction, before: RuleVersions) -> RuleVersions | None:
    """The versions after ``action`` (None: the rule is deleted), or TransitionRefused."""
    if action is RuleAction.APPROVE:
        if not before.pending:
            raise TransitionRefused("nothing to approve (no pending version)")
        return RuleVersions("", before.pending, before.approved, restored=False)
    if action is RuleAction.RESET:
        if not before.pending:
            raise TransitionRefused("nothing to cancel (no pending version)")
        return RuleVersions("", before.approved, before.restore, before.restored)
    if action is RuleAction.RESTORE:
        if not before.approved:
            raise TransitionRefused("nothing to restore (no approved version)")
        return RuleVersions(before.pending, before.restore, "", restored=True)
    return None  # remove


def rule_import_transition(before: RuleVersions, version: str) -> RuleVersions | None:
    """P := version; None when that changes nothing (the same version again)."""
    if before.pending == version or (not before.pending and before.approved == version):
        return None
    return RuleVersions(version, before.approved, before.restore, restored=False)


@dataclass(frozen=True)
class RuleOutcome:
    """What one action did to one rule, for bulk reports."""

    identity: str
    ok: bool
    message: str


def _locked(rule: DeviceUpdateRule) -> DeviceUpdateRule:
    """Re-read the rule under a row lock, so concurrent actions apply one after another."""
    try:
        return DeviceUpdateRule.objects.select_for_update().select_related("pool").get(pk=rule.pk)
    except DeviceUpdateRule.DoesNotExist:
        raise DomainError(f"{rule.identity}: the rule no longer exists") from None


def _refuse_during_rollout(rule: DeviceUpdateRule) -> None:
    """A rule whose version is rolling out changes only through its rollout."""
    active = rollout_active(rule=rule)
    if active is not None:
        raise DomainError(
            f"{rule.identity}: rollout #{active.pk} of {active.to_version} is {active.state}; "
            "advance, restore or cancel the rollout first"
        )


def _save_versions(
    rule: DeviceUpdateRule, *, actor: Actor, action: str, before: dict[str, Any]
) -> None:
    rule.full_clean()
    rule.save(update_fields=[*VERSION_FIELDS, "updated_at"])
    decision_generation_bump()
    audit_record(
        actor=actor,
        action=action,
        obj=rule,
        changes=diff(before, snapshot(rule, VERSION_FIELDS)),
    )


def rule_set_pending(
    *,
    pool: Pool,
    rule_id: uuid.UUID,
    device_class: RuleClass,
    version: str,
    actor: Actor,
) -> tuple[DeviceUpdateRule, bool]:
    """Import hook: P := version on the pool's rule ``rule_id`` for ``device_class`` (the
    device class and update type), creating it when new.

    Returns the rule and whether anything changed: importing the same version again
    (pending, or approved with nothing pending) changes nothing.
    """
    try:
        version = normalise_version(version)
    except ValueError as error:
        raise DomainError(str(error), field="version") from None
    with transaction.atomic():
        rule = (
            DeviceUpdateRule.objects.select_for_update()
            .select_related("pool")
            .filter(pool=pool, rule_id=rule_id)
            .first()
        )
        if rule is None:
            clash = DeviceUpdateRule.objects.filter(device_class.q(), pool=pool).first()
            if clash is not None:
                raise DomainError(
                    f"{clash.identity} already serves {clash.device_class} with another rule Id"
                )
            rule = DeviceUpdateRule(
                pool=pool, rule_id=rule_id, pending_version=version, **device_class.as_fields()
            )
            rule.full_clean()
            rule.save()
            decision_generation_bump()
            audit_record(
                actor=actor,
                action="portal.rule.created",
                obj=rule,
                changes=diff({}, snapshot(rule, (*RULE_CLASS_FIELDS, *VERSION_FIELDS))),
            )
            return rule, True
        if RuleClass.of(rule) != device_class:
            raise DomainError(f"{rule.identity} serves {rule.device_class}, not {device_class}")
        after = rule_import_transition(RuleVersions.of(rule), version)
        if after is None:
            return rule, False
        _refuse_during_rollout(rule)
        before = snapshot(rule, VERSION_FIELDS)
        after.write_to(rule)
        _save_versions(rule, actor=actor, action="portal.rule.imported", before=before)
        return rule, True


def _apply(
    rule: DeviceUpdateRule, action: RuleAction, *, actor: Actor, audit_action: str
) -> DeviceUpdateRule:
    with transaction.atomic():
        rule = _locked(rule)
        _refuse_during_rollout(rule)
        try:
            after = rule_transition(action, RuleVersions.of(rule))
        except TransitionRefused as refused:
            raise DomainError(f"{rule.identity}: {refused.reason}") from None
        assert after is not None  # only remove deletes, and it has its own service
        before = snapshot(rule, VERSION_FIELDS)
        after.write_to(rule)
        _save_versions(rule, actor=actor, action=audit_action, before=before)
        return rule


def rule_approve(*, rule: DeviceUpdateRule, actor: Actor) -> DeviceUpdateRule:
    """R := A; A := P; P := empty. Refused without a pending version."""
    return _apply(rule, RuleAction.APPROVE, actor=actor, audit_action="portal.rule.approved")


def rule_reset(*, rule: DeviceUpdateRule, actor: Actor) -> DeviceUpdateRule:
    """P := empty (test devices go back to the approved version). Refused without P."""
    return _apply(rule, RuleAction.RESET, actor=actor, audit_action="portal.rule.reset")


def rule_restore(*, rule: DeviceUpdateRule, actor: Actor) -> DeviceUpdateRule:
    """A := R; R := empty; with no R nothing is offered any more. Refused without A."""
    return _apply(rule, RuleAction.RESTORE, actor=actor, audit_action="portal.rule.restored")


def rule_remove(*, rule: DeviceUpdateRule, actor: Actor) -> None:
    """Delete the rule; its files stay until the pool's unused files are cleared."""
    with transaction.atomic():
        rule = _locked(rule)
        _refuse_during_rollout(rule)
        audit_record(
            actor=actor,
            action="portal.rule.removed",
            obj=rule,
            changes=diff(snapshot(rule, (*RULE_CLASS_FIELDS, *VERSION_FIELDS)), {}),
        )
        rule.delete()
        decision_generation_bump()


_ACTIONS: dict[str, Callable[..., object]] = {
    RuleAction.APPROVE: rule_approve,
    RuleAction.RESET: rule_reset,
    RuleAction.RESTORE: rule_restore,
    RuleAction.REMOVE: rule_remove,
}

_DONE = {
    RuleAction.APPROVE: "approved",
    RuleAction.RESET: "pending version cancelled",
    RuleAction.RESTORE: "restored",
    RuleAction.REMOVE: "removed",
}


def rules_apply(
    *, action: RuleAction | str, rules: Iterable[DeviceUpdateRule], actor: Actor
) -> list[RuleOutcome]:
    """Apply one action to each rule on its own; report each outcome, refusals included."""
    action = RuleAction(action)
    outcomes = []
    for rule in rules:
        identity = rule.identity
        try:
            _ACTIONS[action](rule=rule, actor=actor)
        except DomainError as error:
            outcomes.append(RuleOutcome(identity=identity, ok=False, message=error.message))
        else:
            outcomes.append(RuleOutcome(identity=identity, ok=True, message=_DONE[action]))
    return outcomes
