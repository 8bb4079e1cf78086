"""Strict readers for configuration from environment variables.

Every reader names the variable in its error, so a bad value stops start-up with
one line that says what to fix. A value that is set but empty counts as unset.
"""

from __future__ import annotations

import ipaddress
import os
import sys
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import urlsplit

from django.core.exceptions import ImproperlyConfigured, ValidationError
from django.core.validators import validate_email


class ConfigError(ImproperlyConfigured):
    """A configuration variable is missing or malformed."""

    def __init__(self, name: str, problem: str) -> None:
        self.name = name
        self.problem = problem
        super().__init__(f"configuration error: {name}: {problem}")


class Env:
    """Typed access to a mapping of environment variables."""

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        self._environ = os.environ if environ is None else environ

    def raw(self, name: str) -> str | None:
        value = self._environ.get(name)
        if value is None or value.strip() == "":
            return None
        return value.strip()

    def string(self, name: str, default: str) -> str:
        value = self.raw(name)
        return default if value is None else value

    def optional_str(self, name: str) -> str | None:
        return self.raw(name)

    def boolean(self, name: str, default: bool) -> bool:
        """Exactly ``true`` or ``false``: a ``True``, ``yes`` or ``1`` is refused, not
        guessed at, so one spelling means the same in every file that sets it."""
        value = self.raw(name)
        if value is None:
            return default
        if value == "true":
            return True
        if value == "false":
            return False
        raise ConfigError(name, f"expected true or false, got {value!r}")

    def integer(self, name: str, default: int, *, minimum: int, maximum: int) -> int:
        value = self.raw(name)
        if value is None:
            return default
        try:
            number = int(value)
        except ValueError:
            raise ConfigError(name, f"expected an integer, got {value!r}") from None
        if not minimum <= number <= maximum:
            raise ConfigError(name, f"expected {minimum} to {maximum}, got {number}")
        return number

    def choice(self, name: str, default: str, choices: tuple[str, ...]) -> str:
        value = self.string(name, default).lower()
        if value not in choices:
            raise ConfigError(name, f"expected one of {', '.join(choices)}, got {value!r}")
        return value

    def csv(self, name: str, default: list[str]) -> list[str]:
        value = self.raw(name)
        if value is None:
            return list(default)
        return [item.strip() for item in value.split(",") if item.strip()]

    def email(self, name: str, default: str) -> str:
        """One e-mail address, checked as Django's ``EmailField`` checks it."""
        value = self.string(name, default)
        try:
            validate_email(value)
        except ValidationError:
            raise ConfigError(name, f"expected an e-mail address, got {value!r}") from None
        return value

    def networks(
        self, name: str, default: list[str]
    ) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
        """Comma-separated CIDRs (``10.0.0.0/8, ::1/128``; a bare address is its own
        network); ``none`` for no network at all."""
        items = self.csv(name, default)
        if items == ["none"]:
            return ()
        try:
            return tuple(ipaddress.ip_network(item, strict=True) for item in items)
        except ValueError as error:
            raise ConfigError(name, f"expected CIDRs or none: {error}") from None

    def path(self, name: str, default: Path, *, base: Path) -> Path:
        """A filesystem path; relative values are taken relative to ``base``."""
        value = self.raw(name)
        path = default if value is None else Path(value)
        if "\x00" in str(path):
            raise ConfigError(name, "contains a NUL character")
        return (path if path.is_absolute() else base / path).resolve()

    def url(self, name: str, default: str | None, *, schemes: tuple[str, ...]) -> str | None:
        value = self.raw(name)
        if value is None:
            return default
        parts = urlsplit(value)
        if parts.scheme.lower() not in schemes:
            raise ConfigError(
                name,
                f"unsupported scheme {parts.scheme or '(none)'!r}; expected one of "
                f"{', '.join(schemes)}",
            )
        return value


def exit_on_config_error(settings_module: str) -> None:
    """Import the settings module, turning a configuration error into one line and exit 2.

    Called first by every entry point (manage.py, WSGI, ASGI, Celery), so a bad variable
    never surfaces as a traceback.
    """
    import importlib

    try:
        importlib.import_module(settings_module)
    except ConfigError as error:
        print(str(error), file=sys.stderr)
        raise SystemExit(2) from None
