"""The default database from ``DATABASE_URL``: SQLite tuned for a web server and its
workers sharing one file, or PostgreSQL with health-checked persistent connections."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import dj_database_url

from deviceupdate.env import ConfigError


def database_config(url: str, *, production: bool, data_dir: Path) -> dict[str, Any]:
    """Django's ``DATABASES["default"]`` for ``url``; ConfigError when it cannot be parsed."""
    try:
        # Persistent connections in production; elsewhere every request closes its own, so
        # no thread (a test's live server, a dev server) leaves a session open behind it.
        database: dict[str, Any] = dict(
            dj_database_url.parse(url, conn_max_age=60 if production else 0)
        )
    except (ValueError, KeyError) as error:
        raise ConfigError("DATABASE_URL", f"cannot be parsed ({error})") from None
    if database["ENGINE"] == "django.db.backends.sqlite3":
        database["OPTIONS"] = {
            # WAL lets the web server read while a worker writes; IMMEDIATE takes the write
            # lock up front so concurrent writers wait (timeout) instead of failing.
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
            "transaction_mode": "IMMEDIATE",
            "timeout": 20,
        }
        # A file, not memory, so that worker processes started by tests share it.
        database["TEST"] = {"NAME": str(data_dir / "test-db.sqlite3")}
    else:
        database["CONN_HEALTH_CHECKS"] = True
    return database
