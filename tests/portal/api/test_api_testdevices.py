"""Test devices through the API: add, list, change and remove; refusals name the field
at fault and change nothing."""

from __future__ import annotations

from typing import Any

import pytest
from rest_framework.test import APIClient

from portal.models import AuditEntry, Site, TestDevice
from portal.services.audit import Actor
from portal.services.testdevices import testdevice_create

pytestmark = pytest.mark.django_db


@pytest.fixture
def lobby(db: None) -> TestDevice:
    return testdevice_create(
        scope="global",
        name="Lobby",
        identifier_type="MACAddress",
        identifier="00:04:F2:11:22:33",
        actor=Actor.system("setup"),
    )


def rows() -> list[tuple[str, str, str, str]]:
    return [
        (device.scope, device.name, device.identifier_type, device.identifier)
        for device in TestDevice.objects.select_related("site").order_by("pk")
    ]


def test_add_test_device_stores_the_mac_normalised(admin_api: APIClient) -> None:
    response = admin_api.post(
        "/api/v1/test-devices/",
        {
            "scope": "global",
            "name": "Lobby phone",
            "identifier_type": "MACAddress",
            "identifier": "00-04-f2-aa-bb-cc",
        },
        format="json",
    )

    device = TestDevice.objects.get()
    assert response.status_code == 201
    assert response.json() == {
        "id": device.pk,
        "scope": "global",
        "name": "Lobby phone",
        "identifier_type": "MACAddress",
        "identifier": "0004F2AABBCC",
    }
    entry = AuditEntry.objects.get()
    assert (entry.action, entry.actor_name, entry.changes) == (
        "portal.test_device.created",
        "ada",
        {
            "identifier": [None, "0004F2AABBCC"],
            "identifier_type": [None, "MACAddress"],
            "name": [None, "Lobby phone"],
        },
    )


def test_add_test_device_to_a_site_scope(admin_api: APIClient) -> None:
    response = admin_api.post(
        "/api/v1/test-devices/",
        {
            "scope": "site:default",
            "name": "Desk 12",
            "identifier_type": "SerialNumber",
            "identifier": "64167F0A1B2C",
        },
        format="json",
    )

    assert response.status_code == 201
    assert response.json()["scope"] == "site:Default"
    assert rows() == [("site:Default", "Desk 12", "SerialNumber", "64167F0A1B2C")]


def test_list_and_detail_show_test_devices(admin_api: APIClient, lobby: TestDevice) -> None:
    expected = {
        "id": lobby.pk,
        "scope": "global",
        "name": "Lobby",
        "identifier_type": "MACAddress",
        "identifier": "0004F2112233",
    }

    listed = admin_api.get("/api/v1/test-devices/")
    detail = admin_api.get(f"/api/v1/test-devices/{lobby.pk}/")

    assert listed.status_code == 200
    assert listed.json() == {"next": None, "previous": None, "results": [expected]}
    assert detail.status_code == 200
    assert detail.json() == expected


@pytest.mark.parametrize(
    ("query", "expected"), [("scope=global", ["Lobby"]), ("scope=site:Default", ["Desk"])]
)
def test_list_filters_by_scope(
    admin_api: APIClient, lobby: TestDevice, query: str, expected: list[str]
) -> None:
    testdevice_create(
        scope="site:Default",
        name="Desk",
        identifier_type="SerialNumber",
        identifier="SN-1",
        actor=Actor.system("setup"),
    )

    response = admin_api.get(f"/api/v1/test-devices/?{query}")

    assert [device["name"] for device in response.json()["results"]] == expected


def test_patch_changes_only_the_given_fields(admin_api: APIClient, lobby: TestDevice) -> None:
    response = admin_api.patch(
        f"/api/v1/test-devices/{lobby.pk}/", {"name": "Reception"}, format="json"
    )

    assert response.status_code == 200
    assert response.json() == {
        "id": lobby.pk,
        "scope": "global",
        "name": "Reception",
        "identifier_type": "MACAddress",
        "identifier": "0004F2112233",
    }
    entry = AuditEntry.objects.get(action="portal.test_device.changed")
    assert (entry.actor_name, entry.changes) == ("ada", {"name": ["Lobby", "Reception"]})


def test_put_replaces_every_field(admin_api: APIClient, lobby: TestDevice) -> None:
    response = admin_api.put(
        f"/api/v1/test-devices/{lobby.pk}/",
        {
            "scope": "site:Default",
            "name": "Desk",
            "identifier_type": "SerialNumber",
            "identifier": "SN_42",
        },
        format="json",
    )

    assert response.status_code == 200
    assert response.json() == {
        "id": lobby.pk,
        "scope": "site:Default",
        "name": "Desk",
        "identifier_type": "SerialNumber",
        "identifier": "SN_42",
    }
    assert rows() == [("site:Default", "Desk", "SerialNumber", "SN_42")]


def test_delete_removes_the_test_device(admin_api: APIClient, lobby: TestDevice) -> None:
    response = admin_api.delete(f"/api/v1/test-devices/{lobby.pk}/")

    assert response.status_code == 204
    assert rows() == []
    entry = AuditEntry.objects.get(action="portal.test_device.removed")
    assert (entry.actor_name, entry.object_repr) == ("ada", "global/Lobby")


GOOD = {"scope": "global", "name": "Desk", "identifier_type": "MACAddress",
        "identifier": "00:04:f2:44:55:66"}  # fmt: skip


@pytest.mark.parametrize(
    ("changes", "errors"),
    [
        (
            {"identifier": "00-04-f2"},
            {"identifier": ["'00-04-f2' is not a MAC address (six or more hex pairs)"]},
        ),
        (
            {"identifier": "00:04-f2:44:55:66"},
            {"identifier": ["'00:04-f2:44:55:66' is not a MAC address (six or more hex pairs)"]},
        ),
        (
            {"identifier_type": "SerialNumber", "identifier": "SN 1"},
            {"identifier": ["'SN 1' is not a serial number (letters, digits, - and _)"]},
        ),
        ({"scope": "site:Nowhere"}, {"scope": ["no site named 'Nowhere'"]}),
        ({"scope": "planet"}, {"scope": ["'planet' is not a scope (global or site:<name>)"]}),
        ({"name": "lobby"}, {"name": ["a test device named 'lobby' already exists in global"]}),
        ({"identifier_type": "IMEI"}, {"identifier_type": ['"IMEI" is not a valid choice.']}),
        ({"name": ""}, {"name": ["This field may not be blank."]}),
    ],
)
def test_add_with_bad_input_is_400_and_changes_nothing(
    admin_api: APIClient, lobby: TestDevice, changes: dict[str, str], errors: dict[str, Any]
) -> None:
    audit_before = AuditEntry.objects.count()

    response = admin_api.post("/api/v1/test-devices/", {**GOOD, **changes}, format="json")

    assert response.status_code == 400
    assert response.json() == errors
    assert rows() == [("global", "Lobby", "MACAddress", "0004F2112233")]
    assert AuditEntry.objects.count() == audit_before


def test_add_without_fields_names_each_missing_one(admin_api: APIClient) -> None:
    response = admin_api.post("/api/v1/test-devices/", {}, format="json")

    assert response.status_code == 400
    assert response.json() == {
        field: ["This field is required."]
        for field in ("scope", "name", "identifier_type", "identifier")
    }
    assert rows() == []


@pytest.mark.parametrize(
    ("changes", "errors"),
    [
        (
            {"identifier": "zz:zz:zz:zz:zz:zz"},
            {"identifier": ["'zz:zz:zz:zz:zz:zz' is not a MAC address (six or more hex pairs)"]},
        ),
        ({"name": "DESK"}, {"name": ["a test device named 'DESK' already exists in global"]}),
        ({"scope": "site:Nowhere"}, {"scope": ["no site named 'Nowhere'"]}),
    ],
)
def test_change_with_bad_input_is_400_and_changes_nothing(
    admin_api: APIClient, lobby: TestDevice, changes: dict[str, str], errors: dict[str, Any]
) -> None:
    testdevice_create(
        scope="global",
        name="Desk",
        identifier_type="SerialNumber",
        identifier="SN-1",
        actor=Actor.system("setup"),
    )
    before = rows()
    audit_before = AuditEntry.objects.count()

    response = admin_api.patch(f"/api/v1/test-devices/{lobby.pk}/", changes, format="json")

    assert response.status_code == 400
    assert response.json() == errors
    assert rows() == before
    assert AuditEntry.objects.count() == audit_before


def test_site_names_in_scopes_ignore_case(admin_api: APIClient) -> None:
    Site.objects.create(name="Berlin")

    response = admin_api.post(
        "/api/v1/test-devices/", {**GOOD, "scope": "SITE:berlin"}, format="json"
    )

    assert response.status_code == 201
    assert response.json()["scope"] == "site:Berlin"
