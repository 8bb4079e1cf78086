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
    REFUSED = "refused", "refused"


class DeviceState(models.TextChoices):
    UP_TO_DATE = "up to date", "up to date"
    UPDATE_OFFERED = "update offered", "update offered"
    AWAITING_COPY = "awaiting copy", "update waiting for this server's copy"
    NO_RULE = "no rule", "no rule for its class"
