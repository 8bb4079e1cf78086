"""Device log configuration: set and reset the global or a site's settings."""

from __future__ import annotations

import re
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction

from portal.errors import DomainError
from portal.models import DeviceLogConfiguration
from portal.selectors import scope_resolve
from portal.services.audit import Actor, audit_record, diff, snapshot
from portal.services.generation import decision_generation_bump

SETTINGS = (
    "log_cleanup_interval_days",
    "log_cleanup_time_of_day",
    "log_flush_interval_minutes",
    "max_log_cache_limit",
    "max_log_file_size",
    "valid_log_file_extensions",
    "valid_log_file_types",
    "log_store_quota",
)
_EXTENSION = re.compile(r"^\.[A-Za-z0-9]{1,16}$")
_LOG_TYPE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


def _checked_list(field: str, value: Any, pattern: re.Pattern[str], what: str) -> list[str]:
    items = value.split() if isinstance(value, str) else value
    if not isinstance(items, list | tuple) or not items or len(items) > 100:
        raise DomainError(f"give 1 to 100 {what}s", field=field)
    cleaned: list[str] = []
    for item in items:
        text = str(item).strip()
        if not pattern.match(text):
            raise DomainError(f"{text!r} is not a valid {what}", field=field)
        if text.lower() not in (known.lower() for known in cleaned):
            cleaned.append(text.lower() if field == "valid_log_file_extensions" else text)
    return cleaned


def log_config_set(*, scope: str, values: dict[str, Any], actor: Actor) -> DeviceLogConfiguration:
    """Change settings of a scope (its row is created with the defaults when missing)."""
    unknown = sorted(set(values) - set(SETTINGS))
    if unknown:
        raise DomainError(f"unknown setting {unknown[0]!r}", field=unknown[0])
    site = scope_resolve(scope)
    values = dict(values)
    if "valid_log_file_extensions" in values:
        values["valid_log_file_extensions"] = _checked_list(
            "valid_log_file_extensions",
            values["valid_log_file_extensions"],
            _EXTENSION,
            "file extension (.ext)",
        )
    if "valid_log_file_types" in values:
        values["valid_log_file_types"] = _checked_list(
            "valid_log_file_types", values["valid_log_file_types"], _LOG_TYPE, "log type"
        )
    with transaction.atomic():
        # filter(site=None) is "site IS NULL": the global row.
        config = DeviceLogConfiguration.objects.select_for_update().filter(site=site).first()
        created = config is None
        if config is None:
            config = DeviceLogConfiguration(site=site)
        before = {} if created else snapshot(config, SETTINGS)
        for name, value in values.items():
            setattr(config, name, value)
        try:
            config.full_clean(validate_unique=False, validate_constraints=False)
        except ValidationError as error:
            field, messages = next(iter(error.message_dict.items()))
            raise DomainError(f"{field}: {' '.join(messages)}", field=field) from None
        after = snapshot(config, SETTINGS)
        if not created and after == before:
            return config
        config.save()
        decision_generation_bump()  # phones' uploads are checked against it from memory
        audit_record(
            actor=actor,
            action="portal.log_config.created" if created else "portal.log_config.changed",
            obj=config,
            changes=diff(before, after),
        )
        return config


def log_config_reset(*, scope: str, actor: Actor) -> bool:
    """Remove a scope's settings: global goes back to the defaults, a site to global.

    Returns False (and records nothing) when the scope had no settings of its own.
    """
    site = scope_resolve(scope)
    with transaction.atomic():
        config = DeviceLogConfiguration.objects.select_for_update().filter(site=site).first()
        if config is None:
            return False
        audit_record(
            actor=actor,
            action="portal.log_config.reset",
            obj=config,
            changes=diff(snapshot(config, SETTINGS), {}),
        )
        config.delete()
        decision_generation_bump()
        return True
