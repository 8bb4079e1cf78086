"""The logging configuration: one plain line per record on the console, expected
refusals without their traceback, the chatty libraries at WARNING unless asked for more."""

from __future__ import annotations

from typing import Any


def logging_config(level: str) -> dict[str, Any]:
    """Django's ``LOGGING`` for the root level ``level`` (DEBUG, INFO, WARNING, ERROR)."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
        # An expected refusal (a 403, an unknown Host) is its one line, not a traceback.
        "filters": {"refusals": {"()": "deviceupdate.log_filters.RefusalsWithoutTraceback"}},
        "handlers": {
            "console": {
                "class": "logging.StreamHandler",
                "formatter": "plain",
                "filters": ["refusals"],
            }
        },
        "root": {"handlers": ["console"], "level": level},
        "loggers": {
            # axes writes three INFO lines for every failed sign-in (a phone's too); its
            # warnings (each counted failure, each lockout) are what an operator needs.
            "axes": {"level": "WARNING" if level == "INFO" else level},
            # django-auth-ldap writes two INFO lines for every directory sign-in; its
            # warnings (an LDAP error, a missing attribute) are what an operator needs.
            "django_auth_ldap": {"level": "WARNING" if level == "INFO" else level},
        },
    }
