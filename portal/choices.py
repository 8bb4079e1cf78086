"""Enumerations of the control panel, with named groups of states."""

from __future__ import annotations

from django.db import models


class RuleState(models.TextChoices):
    PENDING = "pending", "pending"
    PENDING_APPROVED = "pending+approved", "pending+approved"
    APPROVED = "approved", "approved"
    RESTORED = "restored", "restored"
    NOT_USED = "not used", "not used"


class RuleAction(models.TextChoices):
    APPROVE = "approve", "Approve"
    RESET = "reset", "Cancel pending"
    RESTORE = "restore", "Restore"
    REMOVE = "remove", "Remove"


class IdentifierType(models.TextChoices):
    MAC_ADDRESS = "MACAddress", "MAC address"
    SERIAL_NUMBER = "SerialNumber", "Serial number"


class ImportStatus(models.TextChoices):
    QUEUED = "queued", "queued"
    RUNNING = "running", "running"
    SUCCEEDED = "succeeded", "succeeded"
    FAILED = "failed", "failed"

    @classmethod
    def finished(cls) -> frozenset[ImportStatus]:
        return frozenset({cls.SUCCEEDED, cls.FAILED})


class UpdateFileRole(models.TextChoices):
    IMAGE = "image", "software image"
    DESCRIPTION = "description", "description"
    CATALOG = "catalog", "security catalog"


class ReplicaState(models.TextChoices):
    PENDING = "pending", "pending"
    COPYING = "copying", "copying"
    VERIFIED = "verified", "verified"
    FAILED = "failed", "failed"
