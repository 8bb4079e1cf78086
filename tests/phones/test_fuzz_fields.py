"""Fuzz: a few thousand generated values for every field a phone sends, through the real
endpoints (the Django test client through the real URLs) on PostgreSQL, where a value
past its column's bound would fail the batch write. The run ends with no 500, no
traceback or error in the logs, every check in the audit with the status it was
answered (every accepted one with the value it sent), nothing quarantined, and every
log upload accepted stored under a folder of the store, listed.

A seeded generator (``FUZZ_SEED``, printed on failure) mixes valid values, values at and
past each bound, path pieces, XML specials, control and non-ASCII characters, and
random mutations of a valid value.
"""

from __future__ import annotations

import logging
import os
import random
import string
import urllib.parse
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from xml.sax.saxutils import escape

import pytest
from django.test import Client
from pytest_django.fixtures import Settings

from phones.models import DeviceLog, RequestAudit
from phones.services.records import records_quarantined
from phones.services.spool_loader import spool_load_once
from portal.models import DeviceUpdateRule

pytestmark = [pytest.mark.services, pytest.mark.django_db]
SEED = int(os.environ.get("FUZZ_SEED", "20261206"))
PER_CHECK_FIELD = 2000
PER_UPLOAD_FIELD = 1000
URL = "/RequestHandler/ucdevice.upx"
UPLOAD = "/RequestHandler/Files"

VALID = {
    "DeviceType": "UCPhone", "MACAddress": "00-04-F2-11-22-33", "SerialNumber": "CX6-0012345",
    "Vendor": "Polycom", "Model": "CX600", "Revision": "Rev-1", "Locale": "ENU",
    "UserID": "sip:alice@contoso.com",
}  # fmt: skip
VALID_MODULE = {
    "UpdateType": "CPE", "FileName": "CPE.nbt", "Version": "4.0.7577.4363",
    "TimeStamp": "2026-10-01T08:00:00Z",
}  # fmt: skip
# The audit column each request field is kept in, for the accepted checks.
COLUMN = {
    "DeviceType": "device_type", "SerialNumber": "serial", "Vendor": "vendor",
    "Model": "model", "Revision": "revision", "Locale": "locale", "UserID": "user",
}  # fmt: skip
VALID_UPLOAD = {
    "type": "Watson", "name": "crash.dmp", "mac": "00-04-F2-11-22-33", "serial": "",
    "user": "",
}  # fmt: skip

PIECES = [
    "", " ", ".", "..", "/", "\\", "../", "..\\", "%2e%2e", "\x00", "\t", "\n", "\r", "\x1b",
    "\x7f", "\x85", "\u00a0", "\u2028", "\u202e", "\ufeff", "\ufffd", "é", "ß", "中", "😀",
    "<", ">", "&", "'", '"', "]]>", ";", "#", ",", ":", "-", "_", "=", "?", "%", "+", "*",
    "$", "{", "}", "|", "~", "`", "@", "sip:", "0", "9", "F", "f", "00-04", "4.0",
]  # fmt: skip
ALPHABETS = [
    string.ascii_letters + string.digits,
    string.hexdigits + "-:",
    string.digits + ".",
    string.printable,
    "".join(chr(c) for c in range(0x20, 0x7F)) + "éüß中文😀\u00a0\u200b\u202e",
    "".join(chr(c) for c in range(0, 0x100)),
]


def values(rng: random.Random, valid: str, count: int) -> Iterator[str]:
    """``count`` values for a field whose valid example is ``valid``."""
    for _ in range(count):
        kind = rng.random()
        if kind < 0.1:
            yield valid
        elif kind < 0.35:  # near a bound: 0 to 300 characters of one alphabet
            alphabet = rng.choice(ALPHABETS)
            length = rng.choice([0, 1, 11, 12, 13, 16, 17, 18, 63, 64, 65, 255, 256, 257, 300])
            yield "".join(rng.choice(alphabet) for _ in range(length))
        elif kind < 0.6:  # pieces strung together
            yield "".join(rng.choice(PIECES) for _ in range(rng.randint(1, 8)))
        elif kind < 0.9:  # a valid value mutated
            text = list(valid)
            for _ in range(rng.randint(1, 4)):
                position = rng.randint(0, len(text))
                action = rng.random()
                if action < 0.4:
                    text.insert(position, rng.choice(PIECES))
                elif action < 0.7 and text:
                    del text[min(position, len(text) - 1)]
                elif text:
                    text[min(position, len(text) - 1)] = rng.choice(rng.choice(ALPHABETS))
            yield "".join(text)
        else:  # long
            yield rng.choice(ALPHABETS)[:20] * rng.randint(20, 300)


def as_xml_text(rng: random.Random, value: str) -> tuple[str, bool]:
    """Mostly escaped (the value is the field's text); sometimes raw, for the parser."""
    raw = rng.random() < 0.1
    return (value if raw else escape(value)), raw


def check_body(fields: dict[str, str], module: dict[str, str]) -> bytes:
    inner = "".join(f"<{name}>{text}</{name}>" for name, text in fields.items())
    mod = "".join(f"<{name}>{text}</{name}>" for name, text in module.items())
    return (
        f'<?xml version="1.0" encoding="utf-8"?>\n<Request>{inner}'
        f"<Modules><Module>{mod}</Module></Modules></Request>"
    ).encode("utf-8", "surrogatepass")


class Faults(logging.Handler):
    """Every log record at ERROR or above, and every record carrying a traceback."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.levelno >= logging.ERROR or record.exc_info:
            self.records.append(f"{record.name}: {record.getMessage()[:300]}")


@pytest.fixture
def faults() -> Iterator[Faults]:
    handler = Faults()
    root = logging.getLogger()
    previous = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    yield handler
    root.removeHandler(handler)
    root.setLevel(previous)


@pytest.fixture
def log_dir(settings: Settings, tmp_path: Path) -> Path:
    settings.DEVICE_LOG_DIR = tmp_path / "logs"
    settings.DATA_DIR = tmp_path / "var"  # its own quarantine
    return settings.DEVICE_LOG_DIR


def test_fuzzed_update_checks_are_answered_audited_and_never_poison_a_batch(
    postgres: None, client: Client, rule: DeviceUpdateRule, faults: Faults, log_dir: Path
) -> None:
    rng = random.Random(SEED)
    answered: Counter[int] = Counter()
    accepted: dict[str, list[str]] = {column: [] for column in COLUMN.values()}
    for field in [*VALID, *VALID_MODULE]:
        for value in values(rng, VALID.get(field) or VALID_MODULE[field], PER_CHECK_FIELD):
            fields = {name: escape(text) for name, text in VALID.items()}
            module = {name: escape(text) for name, text in VALID_MODULE.items()}
            text, raw = as_xml_text(rng, value)
            (fields if field in VALID else module)[field] = text
            if field == "MACAddress" and rng.random() < 0.5:
                fields["SerialNumber"] = ""  # the MAC alone names the phone
            response = client.post(URL, data=check_body(fields, module), content_type="text/xml")
            status = response.status_code
            assert status in (200, 400, 413), (SEED, field, value, response.content[:300])
            assert response["Content-Type"] == "text/xml; charset=utf-8"
            answered[status] += 1
            if status == 200 and field in COLUMN and not raw:
                accepted[COLUMN[field]].append(value.strip())
        spool_load_once()
    # Both kinds were tried, plenty of each.
    assert (answered[200] > 1000, answered[400] > 1000) == (True, True), answered
    assert faults.records == [], (SEED, faults.records[:5])
    assert records_quarantined() == 0
    assert Counter(RequestAudit.objects.values_list("status", flat=True)) == answered
    for column, sent in accepted.items():
        # Each field was fuzzed while the others kept their valid value; a raw value's text
        # is what the XML says it is (entities and all), so only the escaped ones count here.
        valid = VALID[_field_of(column)]
        kept = RequestAudit.objects.filter(status=200).values_list(column, flat=True)
        stored = Counter(v for v in kept if v != valid)
        expected = Counter(v for v in sent if v != valid)
        # Raw values may add rows of their own; every escaped accepted value is there.
        assert expected - stored == Counter(), (SEED, column, list(expected - stored)[:5])


def _field_of(column: str) -> str:
    return next(field for field, name in COLUMN.items() if name == column)


def test_fuzzed_log_uploads_store_only_inside_the_store_and_are_listed(
    postgres: None, client: Client, faults: Faults, log_dir: Path
) -> None:
    rng = random.Random(SEED + 1)
    answered: Counter[int] = Counter()
    for field, valid in VALID_UPLOAD.items():
        for value in values(rng, valid or "CX6-0012345", PER_UPLOAD_FIELD):
            params = dict(VALID_UPLOAD, **{field: value})
            if field == "serial":
                params["mac"] = ""
            query = urllib.parse.urlencode(params, encoding="utf-8", errors="surrogatepass")
            url = "/RequestHandlerExt/Files" if field == "user" else UPLOAD
            response = client.post(
                f"{url}?{query}", data=b"log", content_type="application/octet-stream"
            )
            status = response.status_code
            assert status in (201, 400, 401, 403, 415), (SEED, field, value, response.content)
            assert response["Content-Type"] == "text/xml; charset=utf-8"
            answered[status] += 1
        spool_load_once()
    assert (answered[201] > 500, answered[400] > 1000) == (True, True), answered
    assert faults.records == [], (SEED, faults.records[:5])
    assert records_quarantined() == 0
    client_dir = log_dir / "Client"
    stored = sorted(
        str(path.relative_to(client_dir))
        for path in client_dir.rglob("*")
        if path.is_file() and not path.name.startswith(".")
    )
    assert sorted(DeviceLog.objects.values_list("path", flat=True)) == [
        f"Client/{path}" for path in stored
    ]
    for path in stored:
        log_type, device, name = path.split("/")
        assert log_type in ("Watson", "CELog", "Config", "DiagLog")
        assert (device in (".", ".."), name in (".", "..")) == (False, False)
    assert [p for p in log_dir.iterdir() if p.name not in ("Client", ".usage")] == []
