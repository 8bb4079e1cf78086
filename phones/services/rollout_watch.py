"""The rollout watch: each running rollout's current wave against its gates, after the
observed outcomes are brought up to date.

The failure gate is judged before the success gate: a wave that fails halts even when
enough of its phones run the version. Each run samples every started wave (the
dashboard's history) and makes at most one transition per rollout, audited by
``portal.services.rollouts`` with the wave, the counts and the threshold as reason.

This is the phone side's half of "rollouts" (observation and watch); the plan and its
state machine are the portal's (``portal.services.rollouts``). The gate's verdict is
computed once per rollout and run, and carried on its ``RolloutProgress``.
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from dataclasses import dataclass, field

from django.conf import settings
from django.core.cache import cache
from django.utils import timezone

from phones.models import RolloutSample
from phones.selectors import FailedPhone, WaveProgress, rollout_observation
from phones.services.outcomes import ObservationResult, outcomes_observe
from portal.choices import RolloutState
from portal.errors import DomainError
from portal.models import Rollout
from portal.services.audit import Actor
from portal.services.rollouts import rollout_advance, rollout_halt

logger = logging.getLogger(__name__)
ACTOR_NAME = "rollout watch"
LOCK_KEY = "phones:rollouts-observe"


@dataclass(frozen=True)
class RolloutProgress:
    """A rollout's population, its waves' counts and what its current wave waits for."""

    rollout: Rollout
    population: int
    waves: tuple[WaveProgress, ...]
    failed_phones: tuple[FailedPhone, ...]  # newest first, at most FAILED_PHONES_LIMIT
    gate: str  # one line: what the current wave waits for, or why it halted/completed
    verdict: GateVerdict | None = None  # running with a current wave: the gate's verdict


@dataclass(frozen=True)
class GateVerdict:
    """What the gates say about a running rollout's current wave: ``halt``, ``advance``,
    ``ready`` (passed, but advancing is manual) or ``wait``; with the reason."""

    action: str
    reason: str


def rollout_progress(*, rollout: Rollout, now: dt.datetime | None = None) -> RolloutProgress:
    """The rollout's observed counts with its gate's verdict (running: what the current
    wave waits for; otherwise the state and why it was reached)."""
    now = now or timezone.now()
    observed = rollout_observation(rollout=rollout)
    verdict = None
    if rollout.state == RolloutState.RUNNING and rollout.current_wave < len(observed.waves):
        verdict = rollout_gate(
            rollout=rollout,
            wave=observed.waves[rollout.current_wave],
            waves=len(observed.waves),
            now=now,
        )
        gate = verdict.reason
    else:
        gate = f"{rollout.state}: {rollout.reason}"
    return RolloutProgress(
        rollout=rollout,
        population=observed.population,
        waves=observed.waves,
        failed_phones=observed.failed_phones,
        gate=gate,
        verdict=verdict,
    )


def _percent(part: int, whole: int) -> str:
    value = round(100 * part / whole, 1) if whole else 0.0
    return f"{value:g}"


def rollout_gate(
    *, rollout: Rollout, wave: WaveProgress, waves: int, now: dt.datetime
) -> GateVerdict:
    """The failure gate first, then the success gate, for the current wave."""
    number = wave.position + 1
    observed = wave.running + wave.failed
    if observed >= rollout.min_sample:
        crossed = ""
        if wave.failed * 100 > rollout.failure_percent * observed:
            crossed = f"{_percent(wave.failed, observed)} % > {rollout.failure_percent} %"
        elif rollout.failure_max_phones is not None and wave.failed > rollout.failure_max_phones:
            crossed = f"{wave.failed} > {rollout.failure_max_phones} phones"
        if crossed:
            reason = (
                f"wave {number}: {wave.failed} of {observed} observed phones failed ({crossed})"
            )
            if rollout.automatic_halt:
                return GateVerdict("halt", reason)
            return GateVerdict("wait", f"{reason}; automatic halt is off")
    soaked = int((now - rollout.wave_started_at) / dt.timedelta(minutes=1))
    soak = f"soaked {soaked} min"
    if not wave.planned:
        # Never passed by itself: right after a plan, or when the inventory has not yet
        # seen the wave's phones, an empty wave would otherwise let the version through to
        # the next waves untried.
        return GateVerdict(
            "wait",
            f"wave {number} waits: no phones in the wave yet (advance it by hand to skip it), "
            f"{soak}",
        )
    share_ok = wave.running * 100 >= rollout.success_percent * wave.planned
    share = (
        f"{wave.running} of {wave.planned} phones running {rollout.to_version} "
        f"({_percent(wave.running, wave.planned)} % "
        f"{'>=' if share_ok else '<'} {rollout.success_percent} %)"
    )
    if share_ok and soaked >= rollout.min_soak_minutes:
        passed = f"wave {number}: {share}, {soak} (>= {rollout.min_soak_minutes} min)"
        if rollout.automatic_advance:
            return GateVerdict("advance", passed)
        step = "complete" if number >= waves else "advance"
        return GateVerdict("ready", f"{passed}; ready to {step} by hand")
    return GateVerdict(
        "wait",
        f"wave {number} waits: {share}, {wave.failed} failed, {soak} of {rollout.min_soak_minutes}",
    )


def rollouts_watch(*, now: dt.datetime) -> list[str]:
    """Halt, advance (or report ready) each running rollout by its gates; one line each."""
    actor = Actor.system(ACTOR_NAME)
    lines: list[str] = []
    running = Rollout.objects.select_related("rule__pool").filter(state=RolloutState.RUNNING)
    for rollout in running.order_by("pk"):
        progress = rollout_progress(rollout=rollout, now=now)
        RolloutSample.objects.bulk_create(
            [
                RolloutSample(
                    rollout=rollout,
                    taken_at=now,
                    wave=wave.position,
                    planned=wave.planned,
                    offered=wave.offered,
                    running=wave.running,
                    failed=wave.failed + wave.failed_before,
                )
                for wave in progress.waves
                if wave.started_at is not None
            ]
        )
        if rollout.current_wave >= len(progress.waves):
            lines.append(f"rollout #{rollout.pk}: no wave {rollout.current_wave + 1}")
            continue
        verdict = progress.verdict
        if verdict is None:  # not running: the query above only reads running ones
            continue
        try:
            if verdict.action == "halt":
                rollout_halt(rollout=rollout, actor=actor, reason=verdict.reason, now=now)
                lines.append(f"rollout #{rollout.pk} halted: {verdict.reason}")
                continue
            if verdict.action == "advance":
                after = rollout_advance(
                    rollout=rollout, actor=actor, reason=verdict.reason, now=now
                )
                done = "completed" if after.state == RolloutState.COMPLETED else "advanced"
                lines.append(f"rollout #{rollout.pk} {done}: {verdict.reason}")
                continue
        except DomainError as error:
            # Paused, halted or finished by someone else since it was read: their call.
            lines.append(f"rollout #{rollout.pk}: {error.message}")
            continue
        lines.append(f"rollout #{rollout.pk}: {verdict.reason}")
    return lines


@dataclass
class ObservationRun:
    """One run of the observation job: what it read, and one line per running rollout."""

    outcomes: ObservationResult | None
    rollouts: list[str] = field(default_factory=list)

    @property
    def skipped(self) -> bool:
        return self.outcomes is None

    def lines(self) -> list[str]:
        if self.outcomes is None:
            return ["another observation run is in progress; skipped"]
        return [self.outcomes.describe(), *self.rollouts]


def rollouts_observe(*, now: dt.datetime | None = None) -> ObservationRun:
    """Bring the observed outcomes up to date, then judge the running rollouts; one run
    at a time (a second one returns at once, skipped)."""
    token = uuid.uuid4().hex
    if not cache.add(LOCK_KEY, token, timeout=settings.CELERY_TASK_TIME_LIMIT):
        return ObservationRun(outcomes=None)
    try:
        now = now or timezone.now()
        outcomes = outcomes_observe(now=now)
        return ObservationRun(outcomes=outcomes, rollouts=rollouts_watch(now=now))
    finally:
        if cache.get(LOCK_KEY) == token:
            cache.delete(LOCK_KEY)
