"""Enumerations of the phone side."""

from __future__ import annotations

from django.db import models


class Channel(models.TextChoices):
    INTERNAL = "internal", "internal"
    EXTERNAL = "external", "external"


class Outcome(models.TextChoices):
    OFFERED = "offered", "update offered"
    UP_TO_DATE = "up to date", "up to date"
    NO_RULE = "no rule", "no rule for its class"
    NOT_REPLICATED = "not replicated", "not yet on this server"
    DEFERRED = "deferred", "deferred (maintenance window or offer cap)"
    HELD = "held", "held for this rule"
    REFUSED = "refused", "refused"


class DeviceState(models.TextChoices):
    UP_TO_DATE = "up to date", "up to date"
    UPDATE_OFFERED = "update offered", "update offered"
    AWAITING_COPY = "awaiting copy", "update waiting for this server's copy"
    DEFERRED = "deferred", "update deferred (maintenance window or offer cap)"
    HELD = "held", "held"
    NO_RULE = "no rule", "no rule for its class"


class ObservedState(models.TextChoices):
    """What a phone was seen doing with a version a rule offered it."""

    OFFERED = "offered", "offered"
    DOWNLOADED = "downloaded", "downloaded"
    RUNNING = "running", "running"
    FAILED = "failed", "failed"
    HELD = "held", "held"
