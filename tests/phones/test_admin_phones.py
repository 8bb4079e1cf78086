"""The helpdesk's pages for phones: the request audit and the inventory, read-only for all."""

from __future__ import annotations

import datetime as dt
import uuid
from html.parser import HTMLParser
from typing import Any

import pytest
from django.conf import settings
from django.contrib.auth.models import User
from django.http import StreamingHttpResponse
from django.test import Client
from django.utils.http import urlencode

from phones.decision import decision_tables
from phones.models import Device, RequestAudit
from phones.services.spool_loader import spool_load_once
from portal.admin.audit import BoundedCountPaginator
from portal.models import DeviceUpdateRule, Pool, Server, Site, TestDevice
from portal.services.audit import Actor
from portal.services.rules import rule_approve
from tests.phones.conftest import stored_version
from tests.phones.test_update_check import request_xml

pytestmark = pytest.mark.django_db

URL = "/RequestHandler/ucdevice.upx"
AUDIT = "/admin/phones/requestaudit/"
EXPORT = f"{AUDIT}export.csv"
INVENTORY = "/admin/phones/device/"
A, P, R = "4.0.7577.4387", "4.0.7577.5000", "4.0.7577.4363"
NOON = dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.UTC)
ALICE = "sip:alice@contoso.com"
# The rule fixture as people read it; its identity stays on the cell's title.
RULE_NAME = "Polycom CX600 Rev-1 ENU CPE on localhost"


def phone_checks_in(
    client: Client,
    *,
    mac: str = "00-04-F2-11-22-33",
    serial: str = "CX6-0012345",
    version: str = R,
    user: str = ALICE,
    address: str = "10.1.2.3",
) -> None:
    """A real update check through the internal endpoint (buffered until the flush)."""
    extra = f"<UserID>{user}</UserID>" if user else ""
    body = request_xml(mac=mac, serial=serial, version=version, extra=extra)
    response = client.post(URL, data=body, content_type="text/xml", REMOTE_ADDR=address)
    assert response.status_code == 200


def flush_at(*minutes: int) -> list[RequestAudit]:
    """Write the buffered checks, then pin their times to NOON + ``minutes`` in order."""
    assert spool_load_once() == len(minutes)
    rows = list(RequestAudit.objects.order_by("created_at", "id"))
    for row, minute in zip(rows, minutes, strict=True):
        RequestAudit.objects.filter(pk=row.pk).update(
            created_at=NOON + dt.timedelta(minutes=minute)
        )
        row.refresh_from_db()
    return rows


def audit_row(minute: int, **values: Any) -> RequestAudit:
    """An audit row made directly, for the filters and the history limit."""
    fields: dict[str, Any] = {
        "request_id": uuid.uuid4(),
        "created_at": NOON + dt.timedelta(minutes=minute),
        "server": settings.SERVER_FQDN,
        "channel": "internal",
        "client_address": "10.1.2.3",
        "identity": "MAC:0004F2112233",
        "device_type": "UCPhone",
        "mac": "0004F2112233",
        "serial": "CX6-0012345",
        "vendor": "Polycom",
        "model": "CX600",
        "revision": "Rev-1",
        "locale": "ENU",
        "user": ALICE,
        "outcome": "offered",
        "status": 200,
    }
    fields.update(values)
    return RequestAudit.objects.create(**fields)


def device_row(**values: Any) -> Device:
    """An inventory row made directly, for the filters."""
    fields: dict[str, Any] = {
        "identity": "MAC:0004F2112233",
        "mac": "0004F2112233",
        "serial": "CX6-0012345",
        "device_type": "UCPhone",
        "brand": "Polycom",
        "model": "CX600",
        "revision": "Rev-1",
        "locale": "ENU",
        "installed": {"CPE": R},
        "targets": {"CPE": A},
        "state": "update offered",
        "test_device": False,
        "first_seen": NOON,
        "last_seen": NOON,
        "last_user": ALICE,
        "last_address": "10.1.2.3",
        "last_channel": "internal",
        "last_server": settings.SERVER_FQDN,
    }
    fields.update(values)
    return Device.objects.create(**fields)


class _Tables(HTMLParser):
    """The text of every cell of every row of the tables with a given class."""

    def __init__(self, css_class: str) -> None:
        super().__init__()
        self.css_class = css_class
        self.depth = 0
        self.rows: list[list[str]] = []
        self.cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "table" and (self.depth or dict(attrs).get("class") == self.css_class):
            self.depth += 1
        elif self.depth and tag == "tr":
            self.rows.append([])
        elif self.depth and tag in ("td", "th"):
            self.cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag == "table" and self.depth:
            self.depth -= 1
        elif self.depth and tag in ("td", "th") and self.cell is not None:
            self.rows[-1].append("".join(self.cell).strip())
            self.cell = None

    def handle_data(self, data: str) -> None:
        if self.cell is not None:
            self.cell.append(data)


def table(response: Any, css_class: str) -> list[list[str]]:
    parser = _Tables(css_class)
    parser.feed(response.content.decode())
    return parser.rows


def csv_text(response: Any) -> str:
    assert isinstance(response, StreamingHttpResponse)
    return b"".join(response.streaming_content).decode()  # type: ignore[arg-type]


def inventory_page(client: Client) -> Any:
    response = client.get(f"{INVENTORY}{Device.objects.get().pk}/change/")
    assert response.status_code == 200
    return response


WHAT_IF_HEADINGS = [
    "update type",
    "installed",
    "rule",
    "target",
    "test device",
    "verified on this server",
    "outcome",
    "why",
]

# --- the request audit -----------------------------------------------------------------


def test_audit_list_shows_every_check_with_a_bounded_count(
    client: Client, rule: DeviceUpdateRule, helpdesk: User
) -> None:
    phone_checks_in(client)
    phone_checks_in(client, mac="00-04-F2-AA-BB-CC", serial="CX6-0099999", version=A, user="")
    flush_at(0, 1)
    client.force_login(helpdesk)

    response = client.get(AUDIT)

    assert response.status_code == 200
    changelist = response.context["cl"]
    assert list(changelist.list_display) == [
        "time",
        "server",
        "channel",
        "client_address",
        "mac",
        "serial",
        "user",
        "model",
        "outcome",
        "status",
    ]
    assert changelist.show_full_result_count is False
    assert isinstance(changelist.paginator, BoundedCountPaginator)
    assert [
        (row.mac, row.serial, row.user, row.outcome, row.status) for row in changelist.result_list
    ] == [
        ("0004F2AABBCC", "CX6-0099999", "", "up to date", 200),
        ("0004F2112233", "CX6-0012345", ALICE, "offered", 200),
    ]
    page = response.content.decode()
    assert "2026-03-01 12:01:00" in page
    assert f'href="{EXPORT}?"' in page
    assert "2 request audit" in page


def test_audit_list_never_counts_more_than_the_bound(client: Client, administrator: User) -> None:
    for minute in range(3):
        audit_row(minute)
    client.force_login(administrator)

    original = BoundedCountPaginator.limit
    BoundedCountPaginator.limit = 2
    try:
        response = client.get(AUDIT)
    finally:
        BoundedCountPaginator.limit = original

    assert response.context["cl"].result_count == 2
    assert "2+ request audit (filter by date to see older ones)" in response.content.decode()


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("outcome__exact=offered", ["CX6-0012345"]),
        ("outcome__exact=refused", ["(refused)"]),
        ("server=fe02.contoso.com", ["CX7-0000001"]),
        ("channel__exact=external", ["CX7-0000001"]),
        ("model=CX700", ["CX7-0000001"]),
        ("test_device__exact=1", ["CX7-0000001"]),
        ("created_at__year=2026&created_at__month=3&created_at__day=2", ["(refused)"]),
        ("created_at__year=2026&created_at__month=3&created_at__day=1",
         ["CX7-0000001", "CX6-0012345"]),
        ("created_at__year=2025", []),
        ("q=cx7", ["CX7-0000001"]),
        ("q=alice", ["CX6-0012345"]),
        ("q=00:04:f2:aa:bb:cc", ["CX7-0000001"]),
    ],
)  # fmt: skip
def test_audit_list_filters(
    client: Client, pool: Pool, administrator: User, query: str, expected: list[str]
) -> None:
    Server.objects.create(pool=pool, fqdn="fe02.contoso.com")
    audit_row(0)
    audit_row(
        1,
        server="fe02.contoso.com",
        channel="external",
        identity="MAC:0004F2AABBCC",
        mac="0004F2AABBCC",
        serial="CX7-0000001",
        model="CX700",
        user="sip:bob@contoso.com",
        test_device=True,
        outcome="up to date",
    )
    audit_row(
        24 * 60,
        identity="",
        mac="",
        serial="",
        device_type="",
        vendor="",
        model="",
        revision="",
        locale="",
        user="",
        outcome="refused",
        status=400,
        message="InvalidRequest: malformed XML",
    )
    client.force_login(administrator)

    response = client.get(f"{AUDIT}?{query}")

    assert response.status_code == 200
    assert [row.serial or "(refused)" for row in response.context["cl"].result_list] == expected


@pytest.mark.parametrize("term", ["00-04-F2-11-22-33", "00:04:f2:11:22:33", "0004f2112233"])
def test_a_mac_in_any_form_finds_the_same_checks_and_device(
    client: Client, rule: DeviceUpdateRule, helpdesk: User, term: str
) -> None:
    phone_checks_in(client)
    phone_checks_in(client, version=A)
    phone_checks_in(client, mac="00-04-F2-AA-BB-CC", serial="CX6-0099999")
    flush_at(0, 1, 2)
    client.force_login(helpdesk)

    checks = client.get(AUDIT, {"q": term}).context["cl"].result_list
    devices = client.get(INVENTORY, {"q": term}).context["cl"].result_list

    assert [(row.mac, row.outcome) for row in checks] == [
        ("0004F2112233", "up to date"),
        ("0004F2112233", "offered"),
    ]
    assert [device.identity for device in devices] == ["MAC:0004F2112233"]


def test_audit_detail_shows_request_and_response_modules_with_why(
    client: Client, rule: DeviceUpdateRule, helpdesk: User
) -> None:
    phone_checks_in(client)
    (row,) = flush_at(0)
    client.force_login(helpdesk)

    response = client.get(f"{AUDIT}{row.pk}/change/")

    assert response.status_code == 200
    assert table(response, "modules") == [
        ["update type", "file", "version"],
        ["CPE", "CPE.nbt", R],
        ["update type", "installed", "target", "outcome", "why"],
        ["CPE", R, A, "update offered", "offered the approved version"],
    ]
    page = response.content.decode()
    assert 'name="_save"' not in page
    assert "MAC:0004F2112233" in page


def test_csv_export_has_every_column_of_the_filtered_rows(
    client: Client, rule: DeviceUpdateRule, helpdesk: User
) -> None:
    phone_checks_in(client)
    # A serial and a user a spreadsheet would run as formulas.
    phone_checks_in(client, mac="", serial="-99", version=A, user="@evil", address="10.1.2.4")
    first, second = flush_at(0, 1)
    client.force_login(helpdesk)
    server = settings.SERVER_FQDN

    everything = client.get(EXPORT)
    offered = client.get(f"{EXPORT}?outcome__exact=offered")

    assert everything.status_code == 200
    assert everything["Content-Type"] == "text/csv; charset=utf-8"
    assert everything["Content-Disposition"] == 'attachment; filename="request-audit.csv"'
    header = (
        "id,time,server,channel,client_address,identity,device_type,mac,serial,vendor,model,"
        "revision,locale,user,test_device,outcome,status,message,request_modules,"
        "response_modules\r\n"
    )
    second_line = (
        f"{second.pk},2026-03-01T12:01:00+00:00,{server},internal,10.1.2.4,SN:-99,UCPhone,,"
        "'-99,Polycom,CX600,Rev-1,ENU,'@evil,no,up to date,200,,"
        f'"[{{""file"": ""CPE.nbt"", ""update_type"": ""CPE"", ""version"": ""{A}""}}]",'
        f'"[{{""installed"": ""{A}"", ""outcome"": ""up to date"", ""rule"": ""{rule.identity}"", '
        f'""target"": ""{A}"", ""update_type"": ""CPE"", '
        '""why"": ""runs the approved version""}]"\r\n'
    )
    first_line = (
        f"{first.pk},2026-03-01T12:00:00+00:00,{server},internal,10.1.2.3,MAC:0004F2112233,"
        f"UCPhone,0004F2112233,CX6-0012345,Polycom,CX600,Rev-1,ENU,{ALICE},no,offered,200,,"
        f'"[{{""file"": ""CPE.nbt"", ""update_type"": ""CPE"", ""version"": ""{R}""}}]",'
        f'"[{{""installed"": ""{R}"", ""outcome"": ""offered"", ""rule"": ""{rule.identity}"", '
        f'""target"": ""{A}"", ""update_type"": ""CPE"", '
        '""why"": ""offered the approved version""}]"\r\n'
    )
    assert csv_text(everything) == header + second_line + first_line
    assert csv_text(offered) == header + first_line


def test_csv_export_with_a_bad_filter_goes_back_to_the_list(
    client: Client, administrator: User
) -> None:
    client.force_login(administrator)

    response = client.get(f"{EXPORT}?no_such_field=1")

    assert (response.status_code, response["Location"]) == (302, f"{AUDIT}?e=1")


# --- the inventory ---------------------------------------------------------------------


def test_inventory_list_shows_every_phone_with_its_versions(
    client: Client, rule: DeviceUpdateRule, helpdesk: User
) -> None:
    phone_checks_in(client)
    flush_at(0)
    client.force_login(helpdesk)

    response = client.get(INVENTORY)

    assert response.status_code == 200
    changelist = response.context["cl"]
    # phone, model, version, state, last seen, server; the rest on the phone's page.
    assert list(changelist.list_display) == [
        "phone",
        "phone_model",
        "installed_versions",
        "state",
        "last_seen",
        "last_server",
    ]
    assert changelist.show_full_result_count is False
    assert isinstance(changelist.paginator, BoundedCountPaginator)
    assert [d.identity for d in changelist.result_list] == ["MAC:0004F2112233"]
    page = response.content.decode()
    assert f'<td class="field-installed_versions">CPE {R}</td>' in page
    assert '<td class="field-state">update offered</td>' in page
    device = changelist.result_list[0]
    detail = client.get(f"{INVENTORY}{device.pk}/change/").content.decode()
    assert f"CPE {A}" in detail  # the target, on the phone's page
    assert "internal" in detail  # the last channel, on the phone's page


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("brand=Yealink", ["SN:T58-1"]),
        ("model=CX600", ["MAC:0004F2112233"]),
        ("state__exact=up+to+date", ["SN:T58-1"]),
        ("test_device__exact=1", ["SN:T58-1"]),
        ("last_channel__exact=external", ["SN:T58-1"]),
        # As the "last seen" filter links them: aware midnights.
        (urlencode({"last_seen__gte": "2026-03-02 00:00:00+00:00",
                    "last_seen__lt": "2026-03-03 00:00:00+00:00"}), ["SN:T58-1"]),
        (urlencode({"last_seen__gte": "2026-03-01 00:00:00+00:00",
                    "last_seen__lt": "2026-03-02 00:00:00+00:00"}), ["MAC:0004F2112233"]),
        ("q=t58", ["SN:T58-1"]),
        ("q=alice", ["MAC:0004F2112233"]),
        (f"version={R}", ["MAC:0004F2112233"]),
        ("version=4.0.7577.43630", ["SN:T58-1"]),
        ("site=Default", ["MAC:0004F2112233"]),
        ("site=Paris", ["SN:T58-1"]),
    ],
)  # fmt: skip
def test_inventory_filters(
    client: Client, administrator: User, query: str, expected: list[str]
) -> None:
    device_row()
    device_row(
        identity="SN:T58-1",
        mac="",
        serial="T58-1",
        brand="Yealink",
        model="T58",
        state="up to date",
        test_device=True,
        last_seen=NOON + dt.timedelta(days=1),
        last_user="sip:bob@contoso.com",
        last_channel="external",
        installed={"CPE": "4.0.7577.43630"},
        last_server="fe-paris.example.org",
    )
    paris = Site.objects.create(name="Paris")
    pool = Pool.objects.create(
        site=paris, fqdn="pool-paris.example.org", internal_web_fqdn="pool-paris.example.org"
    )
    Server.objects.create(pool=pool, fqdn="fe-paris.example.org")
    client.force_login(administrator)

    response = client.get(f"{INVENTORY}?{query}")

    assert response.status_code == 200
    assert [device.identity for device in response.context["cl"].result_list] == expected


def test_inventory_version_filter_lists_every_version_phones_run_and_every_stored_one(
    client: Client, administrator: User
) -> None:
    device_row()  # runs R, which is not stored
    device_row(identity="SN:T58-1", mac="", serial="T58-1", installed={"CPE": "4.0.7577.43630"})
    device_row(identity="SN:T58-2", mac="", serial="T58-2", installed={"CPE": "4.0.7577.43630"})
    device_row(identity="SN:T58-3", mac="", serial="T58-3", installed={})
    device_row(identity="SN:T58-4", mac="", serial="T58-4", installed={"CPE": R, "UCS": "10.0.2.1"})
    stored_version("4.0.7577.9000", verified_on=None)  # stored, no phone runs it yet
    client.force_login(administrator)

    response = client.get(INVENTORY)

    version_filter = next(
        spec for spec in response.context["cl"].filter_specs if spec.title == "installed version"
    )
    assert [value for value, _ in version_filter.lookup_choices] == sorted(
        {R, "4.0.7577.43630", "10.0.2.1", "4.0.7577.9000"},
        key=lambda version: tuple(int(part) for part in version.split(".")),
    )


def test_device_page_shows_its_history_and_what_it_would_get(
    client: Client, rule: DeviceUpdateRule, helpdesk: User
) -> None:
    phone_checks_in(client)
    phone_checks_in(client, version=A, address="10.1.2.4")
    flush_at(0, 1)
    client.force_login(helpdesk)
    server = settings.SERVER_FQDN

    response = inventory_page(client)

    assert table(response, "history") == [
        ["time", "server", "channel", "client address", "user", "installed", "outcome"]
        + ["status", "why"],
        ["2026-03-01 12:01:00", server, "internal", "10.1.2.4", ALICE, f"CPE {A}", "up to date"]
        + ["200", "CPE: runs the approved version"],
        ["2026-03-01 12:00:00", server, "internal", "10.1.2.3", ALICE, f"CPE {R}"]
        + ["update offered", "200", "CPE: offered the approved version"],
    ]
    assert table(response, "what-if") == [
        WHAT_IF_HEADINGS,
        ["CPE", A, RULE_NAME, A, "no", "yes", "up to date", "runs the approved version"],
    ]
    page = response.content.decode()
    assert page.count(f'<td title="{rule.identity}">{RULE_NAME}</td>') == 1
    assert "What would this phone get, and why?" in page
    assert f"Asked now of {server} with the versions the phone last reported." in page
    assert 'href="/admin/phones/requestaudit/?identity=MAC%3A0004F2112233"' in page
    assert 'name="_save"' not in page


def test_device_history_shows_the_latest_fifty_checks_of_this_phone_only(
    client: Client, rule: DeviceUpdateRule, helpdesk: User
) -> None:
    phone_checks_in(client)
    flush_at(0)
    for minute in range(1, 53):
        audit_row(minute, client_address=f"10.0.0.{minute}")
    audit_row(60, identity="MAC:0004F2AABBCC", mac="0004F2AABBCC", client_address="10.9.9.9")
    client.force_login(helpdesk)

    rows = table(inventory_page(client), "history")[1:]

    assert [row[3] for row in rows] == [f"10.0.0.{minute}" for minute in range(52, 2, -1)]


def test_what_if_says_the_new_target_once_the_pending_version_is_approved(
    client: Client,
    rule: DeviceUpdateRule,
    helpdesk: User,
    django_capture_on_commit_callbacks: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(type(decision_tables), "CHECK_EVERY", 0.0)
    phone_checks_in(client)
    flush_at(0)
    client.force_login(helpdesk)
    before = table(inventory_page(client), "what-if")[1:]

    with django_capture_on_commit_callbacks(execute=True):
        rule_approve(rule=rule, actor=Actor.system("tests"))
    response = inventory_page(client)

    assert before == [
        ["CPE", R, RULE_NAME, A, "no", "yes", "update offered", "offered the approved version"]
    ]
    assert table(response, "what-if")[1:] == [
        ["CPE", R, RULE_NAME, P, "no", "yes", "update offered", "offered the approved version"]
    ]
    # The stored target is the one of its last check-in; the what-if is live.
    assert f'<div class="readonly">CPE {A}</div>' in response.content.decode()


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (
            "test device",
            [P, "yes", "yes", "update offered", "offered the pending (test device) version"],
        ),
        (
            "not verified",
            ["4.0.7577.6000", "no", "no", "not yet on this server",
             "the approved version 4.0.7577.6000 is not verified on this server yet"],
        ),
        ("no approved version", ["", "no", "-", "up to date", "the rule has no approved version"]),
    ],
)  # fmt: skip
def test_what_if_explains_each_case(
    client: Client,
    rule: DeviceUpdateRule,
    server: Server,
    helpdesk: User,
    change: str,
    expected: list[str],
) -> None:
    phone_checks_in(client)
    flush_at(0)
    if change == "test device":
        TestDevice.objects.create(
            name="lab", identifier_type="MACAddress", identifier="0004F2112233"
        )
    elif change == "not verified":
        stored_version("4.0.7577.6000", verified_on=None)
        DeviceUpdateRule.objects.filter(pk=rule.pk).update(approved_version="4.0.7577.6000")
    else:
        DeviceUpdateRule.objects.filter(pk=rule.pk).update(approved_version="")
    decision_tables.reset()  # direct changes: no service moved the generation
    client.force_login(helpdesk)

    rows = table(inventory_page(client), "what-if")[1:]

    assert rows == [["CPE", R, RULE_NAME, *expected]]


def test_what_if_without_a_rule_says_so(
    client: Client, rule: DeviceUpdateRule, helpdesk: User
) -> None:
    phone_checks_in(client)
    flush_at(0)
    DeviceUpdateRule.objects.filter(pk=rule.pk).delete()
    decision_tables.reset()
    client.force_login(helpdesk)

    rows = table(inventory_page(client), "what-if")[1:]

    assert rows == [["CPE", R, "", "", "no", "-", "no rule for its class", "no rule"]]


def test_what_if_on_a_server_outside_the_topology_offers_nothing(
    client: Client, rule: DeviceUpdateRule, helpdesk: User, settings: Any
) -> None:
    phone_checks_in(client)
    flush_at(0)
    settings.SERVER_FQDN = "stranger.contoso.com"
    client.force_login(helpdesk)

    response = inventory_page(client)

    assert table(response, "what-if") == []
    assert (
        "This server (stranger.contoso.com) is not in the topology: it would offer nothing."
        in response.content.decode()
    )


# --- read-only and access --------------------------------------------------------------


def _snapshot() -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    return (
        list(RequestAudit.objects.values_list("id", "outcome", "user", "serial")),
        list(Device.objects.values_list("id", "state", "last_user", "serial")),
    )


@pytest.mark.parametrize("who", ["administrator", "helpdesk", "superuser"])
def test_nobody_adds_changes_or_deletes_a_check_or_a_device(
    client: Client, rule: DeviceUpdateRule, request: pytest.FixtureRequest, who: str
) -> None:
    phone_checks_in(client)
    (row,) = flush_at(0)
    device = Device.objects.get()
    before = _snapshot()
    if who == "superuser":
        user = User.objects.create_superuser("root", password="correct horse battery")
    else:
        user = request.getfixturevalue(who)
    client.force_login(user)

    for base, pk, data in [
        (AUDIT, row.pk, {"user": "sip:mallory@contoso.com", "outcome": "refused"}),
        (INVENTORY, device.pk, {"last_user": "sip:mallory@contoso.com", "state": "no rule"}),
    ]:
        assert client.get(f"{base}add/").status_code == 403
        assert client.post(f"{base}add/", data).status_code == 403
        assert client.post(f"{base}{pk}/change/", data).status_code == 403
        assert client.get(f"{base}{pk}/delete/").status_code == 403
        assert client.post(f"{base}{pk}/delete/", {"post": "yes"}).status_code == 403
        listing = client.post(base, {"action": "delete_selected", "_selected_action": [pk]})
        assert listing.status_code == 200
        assert listing.context["action_form"] is None
        page = client.get(f"{base}{pk}/change/")
        assert page.status_code == 200
        assert 'name="_save"' not in page.content.decode()

    assert _snapshot() == before


USERS = ["administrator", "helpdesk", "anonymous"]
# (page, method, path template) -> status for administrator and helpdesk; anonymous
# always gets the login page.
PAGES: list[tuple[str, str, str, int]] = [
    ("phones index", "get", "/admin/phones/", 200),
    ("audit list", "get", AUDIT, 200),
    ("audit export", "get", EXPORT, 200),
    ("audit detail", "get", f"{AUDIT}{{audit}}/change/", 200),
    ("audit add", "get", f"{AUDIT}add/", 403),
    ("audit change post", "post", f"{AUDIT}{{audit}}/change/", 403),
    ("audit delete", "get", f"{AUDIT}{{audit}}/delete/", 403),
    ("audit delete post", "post", f"{AUDIT}{{audit}}/delete/", 403),
    ("inventory list", "get", INVENTORY, 200),
    ("device page", "get", f"{INVENTORY}{{device}}/change/", 200),
    ("device add", "get", f"{INVENTORY}add/", 403),
    ("device change post", "post", f"{INVENTORY}{{device}}/change/", 403),
    ("device delete", "get", f"{INVENTORY}{{device}}/delete/", 403),
    ("device delete post", "post", f"{INVENTORY}{{device}}/delete/", 403),
]


@pytest.mark.parametrize("user", USERS)
@pytest.mark.parametrize(
    ("method", "template", "expected"),
    [pytest.param(method, path, expected, id=page) for page, method, path, expected in PAGES],
)
def test_page_access(
    client: Client,
    rule: DeviceUpdateRule,
    request: pytest.FixtureRequest,
    user: str,
    method: str,
    template: str,
    expected: int,
) -> None:
    phone_checks_in(client)
    (row,) = flush_at(0)
    path = template.format(audit=row.pk, device=Device.objects.get().pk)
    before = _snapshot()
    if user != "anonymous":
        client.force_login(request.getfixturevalue(user))

    response = getattr(client, method)(path, {"post": "yes"} if method == "post" else None)

    if user == "anonymous":
        assert (response.status_code, response["Location"]) == (302, f"/admin/login/?next={path}")
    else:
        assert response.status_code == expected
    assert _snapshot() == before


def test_a_staff_user_without_a_role_sees_neither_page(
    client: Client, rule: DeviceUpdateRule
) -> None:
    phone_checks_in(client)
    (row,) = flush_at(0)
    nobody = User.objects.create_user("nobody", password="correct horse battery", is_staff=True)
    client.force_login(nobody)

    statuses = [
        client.get(path).status_code
        for path in (AUDIT, EXPORT, f"{AUDIT}{row.pk}/change/", INVENTORY)
        + (f"{INVENTORY}{Device.objects.get().pk}/change/",)
    ]

    assert statuses == [403, 403, 403, 403, 403]
