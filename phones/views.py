"""The phone endpoints: update checks and log uploads, inside and outside the firewall.

Thin: parse, decide (in memory), answer, and hand the audit record to the batch
recorder. Every refusal is the spec's XML error with its status, never a 500.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from django.http import HttpRequest, HttpResponse, UnreadablePostError
from django.utils import timezone
from django.utils.decorators import method_decorator
from django.views import View
from django.views.decorators.csrf import csrf_exempt
from rest_framework.views import APIView

from phones.auth import check_external, client_address
from phones.choices import Channel, Outcome, PhoneError
from phones.decision import offer_for_request, server_log_config
from phones.errors import phone_error
from phones.logs import log_upload_parse
from phones.metrics import REQUEST_DURATION, log_upload_counted, update_check_counted
from phones.protocol import (
    MAX_BODY,
    MAX_USER,
    ProtocolError,
    UpdateCheck,
    parse_update_check,
    phone_field,
    render_response,
)
from phones.recorder import recorder
from phones.services.log_uploads import log_upload_store
from phones.services.records import CheckRecord

logger = logging.getLogger(__name__)
XML_TYPES = ("text/xml", "application/xml")
LOG_UPLOAD_PARAMS = ("type", "name", "mac", "serial", "user")
DISCARD_MAX = 4 * 1024 * 1024  # twice nginx's client_max_body_size for the phone paths


def body_reader(request: HttpRequest) -> Callable[[int], bytes]:
    """How to read the request's body, within the caller's own limits.

    A chunked body (``Transfer-Encoding: chunked``, no ``Content-Length``) is read from
    the server's own input when the server says that input ends with the body
    (``wsgi.input_terminated``: gunicorn decodes the chunks), since Django reads at most
    ``Content-Length`` bytes, none without it. Behind nginx a chunked body arrives with
    its length (nginx buffers it), so both ways a phone's chunked body is read whole.
    Any other server cannot say where such a body ends: ``ProtocolError`` (411).
    """
    if "chunked" in request.META.get("HTTP_TRANSFER_ENCODING", "").lower():
        if request.META.get("wsgi.input_terminated") and "CONTENT_LENGTH" not in request.META:
            stream = request.META["wsgi.input"]
            return stream.read
        raise ProtocolError(
            "a chunked body needs a server that decodes it; send Content-Length",
            code=PhoneError.LENGTH_REQUIRED,
        )
    return request.read


def body_discard(request: HttpRequest) -> None:
    """Read what is left of a refused request's body, up to ``DISCARD_MAX`` bytes.

    gunicorn drains at most 64 KiB of an unread body, then closes the connection; nginx,
    still sending the rest of the body it buffered, then answers the phone 502 instead of
    the refusal. Behind nginx a body is at most 2 MB, so it is read to its end here.
    """
    try:
        read = body_reader(request)
        left = DISCARD_MAX
        while left > 0 and (chunk := read(min(64 * 1024, left))):
            left -= len(chunk)
    except (ProtocolError, OSError, UnreadablePostError):
        pass  # nothing to read, or the phone hung up: the server closes the connection


class UpdateCheckView(APIView):
    """POST /RequestHandler/ucdevice.upx (internal) and /RequestHandlerExt/ucdevice.upx.

    A DRF view whose dispatch keeps only what a phone request uses. DRF's Request
    wrapper, content negotiation, authentication, permissions, throttles and response
    finalising have nothing to decide here (the protocol fixes the body's format and the
    answer's, and the external channel's sign-in and throttle are the protocol's own,
    ``check_external``), yet cost 0.4 to 0.9 times a whole empty Django request
    (bench/update_check_steps.py, several runs).
    """

    channel = Channel.INTERNAL
    # The phone protocol is specified in phone-protocol.md, not in the management API's
    # OpenAPI schema.
    schema = None

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        # ``as_view`` already set request, args and kwargs (View.setup); nothing else of
        # APIView's state is used.
        if request.method != "POST":
            return phone_error(PhoneError.INVALID_REQUEST, "use POST")
        with REQUEST_DURATION.labels("update_check").time():
            try:
                return self.post(request)
            except Exception:
                logger.exception("update check failed")  # never a 500 for a phone
                update_check_counted(self.channel, None)
                return phone_error(PhoneError.INVALID_REQUEST, "the request could not be processed")

    def post(self, request: HttpRequest) -> HttpResponse:
        address = client_address(request)
        length = request.META.get("CONTENT_LENGTH") or "0"
        if length.isdigit() and int(length) > MAX_BODY:
            body_discard(request)
            return self._refuse(
                address, None, PhoneError.TOO_LARGE, f"the request is larger than {MAX_BODY} bytes"
            )
        try:
            if (request.content_type or "").lower() not in XML_TYPES:
                raise ProtocolError("the Content-Type must be text/xml or application/xml")
            check = parse_update_check(body_reader(request)(MAX_BODY + 1))
        except ProtocolError as error:
            body_discard(request)
            return self._refuse(address, None, error.code, error.message)
        if self.channel == Channel.EXTERNAL:
            refusal = check_external(request, user_id=check.user_id, address=address)
            if refusal is not None:
                return self._refuse(
                    address, check, refusal.code, refusal.message, retry_after=refusal.retry_after
                )
        decision = offer_for_request(check=check)
        recorder.record(
            CheckRecord(
                created_at=timezone.now(),
                channel=self.channel,
                client_address=address,
                check=check,
                decision=decision,
                user=check.user_id,
                outcome=decision.outcome,
                status=200,
                message="" if decision.server_known else "this server is not in the topology",
            )
        )
        response = HttpResponse(
            render_response(decision.offered), content_type="text/xml; charset=utf-8"
        )
        update_check_counted(self.channel, decision)  # last: a failure above is "refused"
        return response

    def _refuse(
        self,
        address: str | None,
        check: UpdateCheck | None,
        code: PhoneError,
        message: str,
        *,
        retry_after: int | None = None,
    ) -> HttpResponse:
        response = phone_error(code, message, retry_after=retry_after)
        recorder.record(
            CheckRecord(
                created_at=timezone.now(),
                channel=self.channel,
                client_address=address,
                check=check,
                decision=None,
                user=check.user_id if check else "",
                outcome=Outcome.REFUSED,
                status=response.status_code,
                message=f"{code}: {message}",
            )
        )
        update_check_counted(self.channel, None)
        return response


class ExternalUpdateCheckView(UpdateCheckView):
    channel = Channel.EXTERNAL


@method_decorator(csrf_exempt, name="dispatch")
class LogUploadView(View):
    """POST /RequestHandler/Files?type=&name=&mac=&serial= (and /RequestHandlerExt/Files
    with ``user=``): the raw body is one device log, streamed to disk.

    A plain Django view: DRF's parsers, renderers and negotiation have nothing to add to
    a raw file, and cost about a tenth of the upload rate (bench/log_upload_bench.py).
    """

    channel = Channel.INTERNAL
    http_method_names = ["post"]

    def post(self, request: HttpRequest) -> HttpResponse:
        with REQUEST_DURATION.labels("log_upload").time():
            return self._post(request)

    def _post(self, request: HttpRequest) -> HttpResponse:
        params = {key: request.GET.get(key, "") for key in LOG_UPLOAD_PARAMS}
        try:
            if self.channel == Channel.EXTERNAL:
                address = client_address(request)
                user = phone_field("user", params["user"].strip(), MAX_USER)
                refusal = check_external(request, user_id=user, address=address)
                if refusal is not None:
                    # A 401 must reach the phone (it retries with credentials), not a 502.
                    body_discard(request)
                    log_upload_counted(self.channel, refusal.code)
                    return phone_error(
                        refusal.code, refusal.message, retry_after=refusal.retry_after
                    )
            config = server_log_config()
            upload = log_upload_parse(params=params, channel=self.channel, config=config)
            length = request.META.get("CONTENT_LENGTH") or ""
            read = body_reader(request)
            log_upload_store(
                upload=upload,
                chunks=iter(lambda: read(64 * 1024), b""),
                declared_length=int(length) if length.isdigit() else None,
                config=config,
            )
        except ProtocolError as error:
            # One line: the message names the field, its value cut to the field's bound.
            logger.info("log upload refused: %s: %s", error.code, error.message)
            body_discard(request)
            log_upload_counted(self.channel, error.code)
            return phone_error(error.code, error.message)
        except Exception:
            logger.exception("log upload failed")  # never a 500 for a phone
            log_upload_counted(self.channel, PhoneError.INVALID_REQUEST)
            return phone_error(PhoneError.INVALID_REQUEST, "the upload could not be processed")
        log_upload_counted(self.channel, None)
        return HttpResponse(
            '<?xml version="1.0" encoding="utf-8"?>\n'
            "<LogUploadResponse><Status>Stored</Status></LogUploadResponse>",
            status=201,
            content_type="text/xml; charset=utf-8",
        )

    def http_method_not_allowed(
        self, request: HttpRequest, *args: Any, **kwargs: Any
    ) -> HttpResponse:
        return phone_error(PhoneError.INVALID_REQUEST, "use POST")


class ExternalLogUploadView(LogUploadView):
    channel = Channel.EXTERNAL
