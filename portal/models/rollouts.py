"""Staged rollouts: the plan and its state (waves, gates, where the rollout stands).

A rollout approves a rule's pending version wave by wave; the decision table reads the
active rollouts into memory like the rules themselves. Its waves target the fleet
(``portal.models.fleet``). The other half of "rollouts" lives on the phone side:
``phones.selectors`` observes each wave's phones and ``phones.services.rollout_watch``
moves the rollout on its gates.
"""

from __future__ import annotations

from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q

from portal.choices import RolloutState
from portal.models.fleet import DeviceGroup
from portal.models.rules import DeviceUpdateRule
from portal.models.topology import Site

PERCENT = [MinValueValidator(0), MaxValueValidator(100)]


class Rollout(models.Model):
    """A pending version approved in waves, with its gates; the rule's version is
    approved for everyone when the last wave passes its success gate."""

    rule = models.ForeignKey(DeviceUpdateRule, on_delete=models.CASCADE, related_name="rollouts")
    from_version = models.CharField(max_length=64, blank=True)
    to_version = models.CharField(max_length=64)
    state = models.CharField(
        max_length=16, choices=RolloutState.choices, default=RolloutState.RUNNING, db_index=True
    )
    current_wave = models.PositiveSmallIntegerField(default=0, help_text="Index of the wave.")
    wave_started_at = models.DateTimeField()
    # Failures observed before this time do not count (a resume starts counting anew).
    counting_since = models.DateTimeField()
    min_soak_minutes = models.PositiveIntegerField(default=60)
    success_percent = models.PositiveSmallIntegerField(default=95, validators=PERCENT)
    failure_percent = models.PositiveSmallIntegerField(default=5, validators=PERCENT)
    failure_max_phones = models.PositiveIntegerField(
        null=True, blank=True, help_text="Halt when more phones than this failed; empty: no limit."
    )
    min_sample = models.PositiveIntegerField(default=10, validators=[MinValueValidator(1)])
    silence_minutes = models.PositiveIntegerField(
        default=2880,
        validators=[MinValueValidator(1)],
        help_text="A phone silent this long after an offer counts as failed.",
    )
    automatic_advance = models.BooleanField(default=True)
    automatic_halt = models.BooleanField(default=True)
    reason = models.CharField(max_length=400, blank=True, help_text="Why the last transition.")
    actor_name = models.CharField(max_length=150)
    created_at = models.DateTimeField()
    updated_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["rule"],
                condition=Q(state__in=["running", "paused", "halted"]),
                name="rollout_one_active_per_rule",
            )
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def name(self) -> str:
        """What people read: ``Rollout #2 of CX700 4.0.7577.4400``."""
        return f"Rollout #{self.pk} of {self.rule.model} {self.to_version}"


class RolloutWave(models.Model):
    """One wave: a cumulative percentage of the rule's phones, or named sites and
    device groups."""

    rollout = models.ForeignKey(Rollout, on_delete=models.CASCADE, related_name="waves")
    position = models.PositiveSmallIntegerField()
    percent = models.PositiveSmallIntegerField(null=True, blank=True, validators=PERCENT)
    sites = models.ManyToManyField(Site, blank=True, related_name="+")
    groups = models.ManyToManyField(DeviceGroup, blank=True, related_name="+")
    started_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["rollout", "position"]
        constraints = [
            models.UniqueConstraint(fields=["rollout", "position"], name="rollout_wave_position")
        ]

    def __str__(self) -> str:
        return f"wave {self.position + 1}"
