"""Test devices: scopes, identifier validation, uniqueness, audit."""

from __future__ import annotations

import pytest

from portal.errors import DomainError
from portal.models import AuditEntry, Site, TestDevice
from portal.services.audit import Actor
from portal.services.testdevices import testdevice_create, testdevice_delete, testdevice_update

pytestmark = pytest.mark.django_db

ACTOR = Actor.system("tests")


def test_add_a_global_device_by_mac_stores_the_normal_form() -> None:
    device = testdevice_create(
        scope="global",
        name="Lab phone",
        identifier_type="MACAddress",
        identifier="00:04:f2:11:22:33",
        actor=ACTOR,
    )
    assert (device.scope, device.identifier) == ("global", "0004F2112233")
    entry = AuditEntry.objects.get()
    assert entry.action == "portal.test_device.created"
    assert entry.changes == {
        "identifier": [None, "0004F2112233"],
        "identifier_type": [None, "MACAddress"],
        "name": [None, "Lab phone"],
    }


def test_add_to_a_site_scope_and_change_it() -> None:
    device = testdevice_create(
        scope="site:default",
        name="Desk 4",
        identifier_type="SerialNumber",
        identifier="CX6-0012345",
        actor=ACTOR,
    )
    assert device.scope == "site:Default"
    testdevice_update(device=device, actor=ACTOR, scope="global", identifier="CX6-999")
    device.refresh_from_db()
    assert (device.scope, device.identifier) == ("global", "CX6-999")
    assert AuditEntry.objects.order_by("id").last().changes == {  # type: ignore[union-attr]
        "identifier": ["CX6-0012345", "CX6-999"],
        "site": ["Default", None],
    }


@pytest.mark.parametrize(
    ("kwargs", "field", "message"),
    [
        ({"identifier": "00-04-F2"}, "identifier", "'00-04-F2' is not a MAC address"),
        ({"scope": "site:Nowhere"}, "scope", "no site named 'Nowhere'"),
        ({"scope": "pool:x"}, "scope", "'pool:x' is not a scope (global or site:<name>)"),
        ({"identifier_type": "IMEI"}, "identifier_type", "'IMEI' is not an identifier type"),
        ({"name": "  "}, "name", "a name of 1 to 100 printable characters is required"),
        ({"name": "lab PHONE"}, "name", "a test device named 'lab PHONE' already exists in global"),
    ],
)
def test_bad_input_is_refused_and_changes_nothing(
    kwargs: dict[str, str], field: str, message: str
) -> None:
    testdevice_create(
        scope="global",
        name="Lab phone",
        identifier_type="MACAddress",
        identifier="0004F2112233",
        actor=ACTOR,
    )
    arguments = {
        "scope": "global",
        "name": "Other",
        "identifier_type": "MACAddress",
        "identifier": "0004F2AABBCC",
        **kwargs,
    }
    with pytest.raises(DomainError) as error:
        testdevice_create(actor=ACTOR, **arguments)
    assert error.value.field == field
    assert error.value.message.startswith(message)
    assert TestDevice.objects.count() == 1
    assert AuditEntry.objects.count() == 1


def test_the_same_name_may_exist_in_another_scope_and_delete_is_audited() -> None:
    testdevice_create(
        scope="global", name="Lab", identifier_type="SerialNumber", identifier="A1", actor=ACTOR
    )
    Site.objects.create(name="Paris")
    device = testdevice_create(
        scope="site:Paris", name="Lab", identifier_type="SerialNumber", identifier="A2", actor=ACTOR
    )
    testdevice_delete(device=device, actor=ACTOR)
    assert list(TestDevice.objects.values_list("identifier", flat=True)) == ["A1"]
    assert AuditEntry.objects.order_by("id").last().action == "portal.test_device.removed"  # type: ignore[union-attr]
