"""`manage.py device_groups` and `manage.py maintenance_windows`: list, set or add,
remove; every refusal is one `error:` line, exit status 1, nothing changed and no
audit row."""

from __future__ import annotations

import datetime as dt
import getpass
import io
import json
import uuid
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from portal.models import (
    AuditEntry,
    DeviceGroup,
    DeviceGroupMember,
    DeviceUpdateRule,
    MaintenanceWindow,
    Pool,
    Site,
)
from portal.services.audit import Actor
from portal.services.fleet import device_group_save, maintenance_window_create
from portal.services.rollout_plans import RolloutPlan, WavePlan
from portal.services.rollouts import rollout_plan

pytestmark = pytest.mark.django_db

SETUP = Actor.system("setup")
ACTOR_NAME = f"manage.py ({getpass.getuser()})"


def run(*args: str) -> tuple[int, str, str]:
    """Exit status, stdout and stderr of one command."""
    out, err = io.StringIO(), io.StringIO()
    try:
        call_command(*args, stdout=out, stderr=err)
    except SystemExit as stop:
        return (stop.code if isinstance(stop.code, int) else 1), out.getvalue(), err.getvalue()
    return 0, out.getvalue(), err.getvalue()


def state() -> dict[str, Any]:
    return {
        "groups": list(DeviceGroup.objects.values_list("pk", "name", "description")),
        "members": list(DeviceGroupMember.objects.values_list("group", "identifier")),
        "windows": list(MaintenanceWindow.objects.values_list("pk", "weekday", "start", "end")),
        "audit": AuditEntry.objects.count(),
    }


# --- device_groups ------------------------------------------------------------------


@pytest.fixture
def pilot(db: None) -> DeviceGroup:
    group = device_group_save(
        name="Pilot", description="IT floor", members=["MAC:0004F2000001"], actor=SETUP
    )
    AuditEntry.objects.all().delete()
    return group


def test_set_creates_a_group(db: None) -> None:
    result = run("device_groups", "set", "Pilot", "--members", "00:04:f2:aa:bb:cc", "sn:cx6-1")

    assert result == (0, "created device group Pilot (2 phones)\n", "")
    group = DeviceGroup.objects.get()
    assert sorted(member.identity for member in group.members.all()) == [
        "MAC:0004F2AABBCC",
        "SN:CX6-1",
    ]
    entry = AuditEntry.objects.get()
    assert (entry.action, entry.actor_name) == ("portal.device_group.created", ACTOR_NAME)


def test_set_changes_only_what_is_given(pilot: DeviceGroup) -> None:
    status, out, err = run(
        "device_groups", "set", "pilot", "--members", "MAC:0004F2000001", "MAC:0004F2000002",
        "--json",
    )  # fmt: skip

    assert (status, err) == (0, "")
    assert json.loads(out) == {
        "ok": True,
        "message": "changed device group Pilot (2 phones)",
        "device_group": {
            "name": "Pilot",
            "description": "IT floor",
            "members": ["MAC:0004F2000001", "MAC:0004F2000002"],
        },
    }
    assert AuditEntry.objects.get().changes == {
        "members": [["MAC:0004F2000001"], ["MAC:0004F2000001", "MAC:0004F2000002"]]
    }


def test_set_renames_and_empties(pilot: DeviceGroup) -> None:
    result = run("device_groups", "set", "Pilot", "--new-name", "Canary", "--members")

    assert result == (0, "changed device group Canary (0 phones)\n", "")
    assert (DeviceGroup.objects.get().name, DeviceGroupMember.objects.count()) == ("Canary", 0)


def test_set_with_nothing_new_reports_unchanged(pilot: DeviceGroup) -> None:
    assert run("device_groups", "set", "Pilot") == (0, "device group Pilot is unchanged\n", "")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["set", "Canary", "--members", "MAC:12"], "'12' is not a MAC address"),
        (["set", "Canary", "--members", "a phone"],
         "'a phone' is neither a MAC address nor a serial number"),
        (["set", "Canary", "--new-name", "PILOT"], "a device group named 'PILOT' already exists"),
        (["set", "x" * 101], "a name of 1 to 100 printable characters is required"),
        (["remove", "Nobody"], "no device group named 'Nobody'"),
        (["list", "--member", "MAC:zz"], "'zz' is not a MAC address"),
    ],
)  # fmt: skip
def test_device_groups_refusals_change_nothing(
    pilot: DeviceGroup, args: list[str], message: str
) -> None:
    before = state()

    result = run("device_groups", *args)

    assert result == (1, "", f"error: {message}\n")
    assert state() == before


def test_a_group_an_active_rollout_names_cannot_be_removed(pilot: DeviceGroup) -> None:
    rule = DeviceUpdateRule.objects.create(
        pool=Pool.objects.get(), rule_id=uuid.uuid4(), device_type="UCPhone", brand="Polycom",
        model="CX600", revision="Rev-1", locale="ENU", update_type="CPE", pending_version="2.0",
    )  # fmt: skip
    plan = RolloutPlan(waves=(WavePlan(groups=("Pilot",)), WavePlan(percent=100)))
    rollout = rollout_plan(rule=rule, plan=plan, actor=SETUP)
    AuditEntry.objects.all().delete()
    before = state()

    result = run("device_groups", "remove", "pilot")

    assert result == (
        1,
        "",
        f"error: device group 'Pilot' is in a wave of active rollout #{rollout.pk}\n",
    )
    assert state() == before


def test_list_and_remove(pilot: DeviceGroup) -> None:
    device_group_save(name="Canary", members=[], actor=SETUP)

    listed = run("device_groups", "list")
    holding = run("device_groups", "list", "--member", "00-04-f2-00-00-01", "--json")
    removed = run("device_groups", "remove", "PILOT")

    assert listed == (
        0,
        "NAME    PHONES  DESCRIPTION\nCanary  0\nPilot   1       IT floor\n",
        "",
    )
    assert json.loads(holding[1]) == [
        {"name": "Pilot", "description": "IT floor", "members": ["MAC:0004F2000001"]}
    ]
    assert removed == (0, "removed device group Pilot\n", "")
    assert list(DeviceGroup.objects.values_list("name", flat=True)) == ["Canary"]


# --- maintenance_windows ------------------------------------------------------------


@pytest.fixture
def sunday(db: None) -> MaintenanceWindow:
    site = Site.objects.create(name="Redmond", time_zone="America/Los_Angeles")
    window = maintenance_window_create(
        site=site, weekday=6, start=dt.time(1), end=dt.time(4), actor=SETUP
    )
    AuditEntry.objects.all().delete()
    return window


def test_add_a_window(sunday: MaintenanceWindow) -> None:
    status, out, err = run(
        "maintenance_windows", "add", "--site", "redmond", "--weekday", "saturday",
        "--start", "22:00", "--end", "23:59", "--json",
    )  # fmt: skip

    window = MaintenanceWindow.objects.get(weekday=5)
    assert (status, err) == (0, "")
    assert json.loads(out) == {
        "ok": True,
        "message": f"added window #{window.pk} Redmond: Saturday 22:00–23:59 (America/Los_Angeles)",
        "maintenance_window": {
            "id": window.pk,
            "site": "Redmond",
            "time_zone": "America/Los_Angeles",
            "weekday": 5,
            "weekday_name": "Saturday",
            "start": "22:00:00",
            "end": "23:59:00",
        },
    }
    entry = AuditEntry.objects.get()
    assert (entry.action, entry.actor_name) == ("portal.maintenance_window.created", ACTOR_NAME)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--weekday", "6", "--start", "03:00", "--end", "05:00"],
         "the window overlaps Redmond: Sunday 01:00–04:00"),
        (["--weekday", "1", "--start", "03:00", "--end", "03:00"],
         "the window 03:00–03:00 is empty: the end must be after the start (split a window "
         "across midnight into two)"),
        (["--weekday", "1", "--start", "23:00", "--end", "01:00"],
         "the window 23:00–01:00 is empty: the end must be after the start (split a window "
         "across midnight into two)"),
        (["--weekday", "7", "--start", "01:00", "--end", "02:00"],
         "7 is not a weekday (0 Monday to 6 Sunday)"),
    ],
)  # fmt: skip
def test_add_refuses_bad_windows_and_changes_nothing(
    sunday: MaintenanceWindow, args: list[str], message: str
) -> None:
    before = state()

    result = run("maintenance_windows", "add", "--site", "Redmond", *args)

    assert result == (1, "", f"error: {message}\n")
    assert state() == before


def test_add_to_an_unknown_site_is_refused(sunday: MaintenanceWindow) -> None:
    before = state()

    result = run(
        "maintenance_windows", "add", "--site", "Atlantis", "--weekday", "1", "--start", "01:00",
        "--end", "02:00",
    )  # fmt: skip

    assert result == (1, "", "error: no site named 'Atlantis'\n")
    assert state() == before


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--weekday", "Funday", "--start", "01:00", "--end", "02:00"],
         "argument --weekday: 'Funday' is not a weekday (0 Monday to 6 Sunday, or its English "
         "name)"),
        (["--weekday", "1", "--start", "24:00", "--end", "02:00"],
         "argument --start: expected HH:MM (00:00 to 23:59), got '24:00'"),
    ],
)  # fmt: skip
def test_add_usage_errors(sunday: MaintenanceWindow, args: list[str], message: str) -> None:
    before = state()

    with pytest.raises(CommandError) as error:
        run("maintenance_windows", "add", "--site", "Redmond", *args)

    assert str(error.value) == f"Error: {message}"
    assert state() == before


def test_list_and_remove_windows(sunday: MaintenanceWindow) -> None:
    listed = run("maintenance_windows", "list")
    removed = run("maintenance_windows", "remove", str(sunday.pk))
    gone = run("maintenance_windows", "remove", str(sunday.pk))

    width = max(2, len(str(sunday.pk)))
    assert listed == (
        0,
        f"{'ID':<{width}}  SITE     TIME ZONE            WEEKDAY  START  END\n"
        f"{sunday.pk:<{width}}  Redmond  America/Los_Angeles  Sunday   01:00  04:00\n",
        "",
    )
    assert removed == (0, f"removed window #{sunday.pk} Redmond: Sunday 01:00–04:00\n", "")
    assert gone == (1, "", f"error: no maintenance window #{sunday.pk}\n")
    assert MaintenanceWindow.objects.count() == 0
    assert AuditEntry.objects.get().action == "portal.maintenance_window.deleted"


def test_list_with_no_windows(db: None) -> None:
    assert run("maintenance_windows", "list") == (
        0,
        "no maintenance windows (every site is always open)\n",
        "",
    )
