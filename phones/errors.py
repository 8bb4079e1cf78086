"""The phone protocol's XML error body, with its code's HTTP status."""

from __future__ import annotations

from xml.sax.saxutils import escape

from django.http import HttpResponse

from phones.choices import PhoneError
from phones.metrics import PHONE_ERRORS


def phone_error(code: PhoneError, message: str, *, retry_after: int | None = None) -> HttpResponse:
    """``<Error><Code>..</Code><Message>..</Message></Error>`` with the code's status."""
    # ``_value_`` is the member's plain value (``.value`` is a descriptor call); codes
    # are fixed words, so only the message needs escaping.
    body = (
        '<?xml version="1.0" encoding="utf-8"?>\n'
        f"<Error><Code>{code._value_}</Code><Message>{escape(message)}</Message></Error>"
    )
    PHONE_ERRORS.labels(code._value_).inc()
    response = HttpResponse(body, status=code.status, content_type="text/xml; charset=utf-8")
    if code is PhoneError.ANONYMOUS_NOT_SUPPORTED:
        # The challenge a 401 for missing credentials needs.
        response["WWW-Authenticate"] = 'Basic realm="Device Update"'
    if retry_after is not None:
        response["Retry-After"] = str(retry_after)
    return response
