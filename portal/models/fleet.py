"""The fleet: device groups, maintenance windows and per-phone holds and pins.

Rollout waves target device groups and honour maintenance windows
(``portal.models.rollouts``); the decision table reads all of them into memory like
the rules themselves.
"""

from __future__ import annotations

from django.db import models

from portal.choices import DeviceControlKind, IdentifierType, Weekday
from portal.models.rules import DeviceUpdateRule
from portal.models.topology import Site


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
