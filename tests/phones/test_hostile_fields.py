"""Every field a phone sends has the protocol's bound and character set: a request outside
them is refused with the protocol's error naming the field, audited as refused with the
value cut to its bound, and stores nothing (on the configured database: SQLite here,
PostgreSQL in CI)."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

import pytest
from django.contrib.auth.models import User
from django.test import Client, RequestFactory
from pytest_django.fixtures import Settings

from phones.models import Device, DeviceLog, RequestAudit
from phones.services.spool_loader import spool_load_once
from phones.views import UpdateCheckView
from portal.models import DeviceUpdateRule

URL = "/RequestHandler/ucdevice.upx"
UPLOAD = "/RequestHandler/Files"
FIELDS = {
    "DeviceType": "UCPhone",
    "MACAddress": "00-04-F2-11-22-33",
    "SerialNumber": "CX6-0012345",
    "Vendor": "Polycom",
    "Model": "CX600",
    "Revision": "Rev-1",
    "Locale": "ENU",
    "UserID": "sip:alice@contoso.com",
}
MODULE = {
    "UpdateType": "CPE",
    "FileName": "CPE.nbt",
    "Version": "4.0.7577.4363",
    "TimeStamp": "2026-10-01T08:00:00Z",
}


def request_xml(fields: dict[str, str], module: dict[str, str], modules: int = 1) -> bytes:
    """The update check with these fields (already XML text: escaped by the caller)."""
    inner = "".join(f"<{name}>{value}</{name}>" for name, value in fields.items())
    one = "<Module>" + "".join(f"<{n}>{v}</{n}>" for n, v in module.items()) + "</Module>"
    return (
        f'<?xml version="1.0" encoding="utf-8"?>\n<Request>{inner}'
        f"<Modules>{one * modules}</Modules></Request>"
    ).encode()


def xml_error(code: str, message: str) -> bytes:
    return (
        '<?xml version="1.0" encoding="utf-8"?>\n'
        f"<Error><Code>{code}</Code><Message>{escape(message)}</Message></Error>"
    ).encode()


SERIAL_RULE = "(at most 64 letters, digits, '_', '.', ':' or '-')"
CHECK_CASES = [
    ("MACAddress", "0" * 256, f"MACAddress '{'0' * 17}'... is not a MAC address (12 hex digits)"),
    ("MACAddress", "00-04-F2-11-22-33-44-55", "MACAddress '00-04-F2-11-22-33'... is not a MAC address (12 hex digits)"),  # noqa: E501
    ("MACAddress", "0004F211223G", "MACAddress '0004F211223G' is not a MAC address (12 hex digits)"),  # noqa: E501
    ("SerialNumber", "S" * 65, f"SerialNumber '{'S' * 64}'... is not a serial number {SERIAL_RULE}"),  # noqa: E501
    ("SerialNumber", "CX6/0012345", f"SerialNumber 'CX6/0012345' is not a serial number {SERIAL_RULE}"),  # noqa: E501
    ("SerialNumber", "..", f"SerialNumber '..' is not a serial number {SERIAL_RULE}"),
    ("DeviceType", "D" * 65, f"DeviceType is longer than 64 characters: '{'D' * 64}'..."),
    ("DeviceType", "..", "DeviceType cannot name a folder: '..'"),
    ("Vendor", "Polycom/../x", "Vendor cannot name a folder: 'Polycom/../x'"),
    ("Vendor", "V" * 300, f"Vendor is longer than 64 characters: '{'V' * 64}'..."),
    ("Model", ".", "Model cannot name a folder: '.'"),
    ("Model", "CX&#x85;600", "Model contains control characters: 'CX\\x85600'"),
    ("Revision", "Rev\\1", "Revision cannot name a folder: 'Rev\\\\1'"),
    ("Locale", "E&#9;NU", "Locale contains control characters: 'E\\tNU'"),
    ("Locale", "L" * 65, f"Locale is longer than 64 characters: '{'L' * 64}'..."),
    ("UserID", "u" * 257, f"UserID is longer than 256 characters: '{'u' * 256}'..."),
    ("UserID", "sip:a&#10;b@contoso.com", "UserID contains control characters: 'sip:a\\nb@contoso.com'"),  # noqa: E501
]  # fmt: skip
MODULE_CASES = [
    ("UpdateType", "C" * 65, f"UpdateType is longer than 64 characters: '{'C' * 64}'..."),
    ("UpdateType", "C/P/E", "UpdateType cannot name a folder: 'C/P/E'"),
    ("FileName", "f" * 256, f"FileName is longer than 255 characters: '{'f' * 255}'..."),
    ("FileName", "CPE&#0;.nbt", None),  # not even XML: expat refuses the character
    ("Version", "1." * 32 + "1", f"Version is longer than 64 characters: '{'1.' * 32}'..."),
    ("Version", "4.0.x", "Version '4.0.x' is not a version"),
    ("TimeStamp", "t" * 65, f"TimeStamp is longer than 64 characters: '{'t' * 64}'..."),
    ("TimeStamp", "2026&#x9F;", "TimeStamp contains control characters: '2026\\x9f'"),
]  # fmt: skip


def refused_and_audited(client: Client, body: bytes, message: str | None) -> None:
    response = client.post(URL, data=body, content_type="text/xml")
    assert (response.status_code, response["Content-Type"]) == (400, "text/xml; charset=utf-8")
    if message is not None:
        assert response.content == xml_error("InvalidRequest", message)
    assert spool_load_once() == 1
    audit = RequestAudit.objects.get()
    assert (audit.outcome, audit.status, audit.identity, audit.mac, audit.model) == (
        "refused", 400, "", "", "",
    )  # fmt: skip
    if message is not None:
        assert audit.message == f"InvalidRequest: {message}"[:400]
    assert Device.objects.count() == 0


@pytest.mark.django_db
@pytest.mark.parametrize(("field", "value", "message"), CHECK_CASES)
def test_a_hostile_request_field_is_refused_named_and_audited_cut_to_its_bound(
    client: Client, rule: DeviceUpdateRule, field: str, value: str, message: str
) -> None:
    refused_and_audited(client, request_xml({**FIELDS, field: value}, MODULE), message)


@pytest.mark.django_db
@pytest.mark.parametrize(("field", "value", "message"), MODULE_CASES)
def test_a_hostile_module_field_is_refused_named_and_audited_cut_to_its_bound(
    client: Client, rule: DeviceUpdateRule, field: str, value: str, message: str | None
) -> None:
    refused_and_audited(client, request_xml(FIELDS, {**MODULE, field: value}), message)


@pytest.mark.django_db
def test_a_file_name_stem_standing_for_the_update_type_has_its_bound(
    client: Client, rule: DeviceUpdateRule
) -> None:
    module = {"FileName": "x" * 70 + ".nbt", "Version": "1.0"}
    message = f"UpdateType is longer than 64 characters: '{'x' * 64}'..."
    refused_and_audited(client, request_xml(FIELDS, module), message)


@pytest.mark.django_db
def test_more_than_64_modules_are_refused(client: Client, rule: DeviceUpdateRule) -> None:
    refused_and_audited(client, request_xml(FIELDS, MODULE, modules=65), "more than 64 modules")


@pytest.mark.django_db
def test_every_field_at_its_bound_is_answered_and_stored_whole(
    client: Client, rule: DeviceUpdateRule
) -> None:
    fields = {
        "DeviceType": "D" * 64, "MACAddress": "00:04:f2:11:22:33", "SerialNumber": "S" * 64,
        "Vendor": "V" * 64, "Model": "M" * 64, "Revision": "R" * 64, "Locale": "L" * 64,
        "UserID": "u" * 256,
    }  # fmt: skip
    module = {"UpdateType": "U" * 64, "FileName": "f" * 255, "Version": "123456789." * 6 + "1234",
              "TimeStamp": "t" * 64}  # fmt: skip
    response = client.post(URL, data=request_xml(fields, module), content_type="text/xml")
    assert response.status_code == 200
    assert spool_load_once() == 1
    audit = RequestAudit.objects.get()
    assert (audit.outcome, audit.mac, audit.serial, audit.model, audit.user) == (
        "no rule", "0004F2112233", "S" * 64, "M" * 64, "u" * 256,
    )  # fmt: skip
    assert Device.objects.get().identity == "MAC:0004F2112233"


@pytest.mark.django_db
def test_a_chunked_check_the_server_cannot_delimit_is_411(rule: DeviceUpdateRule) -> None:
    """A server that does not decode chunks (no ``wsgi.input_terminated``): 411, since
    Django alone would read the body as empty."""
    request = RequestFactory().post(
        URL, data=request_xml(FIELDS, MODULE), content_type="text/xml",
        HTTP_TRANSFER_ENCODING="chunked",
    )  # fmt: skip
    del request.META["CONTENT_LENGTH"]
    response = UpdateCheckView.as_view()(request)
    assert (response.status_code, response.content) == (
        411,
        xml_error(
            "LengthRequired", "a chunked body needs a server that decodes it; send Content-Length"
        ),
    )
    assert spool_load_once() == 1
    audit = RequestAudit.objects.get()
    assert (audit.outcome, audit.status) == ("refused", 411)
    assert Device.objects.count() == 0


# --- Log uploads -------------------------------------------------------------------------


@pytest.fixture
def log_dir(settings: Settings, tmp_path: Path) -> Path:
    settings.DEVICE_LOG_DIR = tmp_path / "logs"
    return settings.DEVICE_LOG_DIR


NAME_RULE = (
    "name must be a bare file name of at most 255 printable characters, not starting with a dot"  # noqa: E501
)
UPLOAD_CASES = [
    ({"mac": "0" * 256}, 400, "InvalidRequest", f"mac '{'0' * 17}'... is not a MAC address (12 hex digits)"),  # noqa: E501
    ({"mac": "", "serial": "."}, 400, "InvalidRequest", f"serial '.' is not a serial number {SERIAL_RULE}"),  # noqa: E501
    ({"mac": "", "serial": ".."}, 400, "InvalidRequest", f"serial '..' is not a serial number {SERIAL_RULE}"),  # noqa: E501
    ({"mac": "", "serial": "S" * 65}, 400, "InvalidRequest", f"serial '{'S' * 64}'... is not a serial number {SERIAL_RULE}"),  # noqa: E501
    ({"mac": "", "serial": "a%5Cb"}, 400, "InvalidRequest", f"serial 'a\\\\b' is not a serial number {SERIAL_RULE}"),  # noqa: E501
    ({"name": "n" * 252 + ".dmp"}, 400, "InvalidRequest", f"{NAME_RULE}: '{'n' * 252 + '.dm'}'..."),  # noqa: E501
    ({"name": "%C3%A9" * 130 + ".dmp"}, 400, "InvalidRequest", f"{NAME_RULE}: '{'é' * 130 + '.dmp'}'"),  # noqa: E501
    ({"name": "a%0A.dmp"}, 400, "InvalidRequest", f"{NAME_RULE}: 'a\\n.dmp'"),
    ({"type": "T" * 1000}, 415, "UnsupportedLogType", f"log type '{'T' * 64}'... is not allowed"),  # noqa: E501
    ({"name": "a." + "x" * 100}, 415, "UnsupportedLogType", f"file extension '.{'x' * 63}'... is not allowed"),  # noqa: E501
    ({"user": "u" * 257}, 400, "InvalidRequest", f"user is longer than 256 characters: '{'u' * 256}'..."),  # noqa: E501
    ({"user": "a%09b"}, 400, "InvalidRequest", "user contains control characters: 'a\\tb'"),
]  # fmt: skip


def upload(client: Client, *, url: str = UPLOAD, **params: str) -> Any:
    query = {"type": "Watson", "name": "crash.dmp", "mac": "00-04-F2-11-22-33", **params}
    text = "&".join(f"{key}={value}" for key, value in query.items())
    return client.post(f"{url}?{text}", data=b"dump", content_type="application/octet-stream")


def stored_nothing(log_dir: Path) -> None:
    spool_load_once()
    assert [p for p in log_dir.rglob("*") if p.is_file() and p.name != ".usage"] == []
    assert not (log_dir / "Client").exists() or not any((log_dir / "Client").rglob("*.dmp"))
    assert DeviceLog.objects.count() == 0


@pytest.mark.django_db
@pytest.mark.parametrize(("params", "status", "code", "message"), UPLOAD_CASES)
def test_a_hostile_upload_parameter_is_refused_and_stores_nothing(
    client: Client, log_dir: Path, params: dict[str, str], status: int, code: str, message: str
) -> None:
    response = upload(client, **params)
    assert (response.status_code, response.content) == (status, xml_error(code, message))
    stored_nothing(log_dir)


@pytest.mark.django_db
@pytest.mark.parametrize("user", ["u" * 257, "a%09b"])
def test_an_external_upload_checks_the_user_before_signing_in(
    client: Client, log_dir: Path, user: str
) -> None:
    User.objects.create_user(username="alice@contoso.com", password="Pa55-word-alice")
    auth = "Basic " + base64.b64encode(b"alice@contoso.com:Pa55-word-alice").decode()
    response = client.post(
        f"/RequestHandlerExt/Files?type=Watson&name=a.dmp&mac=0004F2112233&user={user}",
        data=b"dump", content_type="application/octet-stream", HTTP_AUTHORIZATION=auth,
    )  # fmt: skip
    assert response.status_code == 400
    assert response.content.startswith(xml_error("InvalidRequest", "user ")[:-25])
    stored_nothing(log_dir)


@pytest.mark.django_db
def test_a_serial_dot_dot_never_reaches_the_log_store(client: Client, log_dir: Path) -> None:
    for serial in (".", "..", "%2E%2E"):
        assert upload(client, mac="", serial=serial, type="CELog").status_code == 400
    assert not (log_dir / "Client" / "CELog").exists()
    assert not (log_dir / "Client").exists() or list((log_dir / "Client").iterdir()) == []
    stored_nothing(log_dir)


@pytest.mark.django_db
def test_the_checks_buffered_with_hostile_ones_are_all_written(
    client: Client, rule: DeviceUpdateRule
) -> None:
    """The issue's case: a 256-character MAC among good checks made every later flush
    fail on PostgreSQL; now it is refused and audited, and the others land with it."""
    hostile = [request_xml({**FIELDS, field: value}, MODULE) for field, value, _ in CHECK_CASES]
    good = [
        request_xml({**FIELDS, "MACAddress": f"00-04-F2-00-00-{index:02X}"}, MODULE)
        for index in range(len(hostile))
    ]
    for bad, fine in zip(hostile, good, strict=True):
        assert client.post(URL, data=bad, content_type="text/xml").status_code == 400
        assert client.post(URL, data=fine, content_type="text/xml").status_code == 200
    assert spool_load_once() == 2 * len(hostile)
    assert sorted(RequestAudit.objects.values_list("status", flat=True)) == (
        [200] * len(good) + [400] * len(hostile)
    )
    assert Device.objects.count() == len(good)
