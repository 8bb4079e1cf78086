"""Planning a rollout in the control panel: the plan form, dry-run through
``rollout_plan`` (a refusal is a form error), and the page saying what the plan will
reach, step by step."""

from __future__ import annotations

from typing import Any

from django import forms

from portal.admin.base import service_check
from portal.display import format_minutes
from portal.errors import DomainError
from portal.models import DeviceUpdateRule, Rollout
from portal.services.audit import Actor
from portal.services.rollout_plans import MAX_COUNT, RolloutPlan, wave_parse
from portal.services.rollouts import rollout_plan

PLAN_DEFAULTS = RolloutPlan(waves=())


def _version(version: str) -> str:
    return version or "nothing"


# -- planning ---------------------------------------------------------------------------


class RolloutPlanForm(forms.Form):
    """A rollout plan for one rule; ``clean()`` asks ``rollout_plan`` itself (dry run)."""

    waves = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 5, "cols": 40}),
        help_text="One wave a line, in order: a cumulative percentage of the rule's phones "
        "(5, 25, 100), or site:NAME and group:NAME (several joined by commas).",
    )
    min_soak_minutes = forms.IntegerField(
        label="Minimum soak (minutes)",
        initial=PLAN_DEFAULTS.min_soak_minutes,
        help_text="A wave runs at least this long before it may pass.",
    )
    success_percent = forms.IntegerField(
        label="Success gate (%)",
        initial=PLAN_DEFAULTS.success_percent,
        help_text="A wave passes when at least this share of its phones runs the version.",
    )
    failure_percent = forms.IntegerField(
        label="Failure gate (%)",
        initial=PLAN_DEFAULTS.failure_percent,
        help_text="Halt when more than this share of the wave's observed phones failed.",
    )
    failure_max_phones = forms.IntegerField(
        label="Failure gate (phones)",
        required=False,
        max_value=MAX_COUNT,
        help_text="… or when more than this many of them failed; empty: no limit.",
    )
    min_sample = forms.IntegerField(
        label="Minimum sample",
        initial=PLAN_DEFAULTS.min_sample,
        max_value=MAX_COUNT,
        help_text="The failure gate waits until this many of the wave's phones are "
        "observed (running or failed).",
    )
    silence_minutes = forms.IntegerField(
        label="Silence (minutes)",
        initial=PLAN_DEFAULTS.silence_minutes,
        help_text="A phone silent this long after an offer counts as failed.",
    )
    automatic_advance = forms.BooleanField(
        label="Advance automatically",
        required=False,
        initial=PLAN_DEFAULTS.automatic_advance,
        help_text="Start the next wave as soon as the success gate passes; otherwise the "
        "rollout waits for an administrator's Advance.",
    )
    automatic_halt = forms.BooleanField(
        label="Halt automatically",
        required=False,
        initial=PLAN_DEFAULTS.automatic_halt,
        help_text="Stop offering the version as soon as the failure gate is crossed.",
    )

    def __init__(self, *args: Any, rule: DeviceUpdateRule, actor: Actor, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.rule = rule
        self.actor = actor

    def plan(self) -> RolloutPlan:
        """The plan the valid form describes."""
        data = self.cleaned_data
        return RolloutPlan(
            waves=tuple(wave_parse(line) for line in data["waves"].splitlines() if line.strip()),
            min_soak_minutes=data["min_soak_minutes"],
            success_percent=data["success_percent"],
            failure_percent=data["failure_percent"],
            failure_max_phones=data["failure_max_phones"],
            min_sample=data["min_sample"],
            silence_minutes=data["silence_minutes"],
            automatic_advance=data["automatic_advance"],
            automatic_halt=data["automatic_halt"],
        )

    def apply(self) -> Rollout:
        return rollout_plan(rule=self.rule, plan=self.plan(), actor=self.actor)

    def refuse(self, error: DomainError) -> None:
        """Show a service's refusal beside the field it names (the rule: above the form)."""
        self.add_error(error.field if error.field in self.fields else None, error.message)

    def clean(self) -> dict[str, Any]:
        cleaned: dict[str, Any] = super().clean() or {}
        if not self.errors:
            error = service_check(self.apply)
            if error is not None:
                self.refuse(error)
        return cleaned


def plan_preview(rule: DeviceUpdateRule, plan: RolloutPlan) -> list[str]:
    """What the plan will do, in terms of what phones will be offered, step by step."""
    pending, approved = rule.pending_version, _version(rule.approved_version)
    first, *later = plan.waves
    lines = [
        f"Now: wave 1 of {len(plan.waves)} ({first.describe()}) starts. The phones it takes "
        f"are offered {pending}; every other phone keeps {approved}. Test devices get "
        f"{pending} as before.",
    ]
    if later:
        named = ", ".join(
            f"wave {number} ({wave.describe()})" for number, wave in enumerate(later, start=2)
        )
        lines.append(f"Then, one at a time: {named}.")
    how = (
        "it advances by itself"
        if plan.automatic_advance
        else "it waits for an administrator's Advance"
    )
    lines.append(
        f"Success gate: once at least {plan.success_percent} % of a wave's phones run "
        f"{pending} and the wave has run {format_minutes(plan.min_soak_minutes)}, {how}."
    )
    limit = f" or more than {plan.failure_max_phones} phones" if plan.failure_max_phones else ""
    if plan.failure_max_phones == 0:
        limit = " or any phone"
    crossed = (
        "the rollout halts: the version is offered to no new phone"
        if plan.automatic_halt
        else "nothing stops by itself (no automatic halt)"
    )
    lines.append(
        f"Failure gate: once {plan.min_sample} of a wave's phones are observed, if more than "
        f"{plan.failure_percent} %{limit} of them failed, {crossed}. A phone silent "
        f"{format_minutes(plan.silence_minutes)} after an offer counts as failed."
    )
    lines.append(f"After the last wave passes, {pending} is approved for everyone.")
    return lines
