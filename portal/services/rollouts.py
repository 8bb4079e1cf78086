"""Staged rollouts: a pending version approved wave by wave (Step 7); the plan and its
state. The other half of "rollouts" is the phone side's: ``phones.selectors`` observes
each wave's phones and ``phones.services.rollout_watch`` moves a rollout on its gates.

The state machine is ``ROLLOUT_MOVES`` (read through ``rollout_transition``), used by
these services, the control panel's buttons and the command's help:

| action  | allowed when               | effect                                              |
| plan    | the rule has P, no active  | a running rollout at wave 1 (A stays, P stays)      |
| advance | running or paused          | the next wave; after the last: completed, approved  |
| pause   | running                    | paused: offered to no new phone                     |
| halt    | running (automatic stop)   | halted, with the threshold crossed as reason        |
| resume  | paused or halted           | running; from halted only new failures count        |
| cancel  | running, paused or halted  | cancelled: who runs it keeps it, nobody new gets it |
| restore | running, paused or halted  | restored: P cancelled, everyone goes back to A      |

While a rollout is running, the phones of the waves so far are offered P and the
others A; paused, halted or cancelled, only phones already running P keep it. Every
transition moves the decision generation and is audited with its reason; a refused one
raises ``DomainError`` and changes nothing.

A plan is read and validated by ``portal.services.rollout_plans`` (its range limits
included); administrators hear of a halt or a completion from
``portal.services.rollout_notifications``, by a task queued after the commit.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from deviceupdate.dispatch import enqueue
from portal.choices import RolloutState, WebhookEvent
from portal.errors import DomainError
from portal.models import DeviceUpdateRule, Rollout, RolloutWave
from portal.selectors import rollout_active
from portal.services.audit import Actor, audit_record
from portal.services.generation import decision_generation_bump
from portal.services.rollout_plans import RolloutPlan, _checked_gates, _checked_waves, plan_summary
from portal.services.rules import rule_approve, rule_reset
from portal.services.webhooks import webhook_event_emit

ACTIVE = RolloutState.active()


@dataclass(frozen=True)
class RolloutMove:
    """One transition of the rollout state machine."""

    action: str  # the verb: "advance"
    done: str  # its past, the audit's and the refusal's word: "advanced"
    allowed: frozenset[RolloutState]
    after: RolloutState  # advance from the last wave: completed instead
    label: str  # the control panel's button
    help: str  # what it does, for the command's help
    by_hand: bool = True  # offered to administrators (halt is the watch's)


ROLLOUT_MOVES: dict[str, RolloutMove] = {
    move.action: move
    for move in (
        RolloutMove(
            "advance", "advanced", frozenset({RolloutState.RUNNING, RolloutState.PAUSED}),
            RolloutState.RUNNING, "Advance",
            "go to the next wave; after the last the rollout completes and the version is "
            "approved for everyone",
        ),
        RolloutMove(
            "pause", "paused", frozenset({RolloutState.RUNNING}), RolloutState.PAUSED, "Pause",
            "offer the version to no new phone until resumed",
        ),
        RolloutMove(
            "halt", "halted", frozenset({RolloutState.RUNNING}), RolloutState.HALTED, "Halt",
            "the automatic stop: offer the version to no new phone", by_hand=False,
        ),
        RolloutMove(
            "resume", "resumed", frozenset({RolloutState.PAUSED, RolloutState.HALTED}),
            RolloutState.RUNNING, "Resume",
            "run again (after a halt only failures from now on count)",
        ),
        RolloutMove(
            "cancel", "cancelled", ACTIVE, RolloutState.CANCELLED, "Cancel",
            "stop for good: phones running the version keep it, no other phone gets it",
        ),
        RolloutMove(
            "restore", "restored", ACTIVE, RolloutState.RESTORED, "Restore",
            "send everyone back: the pending version is cancelled and every phone is offered "
            "the approved version again",
        ),
    )
}  # fmt: skip


def rollout_transition(
    action: str, state: RolloutState, *, last_wave: bool = False
) -> RolloutState | None:
    """The state after ``action`` from ``state`` (None: not allowed from there)."""
    move = ROLLOUT_MOVES[action]
    if state not in move.allowed:
        return None
    if action == "advance" and last_wave:
        return RolloutState.COMPLETED
    return move.after


def rollout_plan(
    *, rule: DeviceUpdateRule, plan: RolloutPlan, actor: Actor, now: dt.datetime | None = None
) -> Rollout:
    """Start approving the rule's pending version wave by wave, at the first wave."""
    checked = _checked_waves(plan.waves)
    _checked_gates(plan)
    now = now or timezone.now()
    try:
        with transaction.atomic():
            rule = (
                DeviceUpdateRule.objects.select_for_update().select_related("pool").get(pk=rule.pk)
            )
            if not rule.pending_version:
                raise DomainError(f"{rule.identity}: no pending version to roll out", field="rule")
            active = rollout_active(rule=rule)
            if active is not None:
                raise DomainError(
                    f"{rule.identity} already has an active rollout (#{active.pk}, {active.state})",
                    field="rule",
                )
            rollout = Rollout.objects.create(
                rule=rule,
                from_version=rule.approved_version,
                to_version=rule.pending_version,
                state=RolloutState.RUNNING,
                current_wave=0,
                wave_started_at=now,
                counting_since=now,
                min_soak_minutes=plan.min_soak_minutes,
                success_percent=plan.success_percent,
                failure_percent=plan.failure_percent,
                failure_max_phones=plan.failure_max_phones,
                min_sample=plan.min_sample,
                silence_minutes=plan.silence_minutes,
                automatic_advance=plan.automatic_advance,
                automatic_halt=plan.automatic_halt,
                reason="planned",
                actor_name=actor.name[:150],
                created_at=now,
                updated_at=now,
            )
            for position, (wave, sites, groups) in enumerate(checked):
                row = RolloutWave.objects.create(
                    rollout=rollout,
                    position=position,
                    percent=wave.percent,
                    started_at=now if position == 0 else None,
                )
                row.sites.set(sites)
                row.groups.set(groups)
            decision_generation_bump()
            audit_record(
                actor=actor,
                action="portal.rollout.planned",
                obj=rollout,
                changes={
                    "rule": [None, rule.identity],
                    "versions": [rule.approved_version or None, rule.pending_version],
                    "plan": [None, plan_summary(rollout)],
                    "state": [None, RolloutState.RUNNING.value],
                },
            )
            webhook_event_emit(
                event=WebhookEvent.ROLLOUT_PLANNED, payload=rollout_event_data(rollout, actor=actor)
            )
            return rollout
    except IntegrityError:
        # A concurrent plan on the same rule won the race (one active rollout per rule).
        raise DomainError(f"{rule.identity} already has an active rollout", field="rule") from None


# The transitions outbound webhooks hear of (the planning is sent by rollout_plan).
WEBHOOK_EVENTS = {
    "advanced": WebhookEvent.ROLLOUT_ADVANCED,
    "halted": WebhookEvent.ROLLOUT_HALTED,
    "completed": WebhookEvent.ROLLOUT_COMPLETED,
}


def rollout_event_data(rollout: Rollout, *, actor: Actor) -> dict[str, Any]:
    """What a webhook is told of a rollout: which, of what, where it stands and why."""
    return {
        "rollout": rollout.pk,
        "rule": rollout.rule.identity,
        "device_class": rollout.rule.device_class,
        "from_version": rollout.from_version or None,
        "to_version": rollout.to_version,
        "state": rollout.state,
        "wave": rollout.current_wave + 1,
        "waves": rollout.waves.count(),
        "reason": rollout.reason,
        "actor": actor.name,
    }


def _locked(rollout: Rollout) -> Rollout:
    try:
        return Rollout.objects.select_for_update().select_related("rule__pool").get(pk=rollout.pk)
    except Rollout.DoesNotExist:
        raise DomainError(f"rollout #{rollout.pk} no longer exists") from None


def _refuse(rollout: Rollout, action: str) -> None:
    move = ROLLOUT_MOVES[action]
    if rollout_transition(action, RolloutState(rollout.state)) is None:
        raise DomainError(
            f"rollout #{rollout.pk} is {rollout.state}: it cannot be {move.done} "
            f"(only when {' or '.join(sorted(move.allowed))})",
            field="state",
        )


def _transition(
    rollout: Rollout,
    *,
    actor: Actor,
    action: str,
    state: RolloutState,
    reason: str,
    now: dt.datetime,
    extra: dict[str, list[Any]] | None = None,
) -> None:
    before = rollout.state
    rollout.state = state
    rollout.reason = reason[:400]
    rollout.updated_at = now
    if state in RolloutState.finished():
        rollout.finished_at = now
    rollout.save()
    decision_generation_bump()
    changes: dict[str, list[Any]] = {"reason": [None, reason]}
    if before != state:
        changes["state"] = [before, state.value]
    changes.update(extra or {})
    audit_record(actor=actor, action=f"portal.rollout.{action}", obj=rollout, changes=changes)
    if action in WEBHOOK_EVENTS:
        webhook_event_emit(
            event=WEBHOOK_EVENTS[action], payload=rollout_event_data(rollout, actor=actor)
        )
    if state in (RolloutState.HALTED, RolloutState.COMPLETED):
        # A queued task after the commit: a slow mail server never holds the request.
        enqueue("portal.tasks.rollout_notify_task", rollout_id=rollout.pk)


def rollout_advance(
    *,
    rollout: Rollout,
    actor: Actor,
    reason: str = "advanced by hand",
    now: dt.datetime | None = None,
) -> Rollout:
    """The next wave; after the last wave the rollout completes and the rule's pending
    version is approved for everyone."""
    now = now or timezone.now()
    with transaction.atomic():
        rollout = _locked(rollout)
        _refuse(rollout, "advance")
        waves = list(rollout.waves.order_by("position"))
        current = waves[rollout.current_wave]
        current.completed_at = now
        current.save(update_fields=["completed_at"])
        if rollout.current_wave + 1 >= len(waves):
            _transition(
                rollout, actor=actor, action="completed", state=RolloutState.COMPLETED,
                reason=reason, now=now,
            )  # fmt: skip
            rule_approve(rule=rollout.rule, actor=actor)
            return rollout
        nxt = waves[rollout.current_wave + 1]
        nxt.started_at = now
        nxt.save(update_fields=["started_at"])
        before = rollout.current_wave
        rollout.current_wave += 1
        rollout.wave_started_at = now
        _transition(
            rollout, actor=actor, action="advanced", state=RolloutState.RUNNING, reason=reason,
            now=now, extra={"wave": [before + 1, rollout.current_wave + 1]},
        )  # fmt: skip
        return rollout


def _move(
    rollout: Rollout, *, actor: Actor, action: str, reason: str, now: dt.datetime | None
) -> Rollout:
    """One transition that only changes the state (``action``: a move of the table)."""
    move = ROLLOUT_MOVES[action]
    with transaction.atomic():
        rollout = _locked(rollout)
        _refuse(rollout, action)
        _transition(
            rollout, actor=actor, action=move.done, state=move.after, reason=reason,
            now=now or timezone.now(),
        )  # fmt: skip
        return rollout


def rollout_pause(
    *,
    rollout: Rollout,
    actor: Actor,
    reason: str = "paused by hand",
    now: dt.datetime | None = None,
) -> Rollout:
    """Offer the version to no new phone until resumed."""
    return _move(
        rollout, actor=actor, action="pause", reason=reason, now=now,
    )  # fmt: skip


def rollout_halt(
    *, rollout: Rollout, actor: Actor, reason: str, now: dt.datetime | None = None
) -> Rollout:
    """The automatic stop (or an administrator's): offered to no new phone."""
    return _move(
        rollout, actor=actor, action="halt", reason=reason, now=now,
    )  # fmt: skip


def rollout_resume(
    *,
    rollout: Rollout,
    actor: Actor,
    reason: str = "resumed by hand",
    now: dt.datetime | None = None,
) -> Rollout:
    """Running again; after a halt only failures observed from now on count."""
    now = now or timezone.now()
    with transaction.atomic():
        rollout = _locked(rollout)
        _refuse(rollout, "resume")
        extra: dict[str, list[Any]] = {}
        if rollout.state == RolloutState.HALTED:
            extra["counting_since"] = [rollout.counting_since.isoformat(), now.isoformat()]
            rollout.counting_since = now
        _transition(
            rollout, actor=actor, action="resumed", state=RolloutState.RUNNING, reason=reason,
            now=now, extra=extra,
        )  # fmt: skip
        return rollout


def rollout_cancel(
    *,
    rollout: Rollout,
    actor: Actor,
    reason: str = "cancelled by hand",
    now: dt.datetime | None = None,
) -> Rollout:
    """Stop for good: phones running the version keep it, no other phone gets it; the
    version stays pending (test devices keep it)."""
    return _move(
        rollout, actor=actor, action="cancel", reason=reason, now=now,
    )  # fmt: skip


def rollout_restore(
    *,
    rollout: Rollout,
    actor: Actor,
    reason: str = "restored by hand",
    now: dt.datetime | None = None,
) -> Rollout:
    """Send everyone back: the rollout ends and the pending version is cancelled, so
    every phone is offered the approved version again."""
    with transaction.atomic():
        rollout = _move(
            rollout, actor=actor, action="restore", reason=reason, now=now,
        )  # fmt: skip
        rule = rollout.rule
        if rule.pending_version == rollout.to_version:
            rule_reset(rule=rule, actor=actor)
        return rollout
