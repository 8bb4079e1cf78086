"""Health of this server's dependencies, for load balancers and monitoring."""

from __future__ import annotations

import logging

from django.db import connection
from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe

from deviceupdate.celery import app as celery_app
from deviceupdate.runtime import runtime_notices
from phones.recorder import spool_dir, spool_dropped, spool_notices, spool_usage
from phones.services.records import records_quarantined

logger = logging.getLogger(__name__)


def check_database() -> bool:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            return cursor.fetchone() == (1,)
    except Exception:
        logger.exception("health: database unreachable")
        return False


def check_broker() -> bool:
    try:
        with celery_app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, timeout=3)
        return True
    except Exception:
        logger.exception("health: broker unreachable")
        return False


@never_cache
@require_safe
def healthz(request: HttpRequest) -> JsonResponse:
    """200 when the database and the broker answer, else 503; never reveals secrets.

    ``notices`` lists what limits this server without making it unhealthy (an LZX
    package needs cabextract).
    """
    checks = {"database": check_database(), "broker": check_broker()}
    healthy = all(checks.values())
    body = {
        "status": "ok" if healthy else "unavailable",
        "checks": {name: "ok" if ok else "unavailable" for name, ok in checks.items()},
        "notices": runtime_notices() + spool_notices(),
        # Phone records the database refused, kept aside (phones.services.records).
        "quarantined_records": records_quarantined(),
        # Phone records waiting for the loader, and dropped because their folder was full.
        "spool": {"bytes": spool_usage(spool_dir()), "dropped": spool_dropped()},
    }
    return JsonResponse(body, status=200 if healthy else 503)
