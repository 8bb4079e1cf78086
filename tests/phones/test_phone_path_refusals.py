"""Headers from the wild on the phones' paths: every refusal is the protocol's XML (or a
download's plain status) and none logs a traceback; a helpdesk 403 in the control panel
is one log line."""

from __future__ import annotations

import hashlib
import io
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.contrib.auth.models import User
from django.test import Client
from pytest_django.fixtures import Settings

from phones.models import RequestAudit
from phones.services.spool_loader import spool_pending_records

pytestmark = pytest.mark.django_db
FOLDER = "UCPhone/Polycom/CX600/Rev-1/ENU/4.0.7577.4387/CPE"
DATA = hashlib.shake_256(b"image").digest(1000)
IMAGE = f"/DeviceUpdateFiles_Int/{FOLDER}/CPE.nbt"


def xml_error(code: str, message: str) -> bytes:
    return (
        '<?xml version="1.0" encoding="utf-8"?>\n'
        f"<Error><Code>{code}</Code><Message>{message}</Message></Error>"
    ).encode()


@pytest.fixture
def store(settings: Settings, tmp_path: Path) -> Path:
    store = tmp_path / "store"
    (store / FOLDER).mkdir(parents=True)
    (store / FOLDER / "CPE.nbt").write_bytes(DATA)
    settings.SERVER_STORE_DIR = store
    return store


@pytest.fixture
def console() -> Iterator[io.StringIO]:
    """What the service's console handler (settings.LOGGING) writes, with its filters."""
    (handler,) = [
        h
        for h in logging.getLogger().handlers
        if h.filters and isinstance(h, logging.StreamHandler)
    ]
    stream = io.StringIO()
    previous = handler.setStream(stream)
    yield stream
    handler.setStream(previous)


def body(response: object) -> bytes:
    return b"".join(response.streaming_content)  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("range_header", "status", "content_range", "content"),
    [
        ("bytes=" + "9" * 5000 + "-", 416, f"bytes */{len(DATA)}", b""),
        ("bytes=0-" + "9" * 5000, 206, f"bytes 0-999/{len(DATA)}", DATA),
        ("bytes=-" + "9" * 5000, 206, f"bytes 0-999/{len(DATA)}", DATA),
        ("bytes=10-" + "9" * 19, 206, f"bytes 10-999/{len(DATA)}", DATA[10:]),
    ],
    ids=["start", "end", "suffix", "twenty digits"],
)
def test_a_range_of_thousands_of_digits_is_answered_not_a_500(
    client: Client,
    store: Path,
    console: io.StringIO,
    range_header: str,
    status: int,
    content_range: str,
    content: bytes,
) -> None:
    response = client.get(IMAGE, HTTP_RANGE=range_header)
    assert (response.status_code, response["Content-Range"]) == (status, content_range)
    assert (body(response) if status == 206 else response.content) == content
    assert "Traceback" not in console.getvalue()


@pytest.mark.parametrize("debug", [True, False])
def test_an_unknown_host_on_a_phone_path_is_the_xml_error_and_one_line(
    client: Client, settings: Settings, console: io.StringIO, debug: bool
) -> None:
    settings.DEBUG = debug
    response = client.post(
        "/RequestHandler/ucdevice.upx", data=b"<Request/>", content_type="text/xml",
        HTTP_HOST="evil.example",
    )  # fmt: skip
    assert (response.status_code, response["Content-Type"], response.content) == (
        400,
        "text/xml; charset=utf-8",
        xml_error("InvalidRequest", "this server does not answer that Host"),
    )
    # The reason, then Django's line for every 4xx; no traceback.
    assert [line.split(" ", 2)[2] for line in console.getvalue().splitlines()] == [
        "WARNING phones.middleware: phone request refused: unknown Host 'evil.example'",
        "WARNING django.request: Bad Request: /RequestHandler/ucdevice.upx",
    ]
    assert (spool_pending_records(), RequestAudit.objects.count()) == (0, 0)


def test_an_unknown_host_elsewhere_is_one_line_without_a_traceback(
    client: Client, console: io.StringIO
) -> None:
    assert client.get("/admin/", HTTP_HOST="evil.example").status_code == 400
    assert console.getvalue().count("\n") == 1
    assert "ERROR django.security.DisallowedHost: Invalid HTTP_HOST header" in console.getvalue()


@pytest.mark.parametrize("debug", [True, False])
@pytest.mark.parametrize(
    "path",
    ["/RequestHandler/nothing", "/RequestHandlerExt/" + "x" * 3000, "/DeviceUpdateFiles_Ext/"],
)
def test_a_phone_path_no_view_serves_is_the_xml_not_found(
    client: Client, settings: Settings, console: io.StringIO, debug: bool, path: str
) -> None:
    settings.DEBUG = debug
    response = client.get(path)
    assert (response.status_code, response["Content-Type"], response.content) == (
        404,
        "text/xml; charset=utf-8",
        xml_error("NotFound", "no such file on this server"),
    )
    assert "Traceback" not in console.getvalue()


@pytest.mark.parametrize("method", ["post", "put", "delete"])
def test_a_write_to_a_download_path_is_a_plain_405(
    store: Path, console: io.StringIO, method: str
) -> None:
    client = Client(enforce_csrf_checks=True)
    response = getattr(client, method)(IMAGE, data=b"x", content_type="application/octet-stream")
    assert (response.status_code, response["Allow"], response.content) == (405, "GET, HEAD", b"")
    assert (store / FOLDER / "CPE.nbt").read_bytes() == DATA
    assert (
        console.getvalue()
        .splitlines()[-1]
        .endswith(f"WARNING django.request: Method Not Allowed ({method.upper()}): {IMAGE}")
    )


def test_a_helpdesk_403_in_the_control_panel_is_one_line(
    client: Client, helpdesk: User, console: io.StringIO
) -> None:
    client.force_login(helpdesk)
    assert client.post("/admin/phones/devicelog/clear/", {"days_back": "1"}).status_code == 403
    assert client.get("/admin/portal/deviceupdaterule/add/").status_code == 403
    lines = console.getvalue().splitlines()
    forbidden = "WARNING django.request: Forbidden (Permission denied): /admin/"
    assert [line.split(" ", 2)[2] for line in lines] == [
        f"{forbidden}phones/devicelog/clear/",
        f"{forbidden}portal/deviceupdaterule/add/",
    ]
