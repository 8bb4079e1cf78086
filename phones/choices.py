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


class PhoneError(models.TextChoices):
    """The phone protocol's error codes (``<Error><Code>``), each with its HTTP status:
    the one place a code's status is written."""

    status: int

    # Members are built once, at import; a response reads ``.status``, an attribute.
    def __new__(cls, code: str, status: int) -> PhoneError:
        member = str.__new__(cls, code)
        member._value_ = code
        member.status = status
        return member

    INVALID_REQUEST = "InvalidRequest", 400, "the request is not valid"
    ANONYMOUS_NOT_SUPPORTED = "AnonymousNotSupported", 401, "credentials are required"
    INVALID_CREDENTIALS = "InvalidCredentials", 401, "the credentials are not valid"
    NO_SIGNED_IN_USER = "NoSignedInUser", 403, "no user is signed in on the phone"
    NOT_FOUND = "NotFound", 404, "no such file on this server"
    LENGTH_REQUIRED = "LengthRequired", 411, "the body's length cannot be known"
    TOO_LARGE = "TooLarge", 413, "the request or file is too large"
    UNSUPPORTED_LOG_TYPE = "UnsupportedLogType", 415, "log type or extension not allowed"
    TOO_MANY_REQUESTS = "TooManyRequests", 429, "too many failed sign-ins"
    QUOTA_EXCEEDED = "QuotaExceeded", 507, "the log store is over its quota"
    BUSY = "Busy", 503, "too many downloads in progress"
