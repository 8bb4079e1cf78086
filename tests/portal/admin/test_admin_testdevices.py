"""Test devices in the control panel: add, change, remove through the service."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client

from portal.errors import DomainError
from portal.models import AuditEntry, Site, TestDevice
from portal.services.audit import Actor
from portal.services.testdevices import testdevice_create

pytestmark = pytest.mark.django_db

CHANGELIST = "/admin/portal/testdevice/"
ADD = f"{CHANGELIST}add/"
Messages = Callable[[Any], list[tuple[str, str]]]


def existing_lobby_phone() -> TestDevice:
    return testdevice_create(
        scope="global",
        name="Lobby phone",
        identifier_type="MACAddress",
        identifier="00-04-F2-AA-BB-CC",
        actor=Actor.system("setup"),
    )


def rows() -> list[tuple[str, str, str, str]]:
    return [
        (device.scope, device.name, device.identifier_type, device.identifier)
        for device in TestDevice.objects.select_related("site").order_by("pk")
    ]


def test_add_a_global_test_device_by_mac(client: Client, administrator: User) -> None:
    client.force_login(administrator)

    response = client.post(
        ADD,
        {
            "scope": "global",
            "name": "Lobby phone",
            "identifier_type": "MACAddress",
            "identifier": "00-04-f2-aa-bb-cc",
        },
    )

    assert response.status_code == 302
    assert response["Location"] == CHANGELIST
    assert rows() == [("global", "Lobby phone", "MACAddress", "0004F2AABBCC")]
    # One audit row: checking the input first writes nothing that stays.
    entry = AuditEntry.objects.get()
    assert (entry.action, entry.actor_name, entry.object_type, entry.changes) == (
        "portal.test_device.created",
        "ada",
        "portal.testdevice",
        {
            "identifier": [None, "0004F2AABBCC"],
            "identifier_type": [None, "MACAddress"],
            "name": [None, "Lobby phone"],
        },
    )


def test_add_a_site_test_device_by_serial_with_a_name_used_globally(
    client: Client, administrator: User
) -> None:
    existing_lobby_phone()
    client.force_login(administrator)

    response = client.post(
        ADD,
        {
            "scope": "site:Default",
            "name": "Lobby phone",
            "identifier_type": "SerialNumber",
            "identifier": "PX-1234_b",
        },
    )

    assert response.status_code == 302
    assert rows() == [
        ("global", "Lobby phone", "MACAddress", "0004F2AABBCC"),
        ("site:Default", "Lobby phone", "SerialNumber", "PX-1234_b"),
    ]
    assert list(AuditEntry.objects.values_list("action", flat=True)) == [
        "portal.test_device.created",
        "portal.test_device.created",
    ]


def test_change_page_shows_the_scope_and_edits_go_through_the_service(
    client: Client, administrator: User
) -> None:
    device = existing_lobby_phone()
    client.force_login(administrator)
    page = client.get(f"{CHANGELIST}{device.pk}/change/")
    assert page.context["adminform"].form["scope"].value() == "global"

    response = client.post(
        f"{CHANGELIST}{device.pk}/change/",
        {
            "scope": "site:Default",
            "name": "Front desk",
            "identifier_type": "MACAddress",
            "identifier": "00:04:f2:aa:bb:cd",
        },
    )

    assert response.status_code == 302
    assert rows() == [("site:Default", "Front desk", "MACAddress", "0004F2AABBCD")]
    entry = AuditEntry.objects.latest("id")
    assert (entry.action, entry.actor_name, entry.changes) == (
        "portal.test_device.changed",
        "ada",
        {
            "identifier": ["0004F2AABBCC", "0004F2AABBCD"],
            "name": ["Lobby phone", "Front desk"],
            "site": [None, "Default"],
        },
    )


def test_delete_goes_through_the_service(client: Client, administrator: User) -> None:
    device = existing_lobby_phone()
    client.force_login(administrator)

    response = client.post(f"{CHANGELIST}{device.pk}/delete/", {"post": "yes"})

    assert response.status_code == 302
    assert rows() == []
    entry = AuditEntry.objects.latest("id")
    assert (entry.action, entry.actor_name, entry.object_id) == (
        "portal.test_device.removed",
        "ada",
        str(device.pk),
    )


def test_bulk_delete_goes_through_the_service(
    client: Client, administrator: User, read_messages: Messages
) -> None:
    first = existing_lobby_phone()
    second = testdevice_create(
        scope="site:Default",
        name="Desk 2",
        identifier_type="SerialNumber",
        identifier="SN2",
        actor=Actor.system("setup"),
    )
    client.force_login(administrator)

    response = client.post(
        CHANGELIST,
        {"action": "delete_selected", "_selected_action": [first.pk, second.pk], "post": "yes"},
    )

    assert response.status_code == 302
    assert read_messages(response) == [("success", "Successfully deleted 2 test devices.")]
    assert rows() == []
    assert sorted(
        AuditEntry.objects.filter(action="portal.test_device.removed").values_list(
            "object_id", "actor_name"
        )
    ) == sorted([(str(first.pk), "ada"), (str(second.pk), "ada")])


BAD_INPUTS = [
    (
        {"identifier_type": "MACAddress", "identifier": "00-04-F2"},
        "identifier",
        "'00-04-F2' is not a MAC address (six or more hex pairs)",
    ),
    (
        {"identifier_type": "MACAddress", "identifier": "00-04:F2-AA-BB-CC"},
        "identifier",
        "'00-04:F2-AA-BB-CC' is not a MAC address (six or more hex pairs)",
    ),
    (
        {"identifier_type": "SerialNumber", "identifier": "SN 12!"},
        "identifier",
        "'SN 12!' is not a serial number (letters, digits, - and _)",
    ),
    (
        {"scope": "site:Atlantis"},
        "scope",
        "Select a valid choice. site:Atlantis is not one of the available choices.",
    ),
    (
        {"name": "lobby PHONE"},
        "name",
        "a test device named 'lobby PHONE' already exists in global",
    ),
    (
        {"name": "   "},
        "name",
        "This field is required.",
    ),
]


@pytest.mark.parametrize(("change", "field", "message"), BAD_INPUTS)
def test_bad_input_is_a_form_error_naming_the_field_and_nothing_is_saved(
    client: Client, administrator: User, change: dict[str, str], field: str, message: str
) -> None:
    existing_lobby_phone()
    before, audit_rows = rows(), AuditEntry.objects.count()
    client.force_login(administrator)
    data = {
        "scope": "global",
        "name": "Desk 7",
        "identifier_type": "MACAddress",
        "identifier": "00-04-F2-00-00-07",
        **change,
    }

    response = client.post(ADD, data)

    assert response.status_code == 200
    assert response.context["adminform"].form.errors == {field: [message]}
    assert rows() == before
    assert AuditEntry.objects.count() == audit_rows


def test_a_bad_edit_changes_nothing(client: Client, administrator: User) -> None:
    device = existing_lobby_phone()
    client.force_login(administrator)

    response = client.post(
        f"{CHANGELIST}{device.pk}/change/",
        {
            "scope": "global",
            "name": "Lobby phone",
            "identifier_type": "MACAddress",
            "identifier": "not-a-mac",
        },
    )

    assert response.status_code == 200
    assert response.context["adminform"].form.errors == {
        "identifier": ["'not-a-mac' is not a MAC address (six or more hex pairs)"]
    }
    assert rows() == [("global", "Lobby phone", "MACAddress", "0004F2AABBCC")]
    assert AuditEntry.objects.count() == 1  # the setup's own row


def test_list_shows_scope_and_filters_by_it(client: Client, administrator: User) -> None:
    existing_lobby_phone()
    testdevice_create(
        scope="site:Default",
        name="Desk 2",
        identifier_type="SerialNumber",
        identifier="SN2",
        actor=Actor.system("setup"),
    )
    Site.objects.create(name="Empty")
    client.force_login(administrator)

    everything = client.get(CHANGELIST)
    site_only = client.get(f"{CHANGELIST}?scope=site%3ADefault")
    global_only = client.get(f"{CHANGELIST}?scope=global")
    empty_site = client.get(f"{CHANGELIST}?scope=site%3AEmpty")

    assert "site:Default" in everything.content.decode()
    assert [d.name for d in everything.context["cl"].result_list] == ["Lobby phone", "Desk 2"]
    assert [d.name for d in site_only.context["cl"].result_list] == ["Desk 2"]
    assert [d.name for d in global_only.context["cl"].result_list] == ["Lobby phone"]
    assert list(empty_site.context["cl"].result_list) == []


def test_helpdesk_reads_but_cannot_change_test_devices(client: Client, helpdesk: User) -> None:
    device = existing_lobby_phone()
    client.force_login(helpdesk)

    page = client.get(f"{CHANGELIST}{device.pk}/change/")
    add = client.post(
        ADD,
        {"scope": "global", "name": "X", "identifier_type": "SerialNumber", "identifier": "X1"},
    )
    change = client.post(
        f"{CHANGELIST}{device.pk}/change/",
        {"scope": "global", "name": "Y", "identifier_type": "SerialNumber", "identifier": "Y1"},
    )
    delete = client.post(f"{CHANGELIST}{device.pk}/delete/", {"post": "yes"})

    assert page.status_code == 200
    assert "global" in page.content.decode()
    assert 'name="_save"' not in page.content.decode()
    assert (add.status_code, change.status_code, delete.status_code) == (403, 403, 403)
    assert rows() == [("global", "Lobby phone", "MACAddress", "0004F2AABBCC")]
    assert AuditEntry.objects.count() == 1


def test_a_refusal_the_form_could_not_foresee_is_a_message_and_nothing_is_saved(
    client: Client,
    administrator: User,
    read_messages: Messages,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Another administrator adds the same name between the check and the save."""
    import portal.admin.testdevices as page_module

    calls = []

    def create_then_race(**values: object) -> TestDevice:
        calls.append(values["name"])
        if len(calls) == 2:  # the real save, after the form's check passed
            raise DomainError("a test device named 'Desk 7' already exists in global", field="name")
        return testdevice_create(**values)  # type: ignore[arg-type]

    monkeypatch.setattr(page_module, "testdevice_create", create_then_race)
    client.force_login(administrator)

    response = client.post(
        ADD,
        {
            "scope": "global",
            "name": "Desk 7",
            "identifier_type": "SerialNumber",
            "identifier": "S7",
        },
    )

    assert response.status_code == 302
    assert response["Location"] == ADD
    assert read_messages(response) == [
        ("error", "a test device named 'Desk 7' already exists in global")
    ]
    assert calls == ["Desk 7", "Desk 7"]
    assert rows() == []
    assert AuditEntry.objects.count() == 0
