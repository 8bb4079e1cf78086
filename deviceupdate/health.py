"""Health of this server's dependencies, for load balancers and monitoring."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

from django.conf import settings
from django.db import DatabaseError, connection, transaction
from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe

from deviceupdate.celery import app as celery_app
from deviceupdate.database import database_error_line
from deviceupdate.runtime import runtime_notices
from phones.recorder import spool_dir, spool_dropped, spool_notices, spool_usage
from phones.services.records import records_quarantined

logger = logging.getLogger(__name__)

OK = "ok"


def check_database() -> str:
    """The database takes a write: an UPDATE of one fixed row, rolled back.

    django_migrations' first row: every database of the service has it and nothing
    writes it at run time, so the probe waits on no lock of the service's own and grows
    no table. A read-only database (a standby, a read-only file) or one that is gone
    fails it.
    """
    try:
        with transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute(
                    "UPDATE django_migrations SET app = app "
                    "WHERE id = (SELECT MIN(id) FROM django_migrations)"
                )
            transaction.set_rollback(True)
    except DatabaseError as error:
        line = database_error_line(error)
        logger.error("health: %s", line)
        return line
    return OK


def check_broker() -> str:
    try:
        with celery_app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, timeout=3)
    except Exception as error:
        logger.error("health: the broker does not answer: %s", error)
        return "the broker does not answer"
    return OK


def _local_stores() -> dict[str, Path]:
    stores = {
        "this server's store": settings.SERVER_STORE_DIR,
        "the device log store": settings.DEVICE_LOG_DIR,
    }
    if settings.DEVICEUPDATE_STORAGE == "local":
        stores["the central store"] = settings.CENTRAL_STORE_DIR
    return stores


def _existing(path: Path) -> Path:
    """The folder itself, or its nearest parent that exists (a store not made yet)."""
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def check_store() -> str:
    """Each local store keeps at least HEALTH_MIN_FREE_BYTES free."""
    minimum = settings.HEALTH_MIN_FREE_BYTES
    short = []
    for name, path in _local_stores().items():
        free = shutil.disk_usage(_existing(Path(path))).free
        if free < minimum:
            short.append(f"{name} has {free // 1024**2:,} MB free")
    if short:
        return f"{'; '.join(short)} (at least {minimum // 1024**2:,} MB needed)"
    return OK


def check_recorder() -> str:
    """This server's spool holds no more records waiting for the loader than the limit
    (a backlog that large means the loader is stopped or its writes fail)."""
    backlog = spool_usage(spool_dir())
    limit = settings.HEALTH_MAX_SPOOL_BACKLOG_BYTES
    if backlog > limit:
        return (
            f"{backlog:,} bytes of phone records wait for the loader (more than {limit:,}): "
            "phone_record_loader is stopped or its writes are failing"
        )
    return OK


@never_cache
@require_safe
def healthz(request: HttpRequest) -> JsonResponse:
    """200 when every check passes, else 503 naming the checks that failed, each with
    its reason in one line; never reveals secrets.

    ``notices`` lists what limits this server without making it unhealthy (an LZX
    package needs cabextract).
    """
    checks = {
        "database": check_database(),
        "broker": check_broker(),
        "store": check_store(),
        "recorder": check_recorder(),
    }
    failed = [name for name, result in checks.items() if result != OK]
    body = {
        "status": "unavailable" if failed else "ok",
        "checks": checks,
        "failed": failed,
        "notices": runtime_notices() + spool_notices(),
        # Phone records the database refused, kept aside (phones.services.records).
        "quarantined_records": records_quarantined(),
        # Phone records waiting for the loader, and dropped because their folder was full.
        "spool": {"bytes": spool_usage(spool_dir()), "dropped": spool_dropped()},
    }
    return JsonResponse(body, status=503 if failed else 200)
