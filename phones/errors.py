"""The phone protocol's XML error body, with its HTTP status."""

from __future__ import annotations

from xml.sax.saxutils import escape

from django.http import HttpResponse

STATUS = {
    "InvalidRequest": 400,
    "AnonymousNotSupported": 401,
    "InvalidCredentials": 401,
    "NoSignedInUser": 403,
    "NotFound": 404,
    "TooLarge": 413,
    "UnsupportedLogType": 415,
    "TooManyRequests": 429,
    "QuotaExceeded": 507,
    "Busy": 503,
}


def phone_error(code: str, message: str, *, retry_after: int | None = None) -> HttpResponse:
    """``<Error><Code>..</Code><Message>..</Message></Error>`` with the code's status."""
    body = (
        '<?xml version="1.0" encoding="utf-8"?>\n'
        f"<Error><Code>{escape(code)}</Code><Message>{escape(message)}</Message></Error>"
    )
    response = HttpResponse(body, status=STATUS[code], content_type="text/xml; charset=utf-8")
    if code == "AnonymousNotSupported":  # the challenge a 401 for missing credentials needs
        response["WWW-Authenticate"] = 'Basic realm="Device Update"'
    if retry_after is not None:
        response["Retry-After"] = str(retry_after)
    return response
