"""Holds and pins, device groups, maintenance windows, a site's time zone and a server's
offer cap through the API; every refusal names the field at fault and changes nothing
(no row, no audit entry)."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import pytest
from rest_framework.test import APIClient

from portal.models import (
    AuditEntry,
    DeviceControl,
    DeviceGroup,
    DeviceGroupMember,
    DeviceUpdateRule,
    MaintenanceWindow,
    Server,
    Site,
)
from portal.services.audit import Actor
from portal.services.fleet import (
    device_group_save,
    device_hold,
    device_pin,
    maintenance_window_create,
)
from portal.services.rollout_plans import RolloutPlan, WavePlan
from portal.services.rollouts import rollout_plan
from tests.factories import AASTRA, RULE_A, RULE_B

pytestmark = pytest.mark.django_db

IDENTITY = f"service:WebServer:pool01.example.org/{RULE_A}"
IDENTITY_B = f"service:WebServer:pool01.example.org/{RULE_B}"
SETUP = Actor.system("setup")


def iso(value: dt.datetime) -> str:
    return value.isoformat().replace("+00:00", "Z")


def state() -> dict[str, Any]:
    """Everything a refused request could have changed."""
    return {
        "controls": list(DeviceControl.objects.values_list("pk", "identity", "kind", "version")),
        "groups": list(DeviceGroup.objects.values_list("pk", "name", "description")),
        "members": list(DeviceGroupMember.objects.values_list("group", "identifier")),
        "windows": list(MaintenanceWindow.objects.values_list("pk", "weekday", "start", "end")),
        "sites": list(Site.objects.values_list("pk", "name", "description", "time_zone")),
        "servers": list(Server.objects.values_list("pk", "offer_cap_per_minute")),
        "audit": AuditEntry.objects.count(),
    }


@pytest.fixture
def rule(make_rule: Any) -> DeviceUpdateRule:
    return make_rule(pending="4.0.2", approved="4.0.1", restore="4.0.0")


@pytest.fixture
def redmond(db: None) -> Site:
    return Site.objects.create(name="Redmond", time_zone="America/Los_Angeles")


# --- Holds and pins -----------------------------------------------------------------


def control_json(control: DeviceControl, **changes: Any) -> dict[str, Any]:
    return {
        "id": control.pk,
        "identity": control.identity,
        "rule": IDENTITY,
        "device_class": "UCPhone/Polycom/CX600/Rev-1/ENU/CPE",
        "kind": control.kind,
        "version": control.version,
        "actor_name": control.actor_name,
        "created_at": iso(control.created_at),
        **changes,
    }


def test_hold_a_phone(admin_api: APIClient, rule: DeviceUpdateRule) -> None:
    response = admin_api.post(
        "/api/v1/device-controls/",
        {"identity": "00-04-f2-aa-bb-cc", "rule": IDENTITY, "kind": "hold"},
        format="json",
    )

    control = DeviceControl.objects.get()
    assert response.status_code == 201
    assert response.json() == control_json(
        control, identity="MAC:0004F2AABBCC", kind="hold", version="", actor_name="ada"
    )
    entry = AuditEntry.objects.get()
    assert (entry.action, entry.actor_name, entry.changes) == (
        "portal.device.held",
        "ada",
        {"rule": [None, IDENTITY], "kind": [None, "hold"], "version": [None, None]},
    )


def test_pin_replaces_a_hold(admin_api: APIClient, rule: DeviceUpdateRule) -> None:
    held = device_hold(identity="SN:CX6-0012", rule=rule, actor=SETUP)
    AuditEntry.objects.all().delete()

    response = admin_api.post(
        "/api/v1/device-controls/",
        {"identity": "sn:cx6-0012", "rule": rule.pk, "kind": "pin", "version": "4.0.01"},
        format="json",
    )

    control = DeviceControl.objects.get()
    assert control.pk == held.pk
    assert response.status_code == 201
    assert response.json() == control_json(
        control, identity="SN:CX6-0012", kind="pin", version="4.0.1", actor_name="ada"
    )
    entry = AuditEntry.objects.get()
    assert (entry.action, entry.changes) == (
        "portal.device.pinned",
        {"rule": [None, IDENTITY], "kind": ["hold", "pin"], "version": [None, "4.0.1"]},
    )


CONTROL_REFUSALS: list[tuple[dict[str, Any], dict[str, list[str]]]] = [
    ({"version": "9.9.9"}, {"version": [f"{IDENTITY} never had version 9.9.9"]}),
    ({"version": "abc"}, {"version": ["'abc' is not a version (dotted integers)"]}),
    ({"version": ""}, {"version": ["a pin needs a version"]}),
    ({"kind": "hold", "version": "4.0.1"},
     {"version": ["a hold takes no version (pin the phone to one instead)"]}),
    ({"kind": "freeze"}, {"kind": ['"freeze" is not a valid choice.']}),
    ({"identity": "not a phone!"},
     {"identity": ["'not a phone!' is neither a MAC address nor a serial number"]}),
    ({"identity": "MAC:00-04"}, {"identity": ["'00-04' is not a MAC address"]}),
    ({"rule": IDENTITY_B}, {"rule": [f"no rule {IDENTITY_B}"]}),
    ({"rule": "pool01/rule"}, {"rule": ["'pool01/rule' is not a rule identity "
                                        "(service:WebServer:<pool FQDN>/<rule Id>)"]}),
]  # fmt: skip


@pytest.mark.parametrize(
    ("change", "errors"), CONTROL_REFUSALS, ids=[str(change) for change, _ in CONTROL_REFUSALS]
)
def test_hold_or_pin_refuses_bad_input_and_changes_nothing(
    admin_api: APIClient, rule: DeviceUpdateRule, change: dict[str, Any], errors: Any
) -> None:
    body = {"identity": "MAC:0004F2AABBCC", "rule": IDENTITY, "kind": "pin", "version": "4.0.0"}
    before = state()

    response = admin_api.post("/api/v1/device-controls/", {**body, **change}, format="json")

    assert (response.status_code, response.json()) == (400, errors)
    assert state() == before


@pytest.fixture
def controls(rule: DeviceUpdateRule, make_rule: Any) -> dict[str, DeviceControl]:
    other = make_rule(approved="2.1", device_class=AASTRA, rule_id=RULE_B)
    found = {
        "held": device_hold(identity="MAC:0004F2000001", rule=rule, actor=SETUP),
        "pinned": device_pin(identity="MAC:0004F2000002", rule=rule, version="4.0.0", actor=SETUP),
        "other": device_hold(identity="MAC:0004F2000001", rule=other, actor=SETUP),
    }
    AuditEntry.objects.all().delete()
    return found


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("", ["held", "other", "pinned"]),
        ("?kind=pin", ["pinned"]),
        ("?identity=00:04:F2:00:00:01", ["held", "other"]),
        (f"?rule={IDENTITY}", ["held", "pinned"]),
        (f"?rule={IDENTITY}&kind=hold", ["held"]),
        (f"?rule=service:WebServer:pool01.example.org/{uuid.UUID(int=1)}", []),
    ],
)
def test_list_holds_and_pins_with_filters(
    helpdesk_api: APIClient, controls: dict[str, DeviceControl], query: str, expected: list[str]
) -> None:
    response = helpdesk_api.get(f"/api/v1/device-controls/{query}")

    assert response.status_code == 200
    assert [item["id"] for item in response.json()["results"]] == sorted(
        controls[name].pk for name in expected
    )


def test_detail_of_a_pin(helpdesk_api: APIClient, controls: dict[str, DeviceControl]) -> None:
    pinned = controls["pinned"]

    response = helpdesk_api.get(f"/api/v1/device-controls/{pinned.pk}/")

    assert response.status_code == 200
    assert response.json() == control_json(
        pinned, identity="MAC:0004F2000002", kind="pin", version="4.0.0", actor_name="setup"
    )


def test_list_refuses_a_malformed_identity(
    helpdesk_api: APIClient, controls: dict[str, DeviceControl]
) -> None:
    response = helpdesk_api.get("/api/v1/device-controls/?identity=MAC:zz")

    assert (response.status_code, response.json()) == (
        400,
        {"identity": ["'zz' is not a MAC address"]},
    )


def test_release_deletes_the_control(
    admin_api: APIClient, controls: dict[str, DeviceControl]
) -> None:
    pinned = controls["pinned"]

    response = admin_api.delete(f"/api/v1/device-controls/{pinned.pk}/")

    assert response.status_code == 204
    assert not DeviceControl.objects.filter(pk=pinned.pk).exists()
    entry = AuditEntry.objects.get()
    assert (entry.action, entry.actor_name, entry.changes) == (
        "portal.device.released",
        "ada",
        {"rule": [IDENTITY, None], "kind": ["pin", None], "version": ["4.0.0", None]},
    )


def test_release_of_an_unknown_control_is_404(
    admin_api: APIClient, controls: dict[str, DeviceControl]
) -> None:
    before = state()

    response = admin_api.delete("/api/v1/device-controls/999/")

    assert response.status_code == 404
    assert state() == before


# --- Device groups ------------------------------------------------------------------


def test_create_a_group_stores_its_members_normalised(admin_api: APIClient) -> None:
    response = admin_api.post(
        "/api/v1/device-groups/",
        {"name": "Pilot", "description": "IT floor",
         "members": ["00:04:f2:aa:bb:cc", "sn:cx6-001", "CX6-002", "", "0004F2AABBCC"]},
        format="json",
    )  # fmt: skip

    group = DeviceGroup.objects.get()
    assert response.status_code == 201
    assert response.json() == {
        "id": group.pk,
        "name": "Pilot",
        "description": "IT floor",
        "members": ["MAC:0004F2AABBCC", "SN:CX6-001", "SN:CX6-002"],
        "created_at": iso(group.created_at),
    }
    entry = AuditEntry.objects.get()
    assert (entry.action, entry.actor_name) == ("portal.device_group.created", "ada")
    assert entry.changes["members"] == [None, ["MAC:0004F2AABBCC", "SN:CX6-001", "SN:CX6-002"]]


@pytest.fixture
def pilot(db: None) -> DeviceGroup:
    group = device_group_save(
        name="Pilot", description="IT floor", members=["MAC:0004F2000001"], actor=SETUP
    )
    AuditEntry.objects.all().delete()
    return group


def test_patch_members_keeps_name_and_description(admin_api: APIClient, pilot: DeviceGroup) -> None:
    response = admin_api.patch(
        f"/api/v1/device-groups/{pilot.pk}/",
        {"members": ["MAC:0004F2000001", "MAC:0004F2000002"]},
        format="json",
    )

    assert response.status_code == 200
    assert response.json() == {
        "id": pilot.pk,
        "name": "Pilot",
        "description": "IT floor",
        "members": ["MAC:0004F2000001", "MAC:0004F2000002"],
        "created_at": iso(pilot.created_at),
    }
    entry = AuditEntry.objects.get()
    assert (entry.action, entry.changes) == (
        "portal.device_group.changed",
        {"members": [["MAC:0004F2000001"], ["MAC:0004F2000001", "MAC:0004F2000002"]]},
    )


def test_put_replaces_everything(admin_api: APIClient, pilot: DeviceGroup) -> None:
    response = admin_api.put(
        f"/api/v1/device-groups/{pilot.pk}/", {"name": "Canary"}, format="json"
    )

    assert response.status_code == 200
    assert (response.json()["name"], response.json()["description"]) == ("Canary", "")
    assert response.json()["members"] == []


GROUP_REFUSALS: list[tuple[dict[str, Any], dict[str, list[str]]]] = [
    ({"name": "PILOT"}, {"name": ["a device group named 'PILOT' already exists"]}),
    ({"name": "x" * 101}, {"name": ["a name of 1 to 100 printable characters is required"]}),
    ({"name": ""}, {"name": ["This field may not be blank."]}),
    ({"members": ["MAC:12"]}, {"members": ["'12' is not a MAC address"]}),
    ({"members": ["a phone"]},
     {"members": ["'a phone' is neither a MAC address nor a serial number"]}),
    ({"members": "0004F2000001"}, {"members": ['Expected a list of items but got type "str".']}),
]  # fmt: skip


@pytest.mark.parametrize(
    ("body", "errors"), GROUP_REFUSALS, ids=[str(body)[:40] for body, _ in GROUP_REFUSALS]
)
def test_create_group_refuses_bad_input_and_changes_nothing(
    admin_api: APIClient, pilot: DeviceGroup, body: dict[str, Any], errors: Any
) -> None:
    before = state()

    response = admin_api.post("/api/v1/device-groups/", {"name": "Canary", **body}, format="json")

    assert (response.status_code, response.json()) == (400, errors)
    assert state() == before


def test_list_groups_holding_a_phone(helpdesk_api: APIClient, pilot: DeviceGroup) -> None:
    device_group_save(name="Canary", members=["SN:CX6-9"], actor=SETUP)

    every = helpdesk_api.get("/api/v1/device-groups/")
    holding = helpdesk_api.get("/api/v1/device-groups/?member=00:04:f2:00:00:01")
    named = helpdesk_api.get("/api/v1/device-groups/?name=canary")

    assert [g["name"] for g in every.json()["results"]] == ["Pilot", "Canary"]
    assert [g["name"] for g in holding.json()["results"]] == ["Pilot"]
    assert [g["members"] for g in named.json()["results"]] == [["SN:CX6-9"]]


def test_delete_a_group(admin_api: APIClient, pilot: DeviceGroup) -> None:
    response = admin_api.delete(f"/api/v1/device-groups/{pilot.pk}/")

    assert response.status_code == 204
    assert DeviceGroup.objects.count() == DeviceGroupMember.objects.count() == 0
    assert AuditEntry.objects.get().action == "portal.device_group.deleted"


def test_a_group_an_active_rollout_names_cannot_be_deleted(
    admin_api: APIClient, pilot: DeviceGroup, rule: DeviceUpdateRule
) -> None:
    rollout = rollout_plan(
        rule=rule,
        plan=RolloutPlan(waves=(WavePlan(groups=("Pilot",)), WavePlan(percent=100))),
        actor=SETUP,
    )
    AuditEntry.objects.all().delete()
    before = state()

    response = admin_api.delete(f"/api/v1/device-groups/{pilot.pk}/")

    assert response.status_code == 400
    assert response.json() == {
        "non_field_errors": [f"device group 'Pilot' is in a wave of active rollout #{rollout.pk}"]
    }
    assert state() == before


# --- Maintenance windows ------------------------------------------------------------


def test_add_a_window_in_the_sites_time_zone(admin_api: APIClient, redmond: Site) -> None:
    response = admin_api.post(
        "/api/v1/maintenance-windows/",
        {"site": "redmond", "weekday": "Sunday", "start": "01:00", "end": "04:00"},
        format="json",
    )

    window = MaintenanceWindow.objects.get()
    assert response.status_code == 201
    assert response.json() == {
        "id": window.pk,
        "site": "Redmond",
        "time_zone": "America/Los_Angeles",
        "weekday": 6,
        "weekday_name": "Sunday",
        "start": "01:00:00",
        "end": "04:00:00",
    }
    entry = AuditEntry.objects.get()
    assert (entry.action, entry.actor_name, entry.changes) == (
        "portal.maintenance_window.created",
        "ada",
        {
            "window": [None, "Redmond: Sunday 01:00–04:00"],
            "time_zone": [None, "America/Los_Angeles"],
        },
    )


@pytest.fixture
def sunday(redmond: Site) -> MaintenanceWindow:
    window = maintenance_window_create(
        site=redmond, weekday=6, start=dt.time(1), end=dt.time(4), actor=SETUP
    )
    AuditEntry.objects.all().delete()
    return window


WINDOW_REFUSALS: list[tuple[dict[str, Any], dict[str, list[str]]]] = [
    ({"start": "03:00", "end": "03:00"},
     {"end": ["the window 03:00–03:00 is empty: the end must be after the start (split a "
              "window across midnight into two)"]}),
    ({"start": "23:00", "end": "01:00"},
     {"end": ["the window 23:00–01:00 is empty: the end must be after the start (split a "
              "window across midnight into two)"]}),
    ({"weekday": 6, "start": "03:00", "end": "05:00"},
     {"start": ["the window overlaps Redmond: Sunday 01:00–04:00"]}),
    ({"weekday": "sunday", "start": "00:00", "end": "01:30"},
     {"start": ["the window overlaps Redmond: Sunday 01:00–04:00"]}),
    ({"site": "Atlantis"}, {"site": ["no site named 'Atlantis'"]}),
    ({"weekday": 7}, {"weekday": ["7 is not a weekday (0 Monday to 6 Sunday)"]}),
    ({"weekday": "Funday"},
     {"weekday": ["'Funday' is not a weekday (0 Monday to 6 Sunday, or its English name)"]}),
    ({"start": "25:00"},
     {"start": ["Time has wrong format. Use one of these formats instead: "
                "hh:mm[:ss[.uuuuuu]]."]}),
]  # fmt: skip


@pytest.mark.parametrize(
    ("change", "errors"), WINDOW_REFUSALS, ids=[str(change) for change, _ in WINDOW_REFUSALS]
)
def test_add_window_refuses_bad_input_and_changes_nothing(
    admin_api: APIClient, sunday: MaintenanceWindow, change: dict[str, Any], errors: Any
) -> None:
    body = {"site": "Redmond", "weekday": 5, "start": "01:00", "end": "04:00", **change}
    before = state()

    response = admin_api.post("/api/v1/maintenance-windows/", body, format="json")

    assert (response.status_code, response.json()) == (400, errors)
    assert state() == before


def test_adjacent_windows_do_not_overlap(admin_api: APIClient, sunday: MaintenanceWindow) -> None:
    response = admin_api.post(
        "/api/v1/maintenance-windows/",
        {"site": "Redmond", "weekday": 6, "start": "04:00", "end": "06:00"},
        format="json",
    )

    assert response.status_code == 201
    assert MaintenanceWindow.objects.count() == 2


def test_list_windows_by_site(helpdesk_api: APIClient, sunday: MaintenanceWindow) -> None:
    maintenance_window_create(
        site=Site.objects.get(name="Default"), weekday=0, start=dt.time(2), end=dt.time(3),
        actor=SETUP,
    )  # fmt: skip

    every = helpdesk_api.get("/api/v1/maintenance-windows/")
    redmond = helpdesk_api.get("/api/v1/maintenance-windows/?site=REDMOND")

    assert [(w["site"], w["weekday"]) for w in every.json()] == [("Default", 0), ("Redmond", 6)]
    assert [w["id"] for w in redmond.json()] == [sunday.pk]


def test_remove_a_window(admin_api: APIClient, sunday: MaintenanceWindow) -> None:
    response = admin_api.delete(f"/api/v1/maintenance-windows/{sunday.pk}/")

    assert response.status_code == 204
    assert MaintenanceWindow.objects.count() == 0
    entry = AuditEntry.objects.get()
    assert (entry.action, entry.changes) == (
        "portal.maintenance_window.deleted",
        {"window": ["Redmond: Sunday 01:00–04:00", None]},
    )


# --- A site's time zone, a server's offer cap ---------------------------------------


def test_set_a_sites_time_zone(admin_api: APIClient, redmond: Site) -> None:
    response = admin_api.patch(
        f"/api/v1/sites/{redmond.pk}/", {"time_zone": "Europe/Paris"}, format="json"
    )

    assert response.status_code == 200
    assert response.json() == {
        "id": redmond.pk,
        "name": "Redmond",
        "description": "",
        "time_zone": "Europe/Paris",
    }
    entry = AuditEntry.objects.get()
    assert (entry.action, entry.actor_name, entry.changes) == (
        "portal.site.changed",
        "ada",
        {"time_zone": ["America/Los_Angeles", "Europe/Paris"]},
    )


def test_a_sites_name_is_not_changed_through_the_api(admin_api: APIClient, redmond: Site) -> None:
    before = state()

    response = admin_api.patch(f"/api/v1/sites/{redmond.pk}/", {"name": "Oslo"}, format="json")

    assert (response.status_code, response.json()["name"]) == (200, "Redmond")
    assert state() == before


@pytest.mark.parametrize(
    ("body", "errors"),
    [
        ({"time_zone": "Mars/Olympus_Mons"},
         {"time_zone": ["Mars/Olympus_Mons is not a known time zone (an IANA name such as "
                        "Europe/Paris)."]}),
        ({"time_zone": ""}, {"time_zone": ["This field may not be blank."]}),
    ],
)  # fmt: skip
def test_an_unknown_time_zone_is_refused(
    admin_api: APIClient, redmond: Site, body: dict[str, Any], errors: Any
) -> None:
    before = state()

    response = admin_api.patch(f"/api/v1/sites/{redmond.pk}/", body, format="json")

    assert (response.status_code, response.json()) == (400, errors)
    assert state() == before


def test_set_a_servers_offer_cap(admin_api: APIClient) -> None:
    server = Server.objects.get()

    response = admin_api.patch(
        f"/api/v1/servers/{server.pk}/", {"offer_cap_per_minute": 120}, format="json"
    )

    assert response.status_code == 200
    assert response.json()["offer_cap_per_minute"] == 120
    server.refresh_from_db()
    assert server.offer_cap_per_minute == 120
    entry = AuditEntry.objects.get()
    assert (entry.action, entry.changes) == (
        "portal.server.changed",
        {"offer_cap_per_minute": [0, 120]},
    )


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (-1, "Ensure this value is greater than or equal to 0."),
        ("lots", "A valid integer is required."),
        (2**31, "Ensure this value is less than or equal to 2147483647."),
    ],
)
def test_a_bad_offer_cap_is_refused(admin_api: APIClient, value: Any, message: str) -> None:
    server = Server.objects.get()
    before = state()

    response = admin_api.patch(
        f"/api/v1/servers/{server.pk}/", {"offer_cap_per_minute": value}, format="json"
    )

    assert (response.status_code, response.json()) == (400, {"offer_cap_per_minute": [message]})
    assert state() == before
