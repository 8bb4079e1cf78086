"""Staged rollouts: a pending version approved wave by wave (Step 7).

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
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.contrib.auth.models import User
from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from portal.choices import RolloutState, WebhookEvent
from portal.errors import DomainError
from portal.models import DeviceGroup, DeviceUpdateRule, Rollout, RolloutWave, Site
from portal.roles import ADMINISTRATORS
from portal.selectors import rollout_active
from portal.services.audit import Actor, audit_record
from portal.services.generation import decision_generation_bump
from portal.services.rules import rule_approve, rule_reset
from portal.services.webhooks import webhook_event_emit

logger = logging.getLogger(__name__)
MAX_WAVES = 20


@dataclass(frozen=True)
class WavePlan:
    """One wave as asked for: a cumulative percentage, or named sites and groups."""

    percent: int | None = None
    sites: tuple[str, ...] = ()
    groups: tuple[str, ...] = ()

    def describe(self) -> str:
        if self.percent is not None:
            return f"{self.percent} %"
        return ", ".join([*(f"site:{s}" for s in self.sites), *(f"group:{g}" for g in self.groups)])


@dataclass(frozen=True)
class RolloutPlan:
    """A rollout plan: the waves and the gates every wave must pass."""

    waves: tuple[WavePlan, ...]
    min_soak_minutes: int = 60
    success_percent: int = 95
    failure_percent: int = 5
    failure_max_phones: int | None = None
    min_sample: int = 10
    silence_minutes: int = 2880
    automatic_advance: bool = True
    automatic_halt: bool = True


def wave_parse(text: str) -> WavePlan:
    """``25`` or ``25%`` (a percentage), or ``site:NAME,group:NAME,...``."""
    value = text.strip()
    if not value:
        raise DomainError("a wave is a percentage or site:NAME / group:NAME", field="waves")
    number = value.removesuffix("%").strip()
    if re.fullmatch(r"-?[0-9]+", number):
        return WavePlan(percent=int(number))
    sites: list[str] = []
    groups: list[str] = []
    for part in value.split(","):
        kind, _, name = part.strip().partition(":")
        if kind.lower() == "site" and name.strip():
            sites.append(name.strip())
        elif kind.lower() == "group" and name.strip():
            groups.append(name.strip())
        else:
            raise DomainError(
                f"{part.strip()!r} is not a wave (a percentage, site:NAME or group:NAME)",
                field="waves",
            )
    return WavePlan(sites=tuple(sites), groups=tuple(groups))


def _check_percent(value: int, name: str) -> None:
    if not 0 <= value <= 100:
        raise DomainError(f"{name} must be 0 to 100, not {value}", field=name)


def _checked_waves(
    waves: Sequence[WavePlan],
) -> list[tuple[WavePlan, list[Site], list[DeviceGroup]]]:
    if not waves:
        raise DomainError("a rollout plan needs at least one wave", field="waves")
    if len(waves) > MAX_WAVES:
        raise DomainError(f"a rollout plan has at most {MAX_WAVES} waves", field="waves")
    checked = []
    previous: int | None = None
    for number, wave in enumerate(waves, start=1):
        if wave.percent is not None and (wave.sites or wave.groups):
            raise DomainError(
                f"wave {number} names a percentage and sites or groups: one or the other",
                field="waves",
            )
        if wave.percent is None and not (wave.sites or wave.groups):
            raise DomainError(
                f"wave {number} is empty: give a percentage, sites or groups", field="waves"
            )
        if wave.percent is not None:
            if not 0 <= wave.percent <= 100:
                raise DomainError(
                    f"wave {number}: a percentage is 0 to 100, not {wave.percent}", field="waves"
                )
            if previous is not None and wave.percent <= previous:
                raise DomainError(
                    f"wave {number}: the percentages must increase ({wave.percent} % "
                    f"after {previous} %)",
                    field="waves",
                )
            previous = wave.percent
        sites = []
        for name in wave.sites:
            site = Site.objects.filter(name__iexact=name).first()
            if site is None:
                raise DomainError(f"wave {number}: no site named {name!r}", field="waves")
            sites.append(site)
        groups = []
        for name in wave.groups:
            group = DeviceGroup.objects.filter(name__iexact=name).first()
            if group is None:
                raise DomainError(f"wave {number}: no device group named {name!r}", field="waves")
            groups.append(group)
        checked.append((wave, sites, groups))
    return checked


def _checked_gates(plan: RolloutPlan) -> None:
    _check_percent(plan.success_percent, "success_percent")
    _check_percent(plan.failure_percent, "failure_percent")
    if plan.min_sample < 1:
        raise DomainError(
            f"min_sample must be at least 1, not {plan.min_sample}", field="min_sample"
        )
    if plan.failure_max_phones is not None and plan.failure_max_phones < 0:
        raise DomainError("failure_max_phones cannot be negative", field="failure_max_phones")
    if not 0 <= plan.min_soak_minutes <= 366 * 24 * 60:
        raise DomainError("min_soak_minutes must be 0 to a year", field="min_soak_minutes")
    if not 1 <= plan.silence_minutes <= 366 * 24 * 60:
        raise DomainError("silence_minutes must be 1 minute to a year", field="silence_minutes")


def plan_summary(rollout: Rollout) -> dict[str, Any]:
    """The plan as the audit trail, the API and the commands show it."""
    return {
        "waves": [wave_describe(wave) for wave in rollout.waves.all()],
        "min_soak_minutes": rollout.min_soak_minutes,
        "success_percent": rollout.success_percent,
        "failure_percent": rollout.failure_percent,
        "failure_max_phones": rollout.failure_max_phones,
        "min_sample": rollout.min_sample,
        "silence_minutes": rollout.silence_minutes,
        "automatic_advance": rollout.automatic_advance,
        "automatic_halt": rollout.automatic_halt,
    }


def wave_describe(wave: RolloutWave) -> str:
    if wave.percent is not None:
        return f"{wave.percent} %"
    names = [*(f"site:{s.name}" for s in wave.sites.all())]
    names += [f"group:{g.name}" for g in wave.groups.all()]
    return ", ".join(names)


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


def _refuse(rollout: Rollout, action: str, allowed: set[RolloutState]) -> None:
    if rollout.state not in allowed:
        raise DomainError(
            f"rollout #{rollout.pk} is {rollout.state}: it cannot be {action} "
            f"(only when {' or '.join(sorted(allowed))})",
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
        rollout_id = rollout.pk
        transaction.on_commit(lambda: rollout_notify(rollout_id=rollout_id))


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
        _refuse(rollout, "advanced", {RolloutState.RUNNING, RolloutState.PAUSED})
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
    rollout: Rollout,
    *,
    actor: Actor,
    action: str,
    allowed: set[RolloutState],
    state: RolloutState,
    reason: str,
    now: dt.datetime | None,
) -> Rollout:
    """One transition that only changes the state (``action``: the audit's verb)."""
    with transaction.atomic():
        rollout = _locked(rollout)
        _refuse(rollout, action, allowed)
        _transition(
            rollout, actor=actor, action=action, state=state, reason=reason,
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
        rollout, actor=actor, action="paused", allowed={RolloutState.RUNNING},
        state=RolloutState.PAUSED, reason=reason, now=now,
    )  # fmt: skip


def rollout_halt(
    *, rollout: Rollout, actor: Actor, reason: str, now: dt.datetime | None = None
) -> Rollout:
    """The automatic stop (or an administrator's): offered to no new phone."""
    return _move(
        rollout, actor=actor, action="halted", allowed={RolloutState.RUNNING},
        state=RolloutState.HALTED, reason=reason, now=now,
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
        _refuse(rollout, "resumed", {RolloutState.PAUSED, RolloutState.HALTED})
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
        rollout, actor=actor, action="cancelled", allowed=set(RolloutState.active()),
        state=RolloutState.CANCELLED, reason=reason, now=now,
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
            rollout, actor=actor, action="restored", allowed=set(RolloutState.active()),
            state=RolloutState.RESTORED, reason=reason, now=now,
        )  # fmt: skip
        rule = rollout.rule
        if rule.pending_version == rollout.to_version:
            rule_reset(rule=rule, actor=actor)
        return rollout


def rollout_by_id(rollout_id: int | str) -> Rollout:
    """The rollout ``#id``; DomainError if none."""
    text = str(rollout_id).strip().lstrip("#")
    if not re.fullmatch(r"[0-9]+", text):
        raise DomainError(f"{rollout_id!r} is not a rollout number", field="rollout")
    rollout = Rollout.objects.select_related("rule__pool").filter(pk=int(text)).first()
    if rollout is None:
        raise DomainError(f"no rollout #{text}", field="rollout", code="not_found")
    return rollout


def notification_recipients() -> list[str]:
    """Administrators with an e-mail address, and DEVICEUPDATE_NOTIFY_EMAILS."""
    users = User.objects.filter(is_active=True).filter(
        Q(is_superuser=True) | Q(groups__name=ADMINISTRATORS)
    )
    addresses = {email for email in users.values_list("email", flat=True) if email}
    addresses.update(settings.DEVICEUPDATE_NOTIFY_EMAILS)
    return sorted(addresses)


def rollout_notify(*, rollout_id: int) -> int:
    """E-mail the administrators that a rollout halted or completed; after commit.

    A mail server that fails is logged, never turned into a failed transition.
    """
    rollout = Rollout.objects.select_related("rule__pool").filter(pk=rollout_id).first()
    recipients = notification_recipients()
    if rollout is None or not recipients:
        return 0
    subject = f"[Device Update] {rollout.name} {rollout.state} on {rollout.rule.pool.fqdn}"
    body = "\n".join(
        [
            f"{rollout.name} ({rollout.rule.name}) is {rollout.state}.",
            f"Rule: {rollout.rule.identity} ({rollout.rule.device_class})",
            "",
            f"Reason: {rollout.reason}",
            f"Wave: {rollout.current_wave + 1} of {rollout.waves.count()}",
            "Plan: " + "; ".join(f"{k}={v}" for k, v in plan_summary(rollout).items()),
        ]
    )
    try:
        return send_mail(subject, body, None, recipients, fail_silently=False)
    except Exception:
        logger.exception("could not send the rollout notification for #%s", rollout.pk)
        return 0
