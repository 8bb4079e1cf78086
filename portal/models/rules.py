"""Device update rules: one per pool per device class, with three versions."""

from __future__ import annotations

import uuid

from django.core.exceptions import ValidationError
from django.db import models
from django.db.models.functions import Lower

from portal.choices import RuleState
from portal.device_class import RULE_CLASS_FIELDS, RuleClass
from portal.identifiers import normalise_version
from portal.models.topology import Pool


def validate_version(value: str) -> None:
    try:
        normalised = normalise_version(value)
    except ValueError as error:
        raise ValidationError(str(error), code="invalid_version") from None
    if normalised != value:
        raise ValidationError(f"write the version as {normalised}", code="version_not_normalised")


class DeviceUpdateRule(models.Model):
    """``service:WebServer:<pool FQDN>/<rule Id>``: what phones of a class are offered.

    PendingVersion reaches test devices, ApprovedVersion everyone else; RestoreVersion
    is what a restore brings back. The state machine lives in ``portal.services.rules``.
    """

    pool = models.ForeignKey(Pool, on_delete=models.PROTECT, related_name="rules")
    rule_id = models.UUIDField("rule Id", default=uuid.uuid4)
    device_type = models.CharField(max_length=64)
    brand = models.CharField(max_length=64)
    model = models.CharField(max_length=64)
    revision = models.CharField(max_length=64)
    locale = models.CharField(max_length=16)
    update_type = models.CharField(max_length=64)
    pending_version = models.CharField(max_length=64, blank=True, validators=[validate_version])
    approved_version = models.CharField(max_length=64, blank=True, validators=[validate_version])
    restore_version = models.CharField(max_length=64, blank=True, validators=[validate_version])
    # Set by a restore, cleared by the next import or approve: the "restored" state.
    restored = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["pool__fqdn", "brand", "model", "revision", "locale", "update_type"]
        verbose_name = "device update rule"
        constraints = [
            models.UniqueConstraint(fields=["pool", "rule_id"], name="rule_unique_id_per_pool"),
            models.UniqueConstraint(
                "pool",
                *(Lower(name) for name in RULE_CLASS_FIELDS),
                name="rule_unique_device_class_per_pool",
            ),
        ]
        indexes = [models.Index(fields=["brand", "model"], name="rule_brand_model_idx")]

    def __str__(self) -> str:
        return self.name

    @property
    def name(self) -> str:
        """What people read: ``Polycom CX600 Rev-1 ENU CPE on pool01.example.org``; the
        identity stays on the rule's page and in searches."""
        return f"{RuleClass.of(self).name} on {self.pool.fqdn}"

    @property
    def identity(self) -> str:
        return f"service:WebServer:{self.pool.fqdn}/{self.rule_id}"

    @property
    def device_class(self) -> str:
        """``UCPhone/Polycom/CX600/Rev-1/ENU/CPE``: the class and update type it serves."""
        return RuleClass.of(self).path

    @property
    def state(self) -> RuleState:
        if self.pending_version:
            return RuleState.PENDING_APPROVED if self.approved_version else RuleState.PENDING
        if self.approved_version:
            return RuleState.RESTORED if self.restored else RuleState.APPROVED
        return RuleState.NOT_USED
