"""A phone's inventory page, "Rollouts and controls": what it was seen doing with each
version offered, and its holds and pins, which administrators set and lift per rule of
its class through the fleet services (each confirmed); the helpdesk only looks."""

from __future__ import annotations

import datetime as dt
import uuid
from html.parser import HTMLParser
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.contrib.messages import get_messages
from django.test import Client
from django.utils import timezone

from phones.models import Device, DeviceOutcome
from portal.choices import DeviceControlKind
from portal.models import AuditEntry, DeviceControl, DeviceUpdateRule, Pool
from portal.services.audit import Actor
from portal.services.fleet import device_hold, device_pin
from tests.phones.conftest import CLASS

pytestmark = pytest.mark.django_db

INVENTORY = "/admin/phones/device/"
IDENTITY = "MAC:0004F2112233"
A, P, R = "4.0.7577.4387", "4.0.7577.5000", "4.0.7577.4363"
NOON = dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.UTC)
SETUP = Actor.system("setup")
# The rule fixture as people read it; its identity stays on the link's title.
RULE_NAME = "Polycom CX600 Rev-1 ENU CPE on localhost"


@pytest.fixture
def phone(rule: DeviceUpdateRule) -> Device:
    """A CX600 that runs the restore version (its class spelled in other cases)."""
    return Device.objects.create(
        identity=IDENTITY,
        mac="0004F2112233",
        serial="CX6-0012345",
        device_type="ucphone",
        brand="POLYCOM",
        model="cx600",
        revision="Rev-1",
        locale="ENU",
        installed={"CPE": R},
        targets={"CPE": A},
        state="update offered",
        first_seen=NOON,
        last_seen=NOON,
        last_channel="internal",
        last_server="fe01.example.org",
    )


@pytest.fixture
def other_rule(pool: Pool) -> DeviceUpdateRule:
    """A rule of another class: never offered on this phone's page."""
    return DeviceUpdateRule.objects.create(
        pool=pool,
        rule_id=uuid.UUID("7f3c1d2e-4b5a-4c6d-8e9f-0a1b2c3d4e5f"),
        update_type="CPE",
        approved_version="5.0",
        **{**CLASS, "model": "CX700"},
    )


def page_of(device: Device) -> str:
    return f"{INVENTORY}{device.pk}/change/"


def control_url(device: Device) -> str:
    return f"{INVENTORY}{device.pk}/control/"


def messages_of(response: Any) -> list[tuple[str, str]]:
    request = getattr(response, "wsgi_request")  # noqa: B009 - set by the test client
    return [(message.level_tag, message.message) for message in get_messages(request)]


def controls() -> list[tuple[str, str, str, str]]:
    return list(
        DeviceControl.objects.order_by("pk").values_list(
            "identity", "kind", "version", "actor_name"
        )
    )


def changes_by_hand() -> list[tuple[str, str, dict[str, Any]]]:
    return list(
        AuditEntry.objects.exclude(actor_name="setup")
        .order_by("id")
        .values_list("action", "actor_name", "changes")
    )


class _Table(HTMLParser):
    """The cells of the table with the given id, row by row (text only)."""

    def __init__(self, table_id: str) -> None:
        super().__init__()
        self.table_id = table_id
        self.rows: list[list[str]] = []
        self._inside = False
        self._cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "table" and dict(attrs).get("id") == self.table_id:
            self._inside = True
        elif self._inside and tag == "tr":
            self.rows.append([])
        elif self._inside and tag in ("td", "th"):
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag == "table":
            self._inside = False
        elif self._inside and tag in ("td", "th") and self._cell is not None:
            self.rows[-1].append(" ".join("".join(self._cell).split()))
            self._cell = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)


def table(response: Any, table_id: str) -> list[list[str]]:
    parser = _Table(table_id)
    parser.feed(response.content.decode())
    return parser.rows


CONTROL_HEADINGS = ["rule", "update type", "approved", "pending", "this phone"]


def test_the_page_lists_each_rule_of_the_phone_class_with_its_control(
    client: Client, phone: Device, rule: DeviceUpdateRule, other_rule: DeviceUpdateRule,
    helpdesk: User,
) -> None:  # fmt: skip
    device_pin(identity=IDENTITY, rule=rule, version=R, actor=SETUP)
    client.force_login(helpdesk)

    response = client.get(page_of(phone))

    assert response.status_code == 200
    assert table(response, "device-controls") == [
        CONTROL_HEADINGS,
        [RULE_NAME, "CPE", A, P, f"pinned to {R} by setup"],
    ]
    assert response.context["can_control"] is False
    page = response.content.decode()
    rule_url = f"/admin/portal/deviceupdaterule/{rule.pk}/change/"
    assert page.count(f'<a href="{rule_url}" title="{rule.identity}">{RULE_NAME}</a>') == 1
    assert "control-hold-" not in page
    assert "Release…" not in page


def test_administrators_get_hold_pin_and_release_buttons(
    client: Client, phone: Device, rule: DeviceUpdateRule, administrator: User
) -> None:
    client.force_login(administrator)

    response = client.get(page_of(phone))

    assert table(response, "device-controls") == [
        [*CONTROL_HEADINGS, ""],
        [RULE_NAME, "CPE", A, P, "follows the rule", f"Hold… {P}{A}{R} Pin…"],
    ]
    assert [line["versions"] for line in response.context["control_lines"]] == [[P, A, R]]
    page = response.content.decode()
    for action in ("hold", "pin", "release"):
        assert (
            f'<form method="post" action="{control_url(phone)}" id="control-{action}-{rule.pk}"'
            in page
        )
    assert f'<button type="submit" form="control-hold-{rule.pk}">Hold…</button>' in page
    assert "Release…" not in page  # nothing to release yet


def test_observed_outcomes_are_listed_newest_first(
    client: Client, phone: Device, rule: DeviceUpdateRule, helpdesk: User
) -> None:
    common = {"identity": IDENTITY, "rule": rule, "offered_first": NOON}
    DeviceOutcome.objects.create(
        **common, version=A, state="running", offered_last=NOON, offered_count=1,
        downloaded_at=NOON + dt.timedelta(minutes=2), running_at=NOON + dt.timedelta(hours=1),
        updated_at=NOON,
    )  # fmt: skip
    DeviceOutcome.objects.create(
        **common, version=P, state="failed", offered_last=NOON + dt.timedelta(hours=3),
        offered_count=4, failed_at=NOON + dt.timedelta(hours=4),
        failure="still reports 4.0.7577.4387 after the offer",
        updated_at=NOON + dt.timedelta(hours=4),
    )  # fmt: skip
    DeviceOutcome.objects.create(
        identity="MAC:0004F2AABBCC", rule=rule, version=P, state="running", updated_at=NOON
    )
    client.force_login(helpdesk)

    response = client.get(page_of(phone))

    assert timezone.get_current_timezone_name() == "UTC"
    assert table(response, "device-outcomes") == [
        ["rule", "version", "state", "first offered", "last offered", "offers", "downloaded"]
        + ["running", "failed", "why failed"],
        [RULE_NAME, P, "failed", "2026-03-01 12:00", "2026-03-01 15:00", "4", "", ""]
        + ["2026-03-01 16:00", "still reports 4.0.7577.4387 after the offer"],
        [RULE_NAME, A, "running", "2026-03-01 12:00", "2026-03-01 12:00", "1"]
        + ["2026-03-01 12:02", "2026-03-01 13:00", "", ""],
    ]
    # Each line's rule by name, its identity on the link's title (the two lines here and
    # the rule's line of the controls table above).
    rule_url = f"/admin/portal/deviceupdaterule/{rule.pk}/change/"
    rule_link = f'<a href="{rule_url}" title="{rule.identity}">{RULE_NAME}</a>'
    assert response.content.decode().count(rule_link) == 3


def test_a_phone_never_observed_says_so(client: Client, phone: Device, helpdesk: User) -> None:
    client.force_login(helpdesk)

    response = client.get(page_of(phone))

    assert response.context["outcome_lines"] == []
    assert "Nothing observed yet" in response.content.decode()


# action, version sent, what reaches the phone, message, control after, audit
CONTROLS: list[tuple[str, str, str, str, tuple[str, str] | None, str]] = [
    (
        "hold",
        "",
        f"{IDENTITY} is offered nothing for {{rule}} until released, whatever the rule, a "
        "rollout or a test device entry say; it keeps what it runs.",
        f"{IDENTITY} held for {{rule}}",
        ("hold", ""),
        "portal.device.held",
    ),
    (
        "pin",
        R,
        f"{IDENTITY} is offered {R} for {{rule}} until released, whatever the rule says "
        f"(approved {A}, pending {P}).",
        f"{IDENTITY} pinned to {R} for {{rule}}",
        ("pin", R),
        "portal.device.pinned",
    ),
]


@pytest.mark.parametrize(("action", "version", "effect", "message", "after", "code"), CONTROLS)
def test_hold_or_pin_is_confirmed_then_made_through_the_service(
    client: Client,
    phone: Device,
    rule: DeviceUpdateRule,
    administrator: User,
    action: str,
    version: str,
    effect: str,
    message: str,
    after: tuple[str, str],
    code: str,
) -> None:
    client.force_login(administrator)
    form = {"rule": str(rule.pk), "action": action, "version": version}

    confirmation = client.post(control_url(phone), form)

    assert confirmation.status_code == 200
    assert confirmation.context["effect"] == effect.format(rule=RULE_NAME)
    assert controls() == []
    assert changes_by_hand() == []

    response = client.post(control_url(phone), {**form, "post": "yes"})

    assert response.status_code == 302
    assert response["Location"] == page_of(phone)
    assert messages_of(response) == [("success", message.format(rule=RULE_NAME))]
    assert controls() == [(IDENTITY, *after, "ada")]
    assert changes_by_hand() == [
        (
            code,
            "ada",
            {
                "rule": [None, rule.identity],
                "kind": [None, after[0]],
                "version": [None, after[1] or None],
            },
        )
    ]


def test_release_lifts_a_hold(
    client: Client, phone: Device, rule: DeviceUpdateRule, administrator: User
) -> None:
    device_hold(identity=IDENTITY, rule=rule, actor=SETUP)
    client.force_login(administrator)
    form = {"rule": str(rule.pk), "action": "release"}
    page = client.get(page_of(phone))

    confirmation = client.post(control_url(phone), form)
    response = client.post(control_url(phone), {**form, "post": "yes"})

    assert f'<button type="submit" form="control-release-{rule.pk}">' in page.content.decode()
    assert "control-hold-" in page.content.decode()  # the forms exist for every rule
    assert f'form="control-hold-{rule.pk}">Hold…' not in page.content.decode()  # already held
    assert confirmation.context["effect"] == (
        f"{IDENTITY} follows {RULE_NAME} again: it is offered what the rule and its "
        f"rollout give it (approved {A})."
    )
    assert messages_of(response) == [("success", f"{IDENTITY} released for {RULE_NAME}")]
    assert controls() == []
    assert changes_by_hand() == [
        (
            "portal.device.released",
            "ada",
            {"rule": [rule.identity, None], "kind": ["hold", None], "version": [None, None]},
        )
    ]


@pytest.mark.parametrize("confirmed", [False, True], ids=["asked", "confirmed"])
@pytest.mark.parametrize(
    ("form", "message"),
    [
        (
            {"action": "pin", "version": "9.9.9"},
            "service:WebServer:{pool}/{rule_id} never had version 9.9.9",
        ),
        (
            {"action": "pin", "version": "latest"},
            "'latest' is not a version (dotted integers)",
        ),
        (
            {"action": "release"},
            f"{IDENTITY} is neither held nor pinned for service:WebServer:{{pool}}/{{rule_id}}",
        ),
    ],
)
def test_a_refused_control_is_an_error_message_and_nothing_changes(
    client: Client,
    phone: Device,
    rule: DeviceUpdateRule,
    administrator: User,
    form: dict[str, str],
    message: str,
    confirmed: bool,
) -> None:
    client.force_login(administrator)
    data = {"rule": str(rule.pk), **form, **({"post": "yes"} if confirmed else {})}

    response = client.post(control_url(phone), data)

    assert response.status_code == 302
    assert response["Location"] == page_of(phone)
    assert messages_of(response) == [
        ("error", message.format(pool=rule.pool.fqdn, rule_id=rule.rule_id))
    ]
    assert controls() == []
    assert changes_by_hand() == []


@pytest.mark.parametrize(
    ("form", "message"),
    [
        (
            {"rule": "{other}", "action": "hold"},
            "rule: Select a valid choice. That choice is not one of the available choices.",
        ),
        (
            {"rule": "{rule}", "action": "delete"},
            "action: Select a valid choice. delete is not one of the available choices.",
        ),
    ],
)
def test_a_rule_of_another_class_or_an_unknown_action_is_refused(
    client: Client,
    phone: Device,
    rule: DeviceUpdateRule,
    other_rule: DeviceUpdateRule,
    administrator: User,
    form: dict[str, str],
    message: str,
) -> None:
    client.force_login(administrator)
    data = {key: value.format(rule=rule.pk, other=other_rule.pk) for key, value in form.items()}

    response = client.post(control_url(phone), {**data, "post": "yes"})

    assert response.status_code == 302
    assert messages_of(response) == [("error", message)]
    assert controls() == []
    assert changes_by_hand() == []


def test_a_pin_can_be_replaced_by_a_hold(
    client: Client, phone: Device, rule: DeviceUpdateRule, administrator: User
) -> None:
    device_pin(identity=IDENTITY, rule=rule, version=R, actor=SETUP)
    client.force_login(administrator)

    client.post(control_url(phone), {"rule": str(rule.pk), "action": "hold", "post": "yes"})

    assert controls() == [(IDENTITY, DeviceControlKind.HOLD, "", "ada")]
    assert changes_by_hand() == [
        (
            "portal.device.held",
            "ada",
            {"rule": [None, rule.identity], "kind": ["pin", "hold"], "version": [R, None]},
        )
    ]


@pytest.mark.parametrize("action", ["hold", "pin", "release"])
def test_helpdesk_cannot_hold_pin_or_release(
    client: Client, phone: Device, rule: DeviceUpdateRule, helpdesk: User, action: str
) -> None:
    device_hold(identity=IDENTITY, rule=rule, actor=SETUP)
    client.force_login(helpdesk)
    form = {"rule": str(rule.pk), "action": action, "version": R}

    assert client.post(control_url(phone), form).status_code == 403
    assert client.post(control_url(phone), {**form, "post": "yes"}).status_code == 403
    assert controls() == [(IDENTITY, "hold", "", "setup")]
    assert changes_by_hand() == []


def test_the_control_address_only_answers_posts(
    client: Client, phone: Device, administrator: User
) -> None:
    client.force_login(administrator)

    response = client.get(control_url(phone))

    assert (response.status_code, response["Location"]) == (302, page_of(phone))
    assert client.post(f"{INVENTORY}999/control/", {}).status_code == 404


def test_anonymous_is_sent_to_the_login_page(client: Client, phone: Device) -> None:
    response = client.post(control_url(phone), {"action": "hold"})

    assert response.status_code == 302
    assert response["Location"] == f"/admin/login/?next={control_url(phone)}"
    assert controls() == []
