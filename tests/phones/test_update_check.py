"""The update check through the real endpoints: every decision rule of the spec."""

from __future__ import annotations

from typing import Any

import pytest
from django.conf import settings
from django.test import Client
from pytest_django.fixtures import Settings

from phones.decision import decision_tables
from phones.models import Device, RequestAudit
from phones.services.spool_loader import spool_load_once
from portal.models import DeviceUpdateRule, Server, Site, TestDevice
from tests.phones.conftest import stored_version

URL = "/RequestHandler/ucdevice.upx"
A, P, R = "4.0.7577.4387", "4.0.7577.5000", "4.0.7577.4363"


def request_xml(
    *,
    mac: str = "00-04-F2-11-22-33",
    serial: str = "CX6-0012345",
    version: str | None = "4.0.7577.4363",
    extra: str = "",
    modules: str | None = None,
    vendor_tag: str = "Vendor",
) -> bytes:
    if modules is None:
        modules = (
            ""
            if version is None
            else f"<Module><UpdateType>CPE</UpdateType><FileName>CPE.nbt</FileName>"
            f"<Version>{version}</Version><TimeStamp>2026-10-01T08:00:00Z</TimeStamp></Module>"
        )
    return (
        '<?xml version="1.0" encoding="utf-8"?>\n<Request>'
        f"<DeviceType>UCPhone</DeviceType><MACAddress>{mac}</MACAddress>"
        f"<SerialNumber>{serial}</SerialNumber><{vendor_tag}>Polycom</{vendor_tag}>"
        "<Model>CX600</Model><Revision>Rev-1</Revision><Locale>ENU</Locale>"
        f"{extra}<Modules>{modules}</Modules></Request>"
    ).encode()


def check(client: Client, body: bytes, **headers: Any) -> tuple[int, str]:
    response = client.post(URL, data=body, content_type="text/xml", **headers)
    return response.status_code, response.content.decode()


def offer(version: str, *, external: bool = True) -> str:
    folder = f"UCPhone/Polycom/CX600/Rev-1/ENU/{version}/CPE"
    base = f"http://pool01.contoso.com/DeviceUpdateFiles_Int/{folder}"
    ext = f"https://web.contoso.com/DeviceUpdateFiles_Ext/{folder}" if external else ""
    stamp = "<TimeStamp>{stamp}</TimeStamp>"
    return (
        '<?xml version="1.0" encoding="utf-8"?>\n<Response><NumOfFiles>1</NumOfFiles>'
        f"<BaseURL>{base}</BaseURL><ExternalBaseURL>{ext}</ExternalBaseURL><Modules>"
        f"<Module><UpdateType>CPE</UpdateType><Version>{version}</Version>"
        f"<BaseURL>{base}</BaseURL><ExternalBaseURL>{ext}</ExternalBaseURL><Files>"
        "<File><FileName>CPE.nbt</FileName><SignatureFileName>CPE.cat</SignatureFileName>"
        f"<Size>31457280</Size><SHA256>{'C' * 64}</SHA256>{stamp}</File>"
        "</Files></Module></Modules></Response>"
    )


NOTHING = '<?xml version="1.0" encoding="utf-8"?>\n<Response><NumOfFiles>0</NumOfFiles></Response>'


def same_offer(body: str, version: str, *, external: bool = True) -> bool:
    """The body is exactly ``offer(version)`` but for the file's time stamp."""
    import re

    stamp = re.search(r"<TimeStamp>([^<]+)</TimeStamp>", body)
    return stamp is not None and body == offer(version, external=external).format(stamp=stamp[1])


@pytest.mark.django_db
def test_everyone_is_offered_the_approved_version(client: Client, rule: DeviceUpdateRule) -> None:
    status, body = check(client, request_xml())
    assert status == 200
    assert same_offer(body, A)


@pytest.mark.django_db
@pytest.mark.parametrize("installed", [A, "4.0.7577.04387", "04.0.7577.4387"])
def test_a_phone_running_the_target_is_offered_nothing(
    client: Client, rule: DeviceUpdateRule, installed: str
) -> None:
    assert check(client, request_xml(version=installed)) == (200, NOTHING)


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("scope", "kind", "identifier", "request_kwargs"),
    [
        ("global", "MACAddress", "0004F2112233", {}),
        ("global", "SerialNumber", "CX6-0012345", {"mac": ""}),
        ("site", "SerialNumber", "cx6-0012345", {"mac": ""}),
        ("site", "MACAddress", "0004F2112233", {"mac": "00:04:f2:11:22:33"}),
    ],
)
def test_a_test_device_is_offered_the_pending_version(
    client: Client,
    rule: DeviceUpdateRule,
    scope: str,
    kind: str,
    identifier: str,
    request_kwargs: dict[str, str],
) -> None:
    site = rule.pool.site if scope == "site" else None
    TestDevice.objects.create(site=site, name="lab", identifier_type=kind, identifier=identifier)
    status, body = check(client, request_xml(**request_kwargs))
    assert status == 200
    assert same_offer(body, P)


@pytest.mark.django_db
def test_a_test_device_of_another_site_is_an_ordinary_phone(
    client: Client, rule: DeviceUpdateRule
) -> None:
    other = Site.objects.create(name="Paris")
    TestDevice.objects.create(
        site=other, name="lab", identifier_type="MACAddress", identifier="0004F2112233"
    )
    assert same_offer(check(client, request_xml())[1], A)


@pytest.mark.django_db
def test_a_test_device_without_pending_version_gets_the_approved_one(
    client: Client, rule: DeviceUpdateRule
) -> None:
    DeviceUpdateRule.objects.filter(pk=rule.pk).update(pending_version="")
    TestDevice.objects.create(name="lab", identifier_type="MACAddress", identifier="0004F2112233")
    assert same_offer(check(client, request_xml())[1], A)


@pytest.mark.django_db
def test_an_older_target_is_offered_so_a_restore_reaches_the_phones(
    client: Client, rule: DeviceUpdateRule
) -> None:
    DeviceUpdateRule.objects.filter(pk=rule.pk).update(approved_version=R, restore_version="")
    assert same_offer(check(client, request_xml(version=A))[1], R)


@pytest.mark.django_db
def test_no_rule_and_no_approved_version_offer_nothing(
    client: Client, rule: DeviceUpdateRule
) -> None:
    unknown = request_xml().replace(b"CX600", b"CX999")
    assert check(client, unknown) == (200, NOTHING)
    DeviceUpdateRule.objects.filter(pk=rule.pk).update(approved_version="")
    decision_tables.reset()  # a direct update: no service bumped the generation
    assert check(client, request_xml()) == (200, NOTHING)


@pytest.mark.django_db
def test_an_update_type_the_phone_did_not_report_is_offered_too(
    client: Client, rule: DeviceUpdateRule
) -> None:
    assert same_offer(check(client, request_xml(version=None))[1], A)


@pytest.mark.django_db
def test_a_version_not_verified_on_this_server_is_not_offered_and_audited_so(
    client: Client, rule: DeviceUpdateRule, server: Server
) -> None:
    DeviceUpdateRule.objects.filter(pk=rule.pk).update(approved_version="4.0.7577.6000")
    stored_version("4.0.7577.6000", verified_on=None)
    assert check(client, request_xml()) == (200, NOTHING)
    spool_load_once()
    audit = RequestAudit.objects.get()
    assert audit.outcome == "not replicated"
    assert audit.response_modules == [
        {
            "update_type": "CPE",
            "rule": rule.identity,
            "installed": R,
            "target": "4.0.7577.6000",
            "outcome": "not replicated",
            "why": "the approved version 4.0.7577.6000 is not verified on this server yet",
        }
    ]


@pytest.mark.django_db
def test_without_an_external_fqdn_the_external_base_url_is_empty(
    client: Client, rule: DeviceUpdateRule
) -> None:
    rule.pool.external_web_fqdn = ""
    rule.pool.save()
    assert same_offer(check(client, request_xml())[1], A, external=False)


@pytest.mark.django_db
@pytest.mark.parametrize(
    "body",
    [
        request_xml(vendor_tag="Brand"),
        request_xml(vendor_tag="Manufacturer"),
        request_xml()
        .replace(b"<Request>", b'<r:REQUEST xmlns:r="urn:x">')
        .replace(b"</Request>", b"</r:REQUEST>"),
        request_xml(
            modules="<module><filename>CPE.nbt</filename><version>4.0.7577.4363</version></module>"
        ),
        request_xml(extra="<Firmware>whatever</Firmware><UserID>sip:bob@contoso.com</UserID>"),
    ],
    ids=["Brand", "Manufacturer", "namespaces and case", "FileName stem", "unknown elements"],
)
def test_the_parser_is_tolerant(client: Client, rule: DeviceUpdateRule, body: bytes) -> None:
    status, response = check(client, body)
    assert status == 200
    assert same_offer(response, A)


BOMB = (
    b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
    b'<!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]>'
    b"<Request><DeviceType>&lol2;</DeviceType></Request>"
)
EXTERNAL_ENTITY = (
    b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
    b"<Request><DeviceType>&x;</DeviceType></Request>"
)


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("body", "content_type", "status", "code"),
    [
        (b"<Request><DeviceType>UCPhone", "text/xml", 400, "InvalidRequest"),
        (BOMB, "text/xml", 400, "InvalidRequest"),
        (EXTERNAL_ENTITY, "application/xml", 400, "InvalidRequest"),
        (request_xml(mac="", serial=""), "text/xml", 400, "InvalidRequest"),
        (request_xml(version="4.0.x.1"), "text/xml", 400, "InvalidRequest"),
        (request_xml(version="1" * 20), "text/xml", 400, "InvalidRequest"),
        (request_xml(mac="00-04-F2"), "text/xml", 400, "InvalidRequest"),
        (b"\xff\xfe<Request/>", "text/xml", 400, "InvalidRequest"),
        (request_xml(), "application/json", 400, "InvalidRequest"),
        (b"<Response/>", "text/xml", 400, "InvalidRequest"),
        (request_xml(extra="<Pad>" + "x" * 70_000 + "</Pad>"), "text/xml", 413, "TooLarge"),
    ],
    ids=[
        "malformed", "xml bomb", "external entity", "no identity", "bad version",
        "absurd version", "bad MAC", "invalid utf-8", "wrong content type", "not a Request",
        "oversized",
    ],
)  # fmt: skip
def test_bad_requests_get_the_xml_error_and_are_audited_as_refused(
    client: Client,
    rule: DeviceUpdateRule,
    body: bytes,
    content_type: str,
    status: int,
    code: str,
) -> None:
    response = client.post(URL, data=body, content_type=content_type)
    assert response.status_code == status
    assert response["Content-Type"] == "text/xml; charset=utf-8"
    assert response.content.startswith(
        f'<?xml version="1.0" encoding="utf-8"?>\n<Error><Code>{code}</Code><Message>'.encode()
    )
    spool_load_once()
    audit = RequestAudit.objects.get()
    assert (audit.outcome, audit.status) == ("refused", status)
    assert audit.message.startswith(f"{code}: ")
    assert Device.objects.count() == 0


@pytest.mark.django_db
def test_get_is_refused_with_the_xml_error(client: Client) -> None:
    response = client.get(URL)
    assert (response.status_code, response["Content-Type"]) == (400, "text/xml; charset=utf-8")


@pytest.mark.django_db
def test_a_warm_check_makes_no_database_query(
    client: Client,
    rule: DeviceUpdateRule,
    django_assert_num_queries: object,
) -> None:
    check(client, request_xml())  # builds the table
    with django_assert_num_queries(0):  # type: ignore[operator]
        status, body = check(client, request_xml())
    assert status == 200
    assert same_offer(body, A)


@pytest.mark.django_db
def test_an_approve_reaches_the_table_once_the_generation_moves(
    client: Client,
    rule: DeviceUpdateRule,
    settings: Settings,
    django_capture_on_commit_callbacks: object,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from portal.services.audit import Actor
    from portal.services.rules import rule_approve

    monkeypatch.setattr(type(decision_tables), "CHECK_EVERY", 0.0)
    assert same_offer(check(client, request_xml())[1], A)
    with django_capture_on_commit_callbacks(execute=True):  # type: ignore[operator]
        rule_approve(rule=rule, actor=Actor.system("tests"))
    assert same_offer(check(client, request_xml())[1], P)


@pytest.mark.django_db
def test_the_audit_and_the_inventory_are_written_in_a_batch(
    client: Client, rule: DeviceUpdateRule
) -> None:
    TestDevice.objects.create(name="lab", identifier_type="MACAddress", identifier="0004F2112233")
    check(client, request_xml(), REMOTE_ADDR="10.1.2.3")
    check(client, request_xml(version=P), REMOTE_ADDR="10.1.2.4")
    assert RequestAudit.objects.count() == 0  # buffered
    assert spool_load_once() == 2
    assert list(
        RequestAudit.objects.order_by("created_at").values_list("outcome", "client_address")
    ) == [
        ("offered", "10.1.2.3"),
        ("up to date", "10.1.2.4"),
    ]
    device = Device.objects.get()
    assert (
        device.identity, device.mac, device.serial, device.brand, device.model,
        device.installed, device.targets, device.state, device.test_device,
        device.last_address, device.last_channel, device.last_server,
    ) == (
        "MAC:0004F2112233", "0004F2112233", "CX6-0012345", "Polycom", "CX600",
        {"CPE": P}, {"CPE": P}, "up to date", True, "10.1.2.4", "internal",
        settings.SERVER_FQDN,
    )  # fmt: skip
    day = RequestAudit.objects.first().created_at.strftime("%Y%m%d")  # type: ignore[union-attr]
    log = (
        settings.DEVICE_LOG_DIR / "Server" / "Audit" / "ImageUpdates"
        / f"RequestHandlerAuditLog_{settings.SERVER_FQDN}_{day}.log"
    )  # fmt: skip
    lines = log.read_text().splitlines()[-2:]
    fields = lines[0].split(";")
    assert fields[1:9] == [
        "10.1.2.3", "UCPhone", "0004F2112233", "CX6-0012345", "Polycom", "CX600", "Rev-1", "ENU",
    ]  # fmt: skip
    assert fields[9] == f"CPE,CPE.nbt,{R},2026-10-01T08:00:00Z"
    assert fields[10].startswith(f"CPE,CPE.nbt,{P},")
    assert fields[12:] == [settings.SERVER_FQDN, "internal", "offered 200"]


@pytest.mark.django_db
def test_the_loader_takes_its_interval_and_cache_limit_from_the_log_settings() -> None:
    from phones.services.spool_loader import loader_limits
    from portal.services.audit import Actor
    from portal.services.log_config import log_config_set

    log_config_set(
        scope="global",
        values={"log_flush_interval_minutes": 2, "max_log_cache_limit": 4096},
        actor=Actor.system("tests"),
    )
    assert loader_limits() == (120.0, 4096)
