"""The phone endpoints: update checks and log uploads, inside and outside the firewall.

Thin: parse, decide (in memory), answer, and hand the audit record to the batch
recorder. Every refusal is the spec's XML error with its status, never a 500.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any, cast

from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from django.utils.decorators import method_decorator
from django.views import View
from django.views.decorators.csrf import csrf_exempt
from rest_framework.negotiation import BaseContentNegotiation
from rest_framework.parsers import BaseParser
from rest_framework.permissions import AllowAny
from rest_framework.renderers import BaseRenderer
from rest_framework.request import Request
from rest_framework.views import APIView

from phones.auth import check_external, client_address
from phones.choices import Channel, Outcome, PhoneError
from phones.decision import offer_for_request, server_log_config
from phones.errors import phone_error
from phones.logs import log_upload_parse, log_upload_store
from phones.protocol import (
    MAX_BODY,
    ProtocolError,
    UpdateCheck,
    parse_update_check,
    render_response,
)
from phones.recorder import CheckRecord, recorder

logger = logging.getLogger(__name__)
XML_TYPES = ("text/xml", "application/xml")
LOG_UPLOAD_PARAMS = ("type", "name", "mac", "serial", "user")


class PhoneXMLParser(BaseParser):
    """The update check body: at most 64 KiB of text/xml or application/xml, parsed
    safely (no DTD, no entities) and tolerantly (phone-protocol.md)."""

    media_type = "*/*"

    def parse(self, stream: Any, media_type: str | None = None, parser_context: Any = None) -> Any:
        if (media_type or "").split(";")[0].strip().lower() not in XML_TYPES:
            raise ProtocolError("the Content-Type must be text/xml or application/xml")
        body = stream.read(MAX_BODY + 1) if stream is not None else b""
        return parse_update_check(body)


class PhoneXMLRenderer(BaseRenderer):
    media_type = "text/xml"
    charset = "utf-8"
    format = "xml"

    def render(
        self, data: Any, accepted_media_type: str | None = None, renderer_context: Any = None
    ) -> bytes:
        return data if isinstance(data, bytes) else b""


class PhoneContentNegotiation(BaseContentNegotiation):
    """Phones do not negotiate: the body is whatever the view's parser takes and the
    answer is always the protocol's XML, whatever Accept says (and without parsing it)."""

    def select_parser(self, request: Request, parsers: Iterable[BaseParser]) -> BaseParser | None:
        return next(iter(parsers), None)

    def select_renderer(
        self, request: Request, renderers: Iterable[BaseRenderer], format_suffix: str | None = None
    ) -> tuple[BaseRenderer, str]:
        renderer = next(iter(renderers))
        return renderer, renderer.media_type


class UpdateCheckView(APIView):
    """POST /RequestHandler/ucdevice.upx (internal) and /RequestHandlerExt/ucdevice.upx."""

    channel = Channel.INTERNAL
    authentication_classes: list[Any] = []
    permission_classes = [AllowAny]
    parser_classes = [PhoneXMLParser]
    renderer_classes = [PhoneXMLRenderer]
    content_negotiation_class = PhoneContentNegotiation
    throttle_classes: list[Any] = []
    # The phone protocol is specified in phone-protocol.md, not in the management API's
    # OpenAPI schema.
    schema = None

    def post(self, request: Request) -> HttpResponse:
        address = client_address(request._request)
        length = request.META.get("CONTENT_LENGTH") or "0"
        if length.isdigit() and int(length) > MAX_BODY:
            return self._refuse(
                address, None, PhoneError.TOO_LARGE, f"the request is larger than {MAX_BODY} bytes"
            )
        try:
            check = cast(UpdateCheck, request.data)
        except ProtocolError as error:
            return self._refuse(address, None, error.code, error.message)
        if self.channel == Channel.EXTERNAL:
            refusal = check_external(request._request, user_id=check.user_id, address=address)
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
        return HttpResponse(
            render_response(decision.offered), content_type="text/xml; charset=utf-8"
        )

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
        return response

    def handle_exception(self, exc: Exception) -> HttpResponse:  # type: ignore[override]
        if isinstance(exc, ProtocolError):
            return self._refuse(client_address(self.request._request), None, exc.code, exc.message)
        # Anything else DRF would turn into HTML or JSON (405, 415...): still the phone's XML.
        status = getattr(exc, "status_code", None)
        if status == 405:
            return phone_error(PhoneError.INVALID_REQUEST, "use POST")
        logger.exception("update check failed")
        return phone_error(PhoneError.INVALID_REQUEST, "the request could not be processed")


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
        params = {key: request.GET.get(key, "") for key in LOG_UPLOAD_PARAMS}
        try:
            if self.channel == Channel.EXTERNAL:
                address = client_address(request)
                refusal = check_external(request, user_id=params["user"], address=address)
                if refusal is not None:
                    return phone_error(
                        refusal.code, refusal.message, retry_after=refusal.retry_after
                    )
            config = server_log_config()
            upload = log_upload_parse(params=params, channel=self.channel, config=config)
            length = request.META.get("CONTENT_LENGTH") or ""
            log_upload_store(
                upload=upload,
                chunks=iter(lambda: request.read(64 * 1024), b""),
                declared_length=int(length) if length.isdigit() else None,
                config=config,
            )
        except ProtocolError as error:
            return phone_error(error.code, error.message)
        except Exception:
            logger.exception("log upload failed")  # never a 500 for a phone
            return phone_error(PhoneError.INVALID_REQUEST, "the upload could not be processed")
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
