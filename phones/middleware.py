"""On the phones' paths every refusal is the protocol's answer, before and after the view.

Django answers some requests before (or instead of) a phone view: an unknown ``Host``
(``DisallowedHost``, a 400 page and an error with its traceback), a path no view serves
(a 404 page). Phones cannot read HTML: on their paths this middleware, first in the
chain, answers an unknown ``Host`` with the XML error (one log line, no traceback) and
turns any HTML error page a later layer produced into the XML error of its status. The
other paths (control panel, API, health) are left as they are.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from django.core.exceptions import DisallowedHost
from django.http import HttpRequest, HttpResponse, HttpResponseBase

from phones.choices import PhoneError
from phones.errors import phone_error

logger = logging.getLogger(__name__)
PHONE_PREFIXES = (
    "/RequestHandler/",
    "/RequestHandlerExt/",
    "/DeviceUpdateFiles_Int/",
    "/DeviceUpdateFiles_Ext/",
)
_BY_STATUS = {
    404: (PhoneError.NOT_FOUND, "no such file on this server"),
    413: (PhoneError.TOO_LARGE, "the request is too large"),
}


class PhoneRefusals:
    """First in MIDDLEWARE: the phones' paths get the protocol's refusals only."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        if not request.path_info.startswith(PHONE_PREFIXES):
            return self.get_response(request)
        try:
            request.get_host()
        except DisallowedHost:
            host = request.META.get("HTTP_HOST", "")
            logger.warning("phone request refused: unknown Host %r", host[:100])
            return phone_error(PhoneError.INVALID_REQUEST, "this server does not answer that Host")
        response = self.get_response(request)
        if (
            response.status_code >= 400
            and response.get("Content-Type", "").startswith("text/html")
            and isinstance(response, HttpResponse)
            and response.content  # a plain status (405, 416) stays as it is
        ):
            code, message = _BY_STATUS.get(
                response.status_code,
                (PhoneError.INVALID_REQUEST, "the request could not be processed"),
            )
            return phone_error(code, message)
        return response
