"""Staged rollouts, maintenance windows, device groups and per-phone holds and pins.

A rollout approves a rule's pending version wave by wave; the decision table reads the
active rollouts, windows, groups and controls into memory like the rules themselves.
"""

from __future__ import annotations

from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q

from portal.choices import DeviceControlKind, IdentifierType, RolloutState, Weekday
from portal.models.rules import DeviceUpdateRule
from portal.models.topology import Site

PERCENT = [MinValueValidator(0), MaxValueValidator(100)]


class DeviceGroup(models.Model):
    """A named set of phones (by MAC or serial number) a rollout wave can target."""

    name = models.CharField(max_length=100, unique=True)
    description = models.CharField(max_length=400, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class DeviceGroupMember(models.Model):
    """One phone of a group, named like a test device (normalised identifier)."""

    group = models.ForeignKey(DeviceGroup, on_delete=models.CASCADE, related_name="members")
    identifier_type = models.CharField(max_length=16, choices=IdentifierType.choices)
    identifier = models.CharField(max_length=64)

    class Meta:
        ordering = ["group", "identifier"]
        constraints = [
            models.UniqueConstraint(
                fields=["group", "identifier_type", "identifier"], name="device_group_member_unique"
            )
        ]

    def __str__(self) -> str:
        return f"{self.group.name}: {self.identifier}"

    @property
    def identity(self) -> str:
        """The inventory's key for this phone (``MAC:…`` or ``SN:…``)."""
        prefix = "MAC" if self.identifier_type == IdentifierType.MAC_ADDRESS else "SN"
        return f"{prefix}:{self.identifier.upper()}"


class MaintenanceWindow(models.Model):
    """A weekly window, in its site's local time, in which phones of the site's pools
    may be offered new versions. A site without windows is always open."""

    site = models.ForeignKey(Site, on_delete=models.CASCADE, related_name="maintenance_windows")
    weekday = models.PositiveSmallIntegerField(choices=Weekday.choices)
    start = models.TimeField(help_text="Local time of the site.")
    end = models.TimeField(help_text="Local time of the site; after the start.")

    class Meta:
        ordering = ["site__name", "weekday", "start"]

    def __str__(self) -> str:
        return (
            f"{self.site.name}: {Weekday(self.weekday).label} {self.start:%H:%M}–{self.end:%H:%M}"
        )


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


class DeviceControl(models.Model):
    """A phone held (never offered updates for the rule) or pinned to a version."""

    identity = models.CharField(max_length=80, help_text="MAC:<12 hex digits> or SN:<serial>.")
    rule = models.ForeignKey(DeviceUpdateRule, on_delete=models.CASCADE, related_name="controls")
    kind = models.CharField(max_length=8, choices=DeviceControlKind.choices)
    version = models.CharField(max_length=64, blank=True)
    actor_name = models.CharField(max_length=150)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["identity"]
        constraints = [
            models.UniqueConstraint(fields=["identity", "rule"], name="device_control_unique")
        ]

    def __str__(self) -> str:
        what = f"pinned to {self.version}" if self.kind == DeviceControlKind.PIN else "held"
        return f"{self.identity} {what} for {self.rule.device_class}"
