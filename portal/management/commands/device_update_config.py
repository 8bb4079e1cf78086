"""Device log configuration: show, set and reset the global or a site's settings."""

from __future__ import annotations

import argparse
import datetime as dt
import re
from typing import Any

from portal.management.base import Actions, Handler, PortalCommand
from portal.models import Site
from portal.selectors import log_config_effective, scope_resolve
from portal.services.log_config import SETTINGS, log_config_reset, log_config_set

SCOPE_HELP = "global or site:<name> (default: global)"
_TIME = re.compile(r"^(\d{1,2}):(\d{2})$")


def time_of_day(text: str) -> dt.time | None:
    """``HH:MM``, or ``any`` (or nothing) for "any time"."""
    if text.strip().lower() in {"", "any"}:
        return None
    match = _TIME.match(text.strip())
    try:
        if match is None:
            raise ValueError
        return dt.time(int(match[1]), int(match[2]))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected HH:MM (or 'any' for any time), got {text!r}"
        ) from None


# option, settings field, spec name, unit, argparse type, metavar, help
OPTIONS: list[tuple[str, str, str, str, Any, str, str]] = [
    ("--log-cleanup-interval", "log_cleanup_interval_days", "LogCleanUpInterval", "days",
     int, "DAYS", "logs older than this are deleted (1 to 365 days)"),
    ("--log-cleanup-time-of-day", "log_cleanup_time_of_day", "LogCleanUpTimeOfDay", "",
     time_of_day, "HH:MM", "when the cleanup runs; 'any' for any time"),
    ("--log-flush-interval", "log_flush_interval_minutes", "LogFlushInterval", "minutes",
     int, "MINUTES", "write cached audit lines at least this often (1 to 60 minutes)"),
    ("--max-log-cache-limit", "max_log_cache_limit", "MaxLogCacheLimit", "bytes",
     int, "BYTES", "write cached audit lines when the cache reaches this size"),
    ("--max-log-file-size", "max_log_file_size", "MaxLogFileSize", "bytes",
     int, "BYTES", "largest log file a phone may upload"),
    ("--valid-log-file-extensions", "valid_log_file_extensions", "ValidLogFileExtensions", "",
     str, '".EXT .EXT"', "the accepted file extensions, separated by spaces"),
    ("--valid-log-file-types", "valid_log_file_types", "ValidLogFileTypes", "",
     str, '"TYPE TYPE"', "the accepted log types, separated by spaces"),
    ("--log-store-quota", "log_store_quota", "LogStoreQuota", "bytes",
     int, "BYTES", "uploads beyond this total are refused with 507"),
]  # fmt: skip


def settings_json(*, scope: str, source: str, config: object) -> dict[str, Any]:
    values = {name: getattr(config, name) for name in SETTINGS}
    when = values["log_cleanup_time_of_day"]
    values["log_cleanup_time_of_day"] = when.strftime("%H:%M") if when else None
    return {"scope": scope, "source": source, **values}


def _scope_text(site: Site | None) -> str:
    return f"site:{site.name}" if site else "global"


class Command(PortalCommand):
    help = (
        "Device log settings: 'global', and per site (a site's settings override the "
        "global ones for the servers of its pools). 'reset' removes a scope's own settings."
    )

    def add_actions(self, subparsers: Actions) -> None:
        show = self.action_parser(
            subparsers, "show", "show the settings in force for a scope and where they come from"
        )
        show.add_argument("--scope", default="global", help=SCOPE_HELP)
        change = self.action_parser(
            subparsers,
            "set",
            "change settings of a scope (its own settings start from the defaults)",
        )
        change.add_argument("--scope", default="global", help=SCOPE_HELP)
        for option, field, spec_name, _unit, kind, metavar, help_text in OPTIONS:
            change.add_argument(
                option,
                dest=field,
                type=kind,
                metavar=metavar,
                # Left out, the option is absent from the options (None means "any time").
                default=argparse.SUPPRESS,
                help=f"{spec_name}: {help_text}",
            )
        reset = self.action_parser(
            subparsers,
            "reset",
            "remove a scope's own settings: global goes back to the defaults, a site to global",
        )
        reset.add_argument("--scope", default="global", help=SCOPE_HELP)

    def handlers(self) -> dict[str, Handler]:
        return {"show": self.show, "set": self.change, "reset": self.reset}

    def _emit_settings(self, settings: dict[str, Any]) -> None:
        rows = [("scope", settings["scope"]), ("settings from", settings["source"])]
        for _option, field, spec_name, unit, *_rest in OPTIONS:
            value = settings[field]
            if isinstance(value, list):
                text = " ".join(value)
            elif value is None:
                text = "any time"
            else:
                text = f"{value} {unit}".rstrip()
            rows.append((spec_name, text))
        width = max(len(name) for name, _value in rows)
        for name, text in rows:
            self.emit(f"{name:<{width}}  {text}")

    def show(self, options: dict[str, Any]) -> None:
        site = scope_resolve(options["scope"])
        effective = log_config_effective(site=site)
        settings = settings_json(scope=_scope_text(site), source=effective.source, config=effective)
        if self.as_json:
            self.emit_json(settings)
        else:
            self._emit_settings(settings)

    def change(self, options: dict[str, Any]) -> None:
        values = {field: options[field] for _option, field, *_rest in OPTIONS if field in options}
        if not values:
            self.refuse("nothing to set: give at least one setting, e.g. --max-log-file-size BYTES")
        config = log_config_set(scope=options["scope"], values=values, actor=self.actor)
        scope = config.scope
        settings = settings_json(scope=scope, source=scope, config=config)
        message = f"saved the settings of {scope}"
        if self.as_json:
            self.emit_json({"ok": True, "message": message, "settings": settings})
            return
        self.emit(message)
        self._emit_settings(settings)

    def reset(self, options: dict[str, Any]) -> None:
        site = scope_resolve(options["scope"])
        scope = _scope_text(site)
        removed = log_config_reset(scope=scope, actor=self.actor)
        fallback = "the global settings" if site else "the defaults"
        message = (
            f"removed the settings of {scope}; {fallback} apply"
            if removed
            else f"{scope} has no settings of its own; nothing changed"
        )
        if self.as_json:
            self.emit_json({"ok": True, "message": message, "scope": scope, "removed": removed})
        else:
            self.emit(message)
