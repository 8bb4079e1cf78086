"""The update check reader: the text ElementTree would give each field the protocol
reads, and nothing of what it ignores; DTDs and entities refused before expansion."""

from __future__ import annotations

import pytest

from phones.choices import PhoneError
from phones.protocol import MAX_MODULES, Module, ProtocolError, parse_update_check

HEAD = b'<?xml version="1.0" encoding="utf-8"?>\n'


def request(inner: bytes) -> bytes:
    return (
        HEAD
        + b"<Request><DeviceType>UCPhone</DeviceType><MACAddress>0004F2000001</MACAddress>"
        + inner
        + b"</Request>"
    )  # noqa: E501


def module(version: bytes, update_type: bytes = b"CPE") -> bytes:
    return (
        b"<Module><UpdateType>"
        + update_type
        + b"</UpdateType><Version>"
        + version
        + b"</Version></Module>"
    )  # noqa: E501


def test_a_field_is_its_text_before_any_child_and_its_first_occurrence_counts() -> None:
    check = parse_update_check(
        request(
            b"<Model> CX600 <Ignored>CX700</Ignored>tail</Model><Model>CX800</Model>"
            b"<Locale><![CDATA[ENU]]></Locale><Revision>Rev&#45;1 &amp; 2</Revision>"
        )
    )
    assert (check.model, check.locale, check.revision) == ("CX600", "ENU", "Rev-1 & 2")


def test_only_the_first_modules_and_its_module_children_count() -> None:
    check = parse_update_check(
        request(
            b"<Modules>" + module(b"1.0") + b"<Other>" + module(b"9.9", b"X") + b"</Other>"
            + module(b"2.0", b"UCA") + b"</Modules><Modules>" + module(b"3.0", b"Y") + b"</Modules>"
        )
    )  # fmt: skip
    assert check.modules == (Module("CPE", "", "1.0", ""), Module("UCA", "", "2.0", ""))


def test_a_modules_first_field_of_each_name_counts_at_its_own_level_only() -> None:
    check = parse_update_check(
        request(
            b"<Modules><Module><UpdateType>CPE</UpdateType><Version>1.0</Version>"
            b"<Version>2.0</Version><Deep><Version>3.0</Version></Deep></Module></Modules>"
        )
    )
    assert check.modules == (Module("CPE", "", "1.0", ""),)


def test_one_module_past_the_limit_is_refused() -> None:
    allowed = request(b"<Modules>" + module(b"1.0") * MAX_MODULES + b"</Modules>")
    assert len(parse_update_check(allowed).modules) == MAX_MODULES
    with pytest.raises(ProtocolError) as refused:
        parse_update_check(
            request(b"<Modules>" + module(b"1.0") * (MAX_MODULES + 1) + b"</Modules>")
        )  # noqa: E501
    assert refused.value.message == f"more than {MAX_MODULES} modules"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            b'<!DOCTYPE r [<!ENTITY a "aaaa">]><Request><DeviceType>&a;</DeviceType></Request>',
            "malformed XML: DTDForbidden(name='r', system_id=None, public_id=None)",
        ),
        (
            b'<!DOCTYPE r SYSTEM "http://example.org/r.dtd"><Request/>',
            "malformed XML: DTDForbidden(name='r', system_id=None, public_id=None)",
        ),
        (
            b"<Request><DeviceType>&x;</DeviceType></Request>",
            "malformed XML: undefined entity: line 1, column 21",
        ),
        (b"<Request><DeviceType>UCPhone", "malformed XML: no element found: line 1, column 28"),
        (b"<x:Request/>", "malformed XML: unbound prefix: line 1, column 0"),
        (request(b"<Model>a\x01b</Model>"), "malformed XML: not well-formed (invalid token): line 2, column 86"),  # noqa: E501
        (request(b"<Model>a&#9;b</Model>"), "Model contains control characters: 'a\\tb'"),
        (request(b"<Model>" + b"m" * 65 + b"</Model>"), f"Model is longer than 64 characters: '{'m' * 64}'..."),  # noqa: E501
        (b"<Response><DeviceType>UCPhone</DeviceType></Response>", "the document is not a <Request>"),  # noqa: E501
    ],
    ids=["internal DTD", "external DTD", "undefined entity", "truncated", "unbound prefix",
         "control byte", "control character reference", "long field", "not a request"],
)  # fmt: skip
def test_refusals_name_the_problem(body: bytes, message: str) -> None:
    with pytest.raises(ProtocolError) as refused:
        parse_update_check(body)
    assert (refused.value.code, refused.value.message) == (PhoneError.INVALID_REQUEST, message)
