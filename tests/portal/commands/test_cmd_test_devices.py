"""`manage.py test_devices`: list, add, set and remove, and what each refuses."""

from __future__ import annotations

import getpass
import io
import json

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from portal.models import AuditEntry, Site, TestDevice
from portal.services.audit import Actor
from portal.services.testdevices import testdevice_create

pytestmark = pytest.mark.django_db

ACTOR_NAME = f"manage.py ({getpass.getuser()})"


def run(*args: str) -> tuple[int, str, str]:
    """Exit status, stdout and stderr of one command."""
    out, err = io.StringIO(), io.StringIO()
    try:
        call_command(*args, stdout=out, stderr=err)
    except SystemExit as stop:
        return (stop.code if isinstance(stop.code, int) else 1), out.getvalue(), err.getvalue()
    return 0, out.getvalue(), err.getvalue()


def devices() -> list[tuple[str, str, str, str]]:
    return [
        (device.scope, device.name, device.identifier_type, device.identifier)
        for device in TestDevice.objects.select_related("site")
    ]


@pytest.fixture
def two_devices() -> None:
    """A global MAC device and a serial-number device in the Default site; no audit rows."""
    setup = Actor.system("test")
    testdevice_create(
        scope="global",
        name="Lab phone",
        identifier_type="MACAddress",
        identifier="00:04:f2:11:22:33",
        actor=setup,
    )
    testdevice_create(
        scope="site:Default",
        name="Desk 4",
        identifier_type="SerialNumber",
        identifier="CX6-0012345",
        actor=setup,
    )
    AuditEntry.objects.all().delete()


def test_add_a_device_by_mac() -> None:
    status, out, err = run(
        "test_devices", "add", "--name", "Lab phone", "--identifier", "00-04-f2-11-22-33",
        "--type", "MACAddress",
    )  # fmt: skip
    assert (status, out, err) == (0, "added global/Lab phone (MACAddress 0004F2112233)\n", "")
    assert devices() == [("global", "Lab phone", "MACAddress", "0004F2112233")]
    entry = AuditEntry.objects.get()
    assert (entry.action, entry.actor_name) == ("portal.test_device.created", ACTOR_NAME)


def test_add_to_a_site_as_json() -> None:
    status, out, err = run(
        "test_devices", "add", "--scope", "site:default", "--name", "Desk 4",
        "--identifier", "CX6-0012345", "--type", "SerialNumber", "--json",
    )  # fmt: skip
    assert (status, err) == (0, "")
    assert json.loads(out) == {
        "ok": True,
        "message": "added site:Default/Desk 4 (SerialNumber CX6-0012345)",
        "test_device": {
            "scope": "site:Default",
            "name": "Desk 4",
            "identifier_type": "SerialNumber",
            "identifier": "CX6-0012345",
        },
    }


@pytest.mark.usefixtures("two_devices")
def test_list_as_a_table_as_json_and_by_scope() -> None:
    status, out, err = run("test_devices", "list")
    assert (status, err) == (0, "")
    assert out.splitlines() == [
        "SCOPE         NAME       TYPE          IDENTIFIER",
        "global        Lab phone  MACAddress    0004F2112233",
        "site:Default  Desk 4     SerialNumber  CX6-0012345",
    ]
    _, out, _ = run("test_devices", "list", "--scope", "site:Default", "--json")
    assert json.loads(out) == [
        {
            "scope": "site:Default",
            "name": "Desk 4",
            "identifier_type": "SerialNumber",
            "identifier": "CX6-0012345",
        }
    ]
    Site.objects.create(name="Branch")
    assert run("test_devices", "list", "--scope", "site:Branch") == (0, "no test devices\n", "")


@pytest.mark.usefixtures("two_devices")
def test_set_renames_and_moves_a_device() -> None:
    status, out, err = run(
        "test_devices", "set", "--name", "lab PHONE", "--new-name", "Bench phone",
        "--new-scope", "site:Default",
    )  # fmt: skip
    assert (status, err) == (0, "")
    assert out == (
        "changed site:Default/Bench phone: scope 'global' -> 'site:Default', "
        "name 'Lab phone' -> 'Bench phone'\n"
    )
    assert ("site:Default", "Bench phone", "MACAddress", "0004F2112233") in devices()
    entry = AuditEntry.objects.get()
    assert (entry.action, entry.actor_name, entry.changes) == (
        "portal.test_device.changed",
        ACTOR_NAME,
        {"name": ["Lab phone", "Bench phone"], "site": [None, "Default"]},
    )


@pytest.mark.usefixtures("two_devices")
def test_set_a_new_identifier_as_json_and_an_unchanged_device() -> None:
    status, out, err = run(
        "test_devices", "set", "--scope", "site:Default", "--name", "Desk 4",
        "--type", "MACAddress", "--identifier", "0004f2aabbcc", "--json",
    )  # fmt: skip
    assert (status, err) == (0, "")
    assert json.loads(out) == {
        "ok": True,
        "message": "changed site:Default/Desk 4: identifier_type 'SerialNumber' -> "
        "'MACAddress', identifier 'CX6-0012345' -> '0004F2AABBCC'",
        "test_device": {
            "scope": "site:Default",
            "name": "Desk 4",
            "identifier_type": "MACAddress",
            "identifier": "0004F2AABBCC",
        },
    }
    assert AuditEntry.objects.count() == 1
    status, out, err = run(
        "test_devices", "set", "--scope", "site:Default", "--name", "Desk 4",
        "--identifier", "00:04:F2:AA:BB:CC",
    )  # fmt: skip
    assert (status, out, err) == (0, "site:Default/Desk 4 is unchanged\n", "")
    assert AuditEntry.objects.count() == 1


@pytest.mark.usefixtures("two_devices")
def test_remove_a_device() -> None:
    status, out, err = run("test_devices", "remove", "--scope", "site:Default", "--name", "desk 4")
    assert (status, out, err) == (0, "removed site:Default/Desk 4\n", "")
    assert devices() == [("global", "Lab phone", "MACAddress", "0004F2112233")]
    assert AuditEntry.objects.get().action == "portal.test_device.removed"
    status, out, err = run("test_devices", "remove", "--name", "Lab phone", "--json")
    assert (status, err) == (0, "")
    assert json.loads(out) == {
        "ok": True,
        "message": "removed global/Lab phone",
        "test_device": {
            "scope": "global",
            "name": "Lab phone",
            "identifier_type": "MACAddress",
            "identifier": "0004F2112233",
        },
    }
    assert devices() == []


@pytest.mark.usefixtures("two_devices")
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["add", "--name", "X", "--identifier", "00:04:f2:11:22", "--type", "MACAddress"],
            "'00:04:f2:11:22' is not a MAC address (six or more hex pairs)",
        ),
        (
            ["add", "--name", "X", "--identifier", "00:04-f2:11:22:33", "--type", "MACAddress"],
            "'00:04-f2:11:22:33' is not a MAC address (six or more hex pairs)",
        ),
        (
            ["add", "--name", "X", "--identifier", "CX6 001", "--type", "SerialNumber"],
            "'CX6 001' is not a serial number (letters, digits, - and _)",
        ),
        (
            ["add", "--scope", "site:Nowhere", "--name", "X", "--identifier", "A1",
             "--type", "SerialNumber"],
            "no site named 'Nowhere'",
        ),
        (
            ["add", "--scope", "Default", "--name", "X", "--identifier", "A1",
             "--type", "SerialNumber"],
            "'Default' is not a scope (global or site:<name>)",
        ),
        (
            ["add", "--name", "LAB PHONE", "--identifier", "A1", "--type", "SerialNumber"],
            "a test device named 'LAB PHONE' already exists in global",
        ),
        (
            ["add", "--name", " ", "--identifier", "A1", "--type", "SerialNumber"],
            "a name of 1 to 100 printable characters is required",
        ),
        (["set", "--name", "Lab phone"],
         "nothing to change: give --new-name, --new-scope, --identifier or --type"),
        (["set", "--name", "Desk 4", "--new-name", "X"], "no test device named 'Desk 4' in global"),
        (["set", "--name", "Lab phone", "--new-scope", "site:Nowhere"], "no site named 'Nowhere'"),
        (
            ["set", "--name", "Lab phone", "--type", "SerialNumber", "--identifier", "a:b"],
            "'a:b' is not a serial number (letters, digits, - and _)",
        ),
        (
            ["set", "--scope", "site:Default", "--name", "Desk 4", "--type", "MACAddress"],
            "'CX6-0012345' is not a MAC address (six or more hex pairs)",
        ),
        (["remove", "--name", "Nobody"], "no test device named 'Nobody' in global"),
        (["remove", "--scope", "site:Nowhere", "--name", "Desk 4"], "no site named 'Nowhere'"),
    ],
)  # fmt: skip
def test_refusals_change_nothing(args: list[str], message: str) -> None:
    before = devices()
    for extra in ([], ["--json"]):
        assert run("test_devices", *args, *extra) == (1, "", f"error: {message}\n")
    assert devices() == before
    assert AuditEntry.objects.count() == 0


def test_an_unknown_identifier_type_is_a_usage_error() -> None:
    with pytest.raises(CommandError) as error:
        run("test_devices", "add", "--name", "X", "--identifier", "A1", "--type", "IMEI")
    assert str(error.value) == (
        "Error: argument --type: invalid choice: 'IMEI' (choose from 'MACAddress', 'SerialNumber')"
    )
    assert devices() == []
