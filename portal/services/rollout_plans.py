"""A rollout plan as asked for and checked: its waves (a cumulative percentage, or named
sites and device groups), its gates and their range limits, and the plan as the audit
trail, the API and the commands show it. ``rollout_plan`` (``portal.services.rollouts``)
starts a rollout from a plan that passed these checks."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from portal.errors import DomainError
from portal.models import DeviceGroup, Rollout, Site
from portal.waves import wave_describe

MAX_WAVES = 20
# The largest count a plan may hold: what a database integer column holds. The entry
# points refuse larger numbers before they reach the service (form, serializer, command).
MAX_COUNT = 2_147_483_647


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
