"""A database that cannot take writes answers 503 with one line, never a traceback."""

from __future__ import annotations

import logging

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.middleware.common import CommonMiddleware as DjangoCommonMiddleware
from django.template.loader import render_to_string

from deviceupdate.database import database_error_line, database_unavailable

logger = logging.getLogger(__name__)

# The phones' paths keep their own protocol answers (phones.errors).
_PHONE_PATHS = ("/RequestHandler", "/DeviceUpdateFiles_")


class CommonMiddleware(DjangoCommonMiddleware):
    """Django's CommonMiddleware, plus the answer to a database that cannot be written.

    The answer is a ``process_exception`` on a middleware every request already passes
    through, rather than a middleware of its own: a request that raises nothing (every
    phone's) does not pay even a call for it.
    """

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if not database_unavailable(exception) or request.path.startswith(_PHONE_PATHS):
            return None
        line = database_error_line(exception)
        # One line, no traceback: the cause is the database, not this request.
        logger.error("%s %s: %s", request.method, request.path, line)
        response: HttpResponse
        if request.path.startswith("/api/"):
            response = JsonResponse({"detail": line}, status=503)
        else:
            # Rendered without the request: its context processors would query the database.
            page = render_to_string("database_unavailable.html", {"message": line})
            response = HttpResponse(page, status=503, content_type="text/html; charset=utf-8")
        # Logged above, in one line: django.request would add a second one for the 503.
        response._has_been_logged = True  # type: ignore[attr-defined]
        return response
