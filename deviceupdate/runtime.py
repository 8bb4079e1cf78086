"""A description of the mode this process runs in, printed at start (no secrets)."""

from __future__ import annotations

from urllib.parse import urlsplit

from django.conf import settings

from portal.packaging.cabinet import lzx_support
from portal.services.central_store import central_store_probe


def _without_credentials(url: str) -> str:
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}{parts.path}"


def describe_runtime() -> dict[str, str]:
    database = settings.DATABASES["default"]
    if database["ENGINE"].endswith("sqlite3"):
        database_text = f"SQLite (embedded) {database['NAME']}"
    else:
        database_text = (
            f"PostgreSQL {database.get('HOST') or 'local socket'}:{database.get('PORT') or 5432}"
            f"/{database['NAME']}"
        )
    if settings.CELERY_BROKER_KIND == "filesystem":
        broker_text = f"filesystem (embedded, no server) {settings.BROKER_DIR}"
    else:
        broker_text = _without_credentials(settings.CELERY_BROKER_URL)
    storage_text = (
        f"local folder {settings.CENTRAL_STORE_DIR}"
        if settings.DEVICEUPDATE_STORAGE == "local"
        else f"S3-compatible bucket {settings.STORAGES['default']['OPTIONS']['bucket_name']}"
    )
    problem = central_store_probe()  # wrong credentials show at start-up, in one line
    storage_text += f" ({problem})" if problem else ""
    return {
        "mode": settings.DEVICEUPDATE_ENV + (" (DEBUG)" if settings.DEBUG else ""),
        "data directory": str(settings.DATA_DIR),
        "database": database_text,
        "broker": broker_text,
        "central file store": storage_text,
        "this server": settings.SERVER_FQDN,
        "worker queues": ", ".join(queue.name for queue in settings.CELERY_TASK_QUEUES),
        "LZX packages": lzx_support() or "supported (cabextract)",
    }


def runtime_notices() -> list[str]:
    """What an administrator should know before relying on this server (one line each)."""
    notices = [lzx_support(), central_store_probe()]
    return [notice for notice in notices if notice]
