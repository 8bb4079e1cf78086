"""The rollout watch: each running rollout's current wave against its gates, after the
observed outcomes are brought up to date.

The failure gate is judged before the success gate: a wave that fails halts even when
enough of its phones run the version. Each run samples every started wave (the
dashboard's history) and makes at most one transition per rollout, audited by
``portal.services.rollouts`` with the wave, the counts and the threshold as reason.
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
from phones.selectors import rollout_gate, rollout_progress
from phones.services.outcomes import ObservationResult, outcomes_observe
from portal.choices import RolloutState
from portal.errors import DomainError
from portal.models import Rollout
from portal.services.audit import Actor
from portal.services.rollouts import rollout_advance, rollout_halt

logger = logging.getLogger(__name__)
ACTOR_NAME = "rollout watch"
LOCK_KEY = "phones:rollouts-observe"


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
        verdict = rollout_gate(
            rollout=rollout,
            wave=progress.waves[rollout.current_wave],
            waves=len(progress.waves),
            now=now,
        )
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
