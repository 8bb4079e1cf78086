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


class RolloutState(models.TextChoices):
    RUNNING = "running", "running"
    PAUSED = "paused", "paused"
    HALTED = "halted", "halted"
    COMPLETED = "completed", "completed"
    CANCELLED = "cancelled", "cancelled"
    RESTORED = "restored", "restored"

    @classmethod
    def active(cls) -> frozenset[RolloutState]:
        """States in which a rollout holds its rule: at most one per rule."""
        return frozenset({cls.RUNNING, cls.PAUSED, cls.HALTED})

    @classmethod
    def finished(cls) -> frozenset[RolloutState]:
        return frozenset({cls.COMPLETED, cls.CANCELLED, cls.RESTORED})


class Weekday(models.IntegerChoices):
    MONDAY = 0, "Monday"
    TUESDAY = 1, "Tuesday"
    WEDNESDAY = 2, "Wednesday"
    THURSDAY = 3, "Thursday"
    FRIDAY = 4, "Friday"
    SATURDAY = 5, "Saturday"
    SUNDAY = 6, "Sunday"


class DeviceControlKind(models.TextChoices):
    HOLD = "hold", "hold (never offered updates)"
    PIN = "pin", "pin to a version"


class WebhookEvent(models.TextChoices):
    """What an outbound webhook can subscribe to (the ``event`` of each delivery)."""

    ROLLOUT_PLANNED = "rollout.planned", "rollout planned"
    ROLLOUT_ADVANCED = "rollout.advanced", "rollout advanced"
    ROLLOUT_HALTED = "rollout.halted", "rollout halted"
    ROLLOUT_COMPLETED = "rollout.completed", "rollout completed"
    IMPORT_SUCCEEDED = "import.succeeded", "import succeeded"
    IMPORT_REFUSED = "import.refused", "import refused"
    SERVER_OUT_OF_SYNC = "server.out_of_sync", "server out of sync"
    SIGNIN_LOCKED_OUT = "signin.locked_out", "sign-in locked out"
