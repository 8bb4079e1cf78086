"""Test devices: phones that receive pending versions before everyone else."""

from __future__ import annotations

from django.db import models
from django.db.models import F, Q

from portal.choices import IdentifierType
from portal.models.topology import Site


class TestDevice(models.Model):
    """A phone named by MAC or serial number, in the global scope or one site's scope."""

    __test__ = False  # not a pytest test class, whatever its name says

    site = models.ForeignKey(
        Site,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="test_devices",
        help_text="Empty: global scope.",
    )
    name = models.CharField(max_length=100)
    identifier_type = models.CharField(max_length=16, choices=IdentifierType.choices)
    # Normal form: MAC as 12+ upper-case hex digits; serial as typed.
    identifier = models.CharField(max_length=64)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        # Global devices first on every database (PostgreSQL sorts NULLs last by default).
        ordering = [F("site__name").asc(nulls_first=True), "name"]
        constraints = [
            models.UniqueConstraint(
                fields=["name"], condition=Q(site__isnull=True), name="test_device_global_name"
            ),
            models.UniqueConstraint(fields=["site", "name"], name="test_device_site_name"),
        ]
        indexes = [models.Index(fields=["identifier"], name="test_device_identifier_idx")]

    def __str__(self) -> str:
        return f"{self.scope}/{self.name}"

    @property
    def scope(self) -> str:
        return f"site:{self.site.name}" if self.site_id and self.site else "global"
