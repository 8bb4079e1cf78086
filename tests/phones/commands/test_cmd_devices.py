"""`manage.py devices`: show a phone (inventory, holds and pins, observed outcomes), hold,
pin, release and list; every refusal is one `error:` line, exit status 1, nothing
changed and no audit row."""

from __future__ import annotations

import datetime as dt
import getpass
import io
import json
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

from phones.choices import Channel, DeviceState, ObservedState
from phones.models import Device, DeviceOutcome
from portal.models import AuditEntry, DeviceControl, DeviceUpdateRule
from portal.services.audit import Actor
from portal.services.fleet import device_hold, device_pin

pytestmark = pytest.mark.django_db

SETUP = Actor.system("setup")
ACTOR_NAME = f"manage.py ({getpass.getuser()})"
GUID = "2de8cbf6-8a1e-4bc0-9d9e-0b2b5a1c1f11"


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
        "controls": list(
            DeviceControl.objects.values_list("pk", "identity", "rule", "kind", "version")
        ),
        "audit": AuditEntry.objects.count(),
    }


@pytest.fixture
def identity(rule: DeviceUpdateRule) -> str:
    """The rule's identity; it had 4.0.7577.4363, 4.0.7577.4387 and 4.0.7577.5000."""
    return rule.identity


def when(value: dt.datetime) -> str:
    return f"{value:%Y-%m-%d %H:%M}"


# --- hold, pin, release -------------------------------------------------------------


def test_hold_a_phone(identity: str) -> None:
    result = run("devices", "hold", "00:04:f2:aa:bb:cc", "--rule", identity)

    assert result == (0, f"MAC:0004F2AABBCC held for {identity}\n", "")
    control = DeviceControl.objects.get()
    assert (control.identity, control.kind, control.version, control.actor_name) == (
        "MAC:0004F2AABBCC",
        "hold",
        "",
        ACTOR_NAME,
    )
    entry = AuditEntry.objects.get()
    assert (entry.action, entry.actor_name) == ("portal.device.held", ACTOR_NAME)


def test_pin_a_phone_as_json(identity: str) -> None:
    status, out, err = run(
        "devices", "pin", "SN:cx6-0012", "--rule", identity, "--version", "4.0.7577.4363", "--json"
    )

    control = DeviceControl.objects.get()
    assert (status, err) == (0, "")
    assert json.loads(out) == {
        "ok": True,
        "message": f"SN:CX6-0012 pinned to 4.0.7577.4363 for {identity}",
        "control": {
            "id": control.pk,
            "identity": "SN:CX6-0012",
            "rule": identity,
            "device_class": "UCPhone/Polycom/CX600/Rev-1/ENU/CPE",
            "kind": "pin",
            "version": "4.0.7577.4363",
            "actor_name": ACTOR_NAME,
            "created_at": control.created_at.isoformat(),
        },
    }
    assert AuditEntry.objects.get().action == "portal.device.pinned"


REFUSALS: list[tuple[list[str], str]] = [
    (["pin", "MAC:0004F2AABBCC", "--rule", "{identity}", "--version", "9.9.9"],
     "{identity} never had version 9.9.9"),
    (["pin", "MAC:0004F2AABBCC", "--rule", "{identity}", "--version", "latest"],
     "'latest' is not a version (dotted integers)"),
    (["hold", "not a phone", "--rule", "{identity}"],
     "'not a phone' is neither a MAC address nor a serial number"),
    (["hold", "MAC:00-04", "--rule", "{identity}"], "'00-04' is not a MAC address"),
    (["hold", "MAC:0004F2AABBCC", "--rule", f"service:WebServer:nowhere.example.org/{GUID}"],
     f"no rule service:WebServer:nowhere.example.org/{GUID}"),
    (["pin", "MAC:0004F2AABBCC", "--rule", "garbage", "--version", "1.0"],
     "'garbage' is not a rule identity (service:WebServer:<pool FQDN>/<rule Id>)"),
    (["release", "MAC:0004F2AABBCC", "--rule", "{identity}"],
     "MAC:0004F2AABBCC is neither held nor pinned for {identity}"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("args", "message"),
    REFUSALS,
    ids=[" ".join(args[:2]) + f" {n}" for n, (args, _) in enumerate(REFUSALS)],
)
def test_bad_input_is_refused_and_changes_nothing(
    identity: str, args: list[str], message: str
) -> None:
    device_hold(identity="MAC:0004F2000001", rule=DeviceUpdateRule.objects.get(), actor=SETUP)
    AuditEntry.objects.all().delete()
    before = state()

    result = run("devices", *(arg.format(identity=identity) for arg in args))

    assert result == (1, "", f"error: {message.format(identity=identity)}\n")
    assert state() == before


def test_pin_needs_a_version(identity: str) -> None:
    with pytest.raises(CommandError) as error:
        run("devices", "pin", "MAC:0004F2AABBCC", "--rule", identity)

    assert str(error.value) == "Error: the following arguments are required: --version"
    assert DeviceControl.objects.count() == 0


def test_release_lifts_a_pin(identity: str, rule: DeviceUpdateRule) -> None:
    device_pin(identity="MAC:0004F2AABBCC", rule=rule, version="4.0.7577.4363", actor=SETUP)
    AuditEntry.objects.all().delete()

    result = run("devices", "release", "0004f2aabbcc", "--rule", identity, "--json")

    assert result[0] == 0
    assert json.loads(result[1]) == {
        "ok": True,
        "message": f"MAC:0004F2AABBCC released for {identity}",
        "control": None,
    }
    assert DeviceControl.objects.count() == 0
    entry = AuditEntry.objects.get()
    assert (entry.action, entry.actor_name) == ("portal.device.released", ACTOR_NAME)


# --- controls -----------------------------------------------------------------------


@pytest.fixture
def controls(rule: DeviceUpdateRule) -> list[DeviceControl]:
    found = [
        device_pin(identity="SN:CX6-1", rule=rule, version="4.0.7577.4363", actor=SETUP),
        device_hold(identity="MAC:0004F2000001", rule=rule, actor=SETUP),
    ]
    AuditEntry.objects.all().delete()
    return found


def test_controls_lists_holds_and_pins(identity: str, controls: list[DeviceControl]) -> None:
    pinned, held = controls

    status, out, err = run("devices", "controls")

    assert (status, err) == (0, "")
    rule_column = f"{'RULE':<{len(identity)}}"
    assert out.splitlines() == [
        f"IDENTITY          KIND  VERSION        {rule_column}  BY     SINCE",
        f"MAC:0004F2000001  hold  -              {identity}  setup  {when(held.created_at)}",
        f"SN:CX6-1          pin   4.0.7577.4363  {identity}  setup  {when(pinned.created_at)}",
    ]


@pytest.mark.parametrize(
    ("args", "expected"),
    [([], ["MAC:0004F2000001", "SN:CX6-1"]), (["--kind", "pin"], ["SN:CX6-1"]),
     (["--rule", "{identity}"], ["MAC:0004F2000001", "SN:CX6-1"])],
)  # fmt: skip
def test_controls_as_json_with_filters(
    identity: str, controls: list[DeviceControl], args: list[str], expected: list[str]
) -> None:
    status, out, err = run(
        "devices", "controls", *(arg.format(identity=identity) for arg in args), "--json"
    )

    assert (status, err) == (0, "")
    assert [control["identity"] for control in json.loads(out)] == expected


def test_controls_with_nothing_to_show(identity: str) -> None:
    assert run("devices", "controls") == (0, "no held or pinned phones\n", "")


# --- show ---------------------------------------------------------------------------


@pytest.fixture
def known_phone(rule: DeviceUpdateRule, settings: Any) -> dict[str, Any]:
    """A phone in the inventory, held for the rule, that failed its pending version."""
    seen = timezone.now().replace(microsecond=0)
    device = Device.objects.create(
        identity="MAC:0004F2000001", mac="0004F2000001", device_type="UCPhone",
        brand="Polycom", model="CX600", revision="Rev-1", locale="ENU",
        installed={"CPE": "4.0.7577.4387"}, targets={"CPE": "4.0.7577.4387"},
        state=DeviceState.HELD, first_seen=seen - dt.timedelta(days=3), last_seen=seen,
        last_user="alice@contoso.com", last_address="10.0.0.7",
        last_channel=Channel.INTERNAL, last_server=settings.SERVER_FQDN,
    )  # fmt: skip
    control = device_hold(identity=device.identity, rule=rule, actor=SETUP)
    offered = seen - dt.timedelta(hours=5)
    outcome = DeviceOutcome.objects.create(
        identity=device.identity, rule=rule, version="4.0.7577.5000",
        state=ObservedState.FAILED, offered_first=offered, offered_last=offered,
        offered_count=2, downloaded_at=offered, failed_at=seen,
        failure="still reports 4.0.7577.4387", last_seen=seen, updated_at=seen,
    )  # fmt: skip
    AuditEntry.objects.all().delete()
    return {"device": device, "control": control, "outcome": outcome, "seen": seen,
            "offered": offered}  # fmt: skip


def test_show_a_phone(identity: str, known_phone: dict[str, Any], settings: Any) -> None:
    seen, offered = known_phone["seen"], known_phone["offered"]

    status, out, err = run("devices", "show", "00-04-F2-00-00-01")

    assert (status, err) == (0, "")
    assert out.splitlines() == [
        "phone MAC:0004F2000001",
        "  UCPhone Polycom CX600 Rev-1 ENU",
        "  state       held",
        "  installed   CPE 4.0.7577.4387",
        "  targets     CPE 4.0.7577.4387",
        f"  last seen   {when(seen)} on {settings.SERVER_FQDN} (internal, 10.0.0.7, "
        "user alice@contoso.com)",
        f"  first seen  {when(seen - dt.timedelta(days=3))}",
        "",
        "holds and pins:",
        f"  held for {identity} by setup",
        "",
        "observed outcomes:",
        f"{'RULE':<{len(identity)}}  VERSION        STATE   OFFERED  FIRST OFFERED     "
        "DOWNLOADED        RUNNING  FAILED            WHY",
        f"{identity}  4.0.7577.5000  failed  2        {when(offered)}  {when(offered)}  -        "
        f"{when(seen)}  still reports 4.0.7577.4387",
    ]  # fmt: skip


def test_show_a_phone_as_json(identity: str, known_phone: dict[str, Any], settings: Any) -> None:
    device, control = known_phone["device"], known_phone["control"]
    seen, offered = known_phone["seen"], known_phone["offered"]

    status, out, err = run("devices", "show", "MAC:0004F2000001", "--json")

    assert (status, err) == (0, "")
    assert json.loads(out) == {
        "identity": "MAC:0004F2000001",
        "device": {
            "identity": "MAC:0004F2000001", "mac": "0004F2000001", "serial": "",
            "device_type": "UCPhone", "brand": "Polycom", "model": "CX600",
            "revision": "Rev-1", "locale": "ENU", "installed": {"CPE": "4.0.7577.4387"},
            "targets": {"CPE": "4.0.7577.4387"}, "state": "held", "test_device": False,
            "first_seen": device.first_seen.isoformat(), "last_seen": seen.isoformat(),
            "last_user": "alice@contoso.com", "last_address": "10.0.0.7",
            "last_channel": "internal", "last_server": settings.SERVER_FQDN,
        },
        "controls": [
            {"id": control.pk, "identity": "MAC:0004F2000001", "rule": identity,
             "device_class": "UCPhone/Polycom/CX600/Rev-1/ENU/CPE", "kind": "hold",
             "version": "", "actor_name": "setup", "created_at": control.created_at.isoformat()},
        ],
        "outcomes": [
            {"rule": identity, "device_class": "UCPhone/Polycom/CX600/Rev-1/ENU/CPE",
             "version": "4.0.7577.5000", "state": "failed",
             "offered_first": offered.isoformat(), "offered_last": offered.isoformat(),
             "offered_count": 2, "downloaded_at": offered.isoformat(), "running_at": None,
             "failed_at": seen.isoformat(), "failure": "still reports 4.0.7577.4387",
             "last_seen": seen.isoformat(), "updated_at": seen.isoformat()},
        ],
    }  # fmt: skip


def test_show_a_phone_known_only_by_its_hold(identity: str, rule: DeviceUpdateRule) -> None:
    device_hold(identity="SN:CX6-7", rule=rule, actor=SETUP)

    result = run("devices", "show", "sn:cx6-7")

    assert result == (
        0,
        "phone SN:CX6-7\n  not in the inventory (it has not checked in)\n\nholds and pins:\n"
        f"  held for {identity} by setup\n\nno observed outcomes\n",
        "",
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [("MAC:0004F2999999", "no phone MAC:0004F2999999 in the inventory"),
     ("x!y", "'x!y' is neither a MAC address nor a serial number")],
)  # fmt: skip
def test_show_an_unknown_phone_is_refused(identity: str, text: str, message: str) -> None:
    assert run("devices", "show", text) == (1, "", f"error: {message}\n")
