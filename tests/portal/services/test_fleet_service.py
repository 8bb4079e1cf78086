"""The fleet services: phone identities, holds and pins, device groups and maintenance
windows; each change audited with the decision generation moved, each refusal changing
nothing."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any

import pytest

from portal.choices import RolloutState, Weekday
from portal.errors import DomainError
from portal.models import (
    AuditEntry,
    DeviceControl,
    DeviceGroup,
    DeviceGroupMember,
    DeviceUpdateRule,
    MaintenanceWindow,
    Rollout,
    RolloutWave,
    Site,
    UpdateVersion,
)
from portal.selectors import device_identity_parse, rule_versions
from portal.services.audit import Actor
from portal.services.fleet import (
    device_group_delete,
    device_group_save,
    device_hold,
    device_pin,
    device_release,
    maintenance_window_create,
    maintenance_window_delete,
)
from portal.services.generation import decision_generation_current
from portal.services.rollout_plans import RolloutPlan, WavePlan
from portal.services.rollouts import rollout_cancel, rollout_halt, rollout_pause, rollout_plan
from tests.factories import CX600, RuleFactory
from tests.factories import RULE_A as RULE_ID

pytestmark = pytest.mark.django_db

Capture = Callable[..., AbstractContextManager[Any]]
ACTOR = Actor.system("tests")
CLASS = vars(CX600)
R, A, P = "4.0.7577.4363", "4.0.7577.4387", "4.0.7577.5000"
MAC = "MAC:0004F2112233"


def make_rule(rule_id: uuid.UUID = RULE_ID, **overrides: str) -> DeviceUpdateRule:
    values = {"pending_version": P, "approved_version": A, "restore_version": R}
    return RuleFactory.create(rule_id=rule_id, **{**values, **overrides})


@pytest.fixture
def rule() -> DeviceUpdateRule:
    return make_rule()


def audit() -> list[tuple[str, str, str, Any]]:
    return [
        (e.action, e.actor_name, e.object_type, e.changes)
        for e in AuditEntry.objects.order_by("id")
    ]


def everything() -> dict[str, Any]:
    """Every row a fleet service may change."""
    return {
        "controls": list(DeviceControl.objects.order_by("id").values()),
        "groups": list(DeviceGroup.objects.order_by("id").values()),
        "members": list(DeviceGroupMember.objects.order_by("id").values()),
        "windows": list(MaintenanceWindow.objects.order_by("id").values()),
        "waves": list(RolloutWave.groups.through.objects.order_by("id").values()),
        "audit": list(AuditEntry.objects.order_by("id").values_list("id", flat=True)),
    }


@pytest.fixture
def moves(django_capture_on_commit_callbacks: Capture) -> Callable[[], Any]:
    """``with moves():`` runs the block, commits, and asserts that the decision
    generation moved."""

    @contextmanager
    def check() -> Iterator[None]:
        before = decision_generation_current()
        with django_capture_on_commit_callbacks(execute=True):
            yield
        assert decision_generation_current() != before

    return check


@pytest.fixture
def refused(django_capture_on_commit_callbacks: Capture) -> Callable[..., Any]:
    """``with refused(message, field) as error:``: the block raises DomainError with this
    message and field, and nothing changed (no row, no audit entry, no generation)."""

    @contextmanager
    def check(message: str, field: str | None, code: str = "invalid") -> Iterator[None]:
        before = everything()
        generation = decision_generation_current()
        with (
            django_capture_on_commit_callbacks(execute=True) as callbacks,
            pytest.raises(DomainError) as error,
        ):
            yield
        assert (error.value.message, error.value.field, error.value.code) == (
            message,
            field,
            code,
        )
        assert everything() == before
        assert callbacks == []
        assert decision_generation_current() == generation

    return check


# --- device_identity_parse ------------------------------------------------------------

MAC_PARSED = ("MAC:0004F2112233", "MACAddress", "0004F2112233")


@pytest.mark.parametrize(
    ("text", "parsed"),
    [
        ("00-04-f2-11-22-33", MAC_PARSED),
        ("00:04:F2:11:22:33", MAC_PARSED),
        ("0004f2112233", MAC_PARSED),
        ("  0004F2112233 ", MAC_PARSED),
        ("MAC:0004f2112233", MAC_PARSED),
        ("mac:00-04-F2-11-22-33", MAC_PARSED),
        ("Mac: 00:04:f2:11:22:33 ", MAC_PARSED),
        ("00-04-f2-11-22-33-44-55", ("MAC:0004F21122334455", "MACAddress", "0004F21122334455")),
        ("px1234-ab_9", ("SN:PX1234-AB_9", "SerialNumber", "PX1234-AB_9")),
        ("SN:px1234", ("SN:PX1234", "SerialNumber", "PX1234")),
        ("sn: px1234 ", ("SN:PX1234", "SerialNumber", "PX1234")),
        ("SN:0004F2112233", ("SN:0004F2112233", "SerialNumber", "0004F2112233")),
        ("0004F21122", ("SN:0004F21122", "SerialNumber", "0004F21122")),  # five pairs
        ("12345", ("SN:12345", "SerialNumber", "12345")),
    ],
)  # fmt: skip
def test_an_identity_is_read_in_every_spelling(text: str, parsed: tuple[str, str, str]) -> None:
    assert device_identity_parse(text) == parsed


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("MAC:zz", "'zz' is not a MAC address"),
        ("MAC:", "'' is not a MAC address"),
        ("mac:00-04:f2-11-22-33", "'00-04:f2-11-22-33' is not a MAC address"),
        ("MAC:0004F2112233 x", "'0004F2112233 x' is not a MAC address"),
        ("", "'' is neither a MAC address nor a serial number"),
        ("   ", "'' is neither a MAC address nor a serial number"),
        ("a b", "'a b' is neither a MAC address nor a serial number"),
        ("SN:a b", "'a b' is neither a MAC address nor a serial number"),
        ("SN:", "'SN:' is neither a MAC address nor a serial number"),
        ("00:04-f2:11:22:33", "'00:04-f2:11:22:33' is neither a MAC address nor a serial number"),
        ("phone#7", "'phone#7' is neither a MAC address nor a serial number"),
        ("X" * 65, f"'{'X' * 65}' is neither a MAC address nor a serial number"),
    ],
)
def test_garbage_is_not_an_identity(text: str, message: str) -> None:
    with pytest.raises(DomainError) as error:
        device_identity_parse(text)
    assert (error.value.message, error.value.field) == (message, "identity")


# --- holds, pins, releases ------------------------------------------------------------


def test_hold_a_phone_in_any_spelling(rule: DeviceUpdateRule, moves: Any) -> None:
    with moves():
        control = device_hold(identity="00-04-f2-11-22-33", rule=rule, actor=ACTOR)
    assert list(DeviceControl.objects.values_list("identity", "rule", "kind", "version")) == [
        (MAC, rule.pk, "hold", "")
    ]
    assert (control.pk, control.actor_name) == (DeviceControl.objects.get().pk, "tests")
    assert audit() == [
        (
            "portal.device.held",
            "tests",
            "portal.devicecontrol",
            {"rule": [None, rule.identity], "kind": [None, "hold"], "version": [None, None]},
        )
    ]


def test_pin_a_phone_to_a_version_in_its_normal_form(rule: DeviceUpdateRule, moves: Any) -> None:
    with moves():
        device_pin(identity="sn:px1234", rule=rule, version="4.0.7577.04363", actor=ACTOR)
    assert list(DeviceControl.objects.values_list("identity", "kind", "version")) == [
        ("SN:PX1234", "pin", R)
    ]
    assert audit() == [
        (
            "portal.device.pinned",
            "tests",
            "portal.devicecontrol",
            {"rule": [None, rule.identity], "kind": [None, "pin"], "version": [None, R]},
        )
    ]


def test_a_pin_replaces_a_hold_and_audits_what_it_was(rule: DeviceUpdateRule) -> None:
    held = device_hold(identity=MAC, rule=rule, actor=ACTOR)
    pinned = device_pin(identity="0004f2112233", rule=rule, version=P, actor=ACTOR)
    assert pinned.pk == held.pk
    assert list(DeviceControl.objects.values_list("identity", "kind", "version")) == [
        (MAC, "pin", P)
    ]
    assert audit()[-1] == (
        "portal.device.pinned",
        "tests",
        "portal.devicecontrol",
        {"rule": [None, rule.identity], "kind": ["hold", "pin"], "version": [None, P]},
    )
    device_hold(identity=MAC, rule=rule, actor=ACTOR)
    assert list(DeviceControl.objects.values_list("kind", "version")) == [("hold", "")]
    assert audit()[-1][3] == {
        "rule": [None, rule.identity],
        "kind": ["pin", "hold"],
        "version": [P, None],
    }


def test_holds_of_one_phone_for_two_rules_are_apart(rule: DeviceUpdateRule) -> None:
    other = make_rule(uuid.uuid4(), model="CX700")
    device_hold(identity=MAC, rule=rule, actor=ACTOR)
    device_pin(identity=MAC, rule=other, version=P, actor=ACTOR)
    assert sorted(DeviceControl.objects.values_list("rule", "kind")) == sorted(
        [(rule.pk, "hold"), (other.pk, "pin")]
    )


@pytest.mark.parametrize(
    ("version", "message", "code"),
    [
        ("9.9", "never had version 9.9", "unknown_version"),
        ("4.0.7577.04999", "never had version 4.0.7577.4999", "unknown_version"),
        ("latest", "'latest' is not a version (dotted integers)", "invalid"),
        ("", "'' is not a version (dotted integers)", "invalid"),
    ],
)
def test_a_pin_to_a_version_the_rule_never_had_is_refused(
    rule: DeviceUpdateRule, refused: Any, version: str, message: str, code: str
) -> None:
    device_hold(identity=MAC, rule=rule, actor=ACTOR)
    if code == "unknown_version":
        message = f"{rule.identity} {message}"
    with refused(message, "version", code):
        device_pin(identity=MAC, rule=rule, version=version, actor=ACTOR)


def test_a_hold_of_garbage_is_refused(rule: DeviceUpdateRule, refused: Any) -> None:
    with refused("'zz' is not a MAC address", "identity"):
        device_hold(identity="MAC:zz", rule=rule, actor=ACTOR)
    with refused("'a b' is neither a MAC address nor a serial number", "identity"):
        device_pin(identity="a b", rule=rule, version=A, actor=ACTOR)


def test_release_lifts_the_hold_or_pin(rule: DeviceUpdateRule, moves: Any) -> None:
    device_pin(identity=MAC, rule=rule, version=R, actor=ACTOR)
    with moves():
        device_release(identity="00:04:f2:11:22:33", rule=rule, actor=ACTOR)
    assert DeviceControl.objects.count() == 0
    assert audit()[-1] == (
        "portal.device.released",
        "tests",
        "portal.devicecontrol",
        {"rule": [rule.identity, None], "kind": ["pin", None], "version": [R, None]},
    )
    device_hold(identity=MAC, rule=rule, actor=ACTOR)
    device_release(identity=MAC, rule=rule, actor=ACTOR)
    assert audit()[-1][3] == {
        "rule": [rule.identity, None],
        "kind": ["hold", None],
        "version": [None, None],
    }


def test_releasing_a_phone_not_held_is_refused(rule: DeviceUpdateRule, refused: Any) -> None:
    other = make_rule(uuid.uuid4(), model="CX700")
    device_hold(identity=MAC, rule=other, actor=ACTOR)
    device_hold(identity="SN:PX1234", rule=rule, actor=ACTOR)
    with refused(f"{MAC} is neither held nor pinned for {rule.identity}", "identity", "not_found"):
        device_release(identity="0004f2112233", rule=rule, actor=ACTOR)
    with refused("'zz' is not a MAC address", "identity"):
        device_release(identity="MAC:zz", rule=rule, actor=ACTOR)


def stored_version(version: str, **overrides: str) -> None:
    values = {**CLASS, "version": version, **overrides}
    UpdateVersion.objects.create(
        **values,
        folder="/".join(values.values()),
        rule_id=RULE_ID,
        signer="CN=Test",
        catalog_digest="sha256",
    )


def test_rule_versions_are_the_stored_ones_of_its_class_and_the_ones_it_names() -> None:
    rule = make_rule(pending_version="5.0", approved_version="4.0", restore_version="")
    stored_version("1.0")
    stored_version("2.0", model="cx600", locale="enu", update_type="cpe")  # any case
    stored_version("3.0", model="CX700")  # another class
    stored_version("3.1", update_type="UEFI")  # another kind of update
    stored_version("3.2", revision="Rev-2")
    assert rule_versions(rule) == {"1.0", "2.0", "4.0", "5.0"}
    rule.pending_version, rule.restore_version = "", "0.9"
    assert rule_versions(rule) == {"0.9", "1.0", "2.0", "4.0"}


def test_a_pin_takes_a_stored_version_the_rule_no_longer_names(
    rule: DeviceUpdateRule,
) -> None:
    stored_version("4.0.7577.1000")
    device_pin(identity=MAC, rule=rule, version="4.0.7577.01000", actor=ACTOR)
    assert DeviceControl.objects.get().version == "4.0.7577.1000"


# --- device groups --------------------------------------------------------------------


def members_of(group: DeviceGroup) -> list[tuple[str, str]]:
    return list(
        DeviceGroupMember.objects.filter(group=group)
        .order_by("identifier_type", "identifier")
        .values_list("identifier_type", "identifier")
    )


def test_create_a_group_with_members_in_any_spelling(moves: Any) -> None:
    with moves():
        group = device_group_save(
            name="  Lab phones ",
            description=" first floor ",
            members=[
                "00-04-f2-11-22-33", "0004F2112233", "px1234", "", "  ", "SN:PX1234",
                "MAC:00:04:F2:AA:BB:CC",
            ],
            actor=ACTOR,
        )  # fmt: skip
    assert (group.name, group.description) == ("Lab phones", "first floor")
    assert members_of(group) == [
        ("MACAddress", "0004F2112233"),
        ("MACAddress", "0004F2AABBCC"),
        ("SerialNumber", "PX1234"),
    ]
    assert audit() == [
        (
            "portal.device_group.created",
            "tests",
            "portal.devicegroup",
            {
                "name": [None, "Lab phones"],
                "description": [None, "first floor"],
                "members": [None, ["MAC:0004F2112233", "MAC:0004F2AABBCC", "SN:PX1234"]],
            },
        )
    ]


def test_create_an_empty_group() -> None:
    group = device_group_save(name="Later", members=[], actor=ACTOR)
    assert members_of(group) == []
    assert audit()[0][3] == {
        "name": [None, "Later"],
        "description": [None, ""],
        "members": [None, []],
    }


def test_rename_a_group_and_replace_its_members(moves: Any) -> None:
    group = device_group_save(
        name="Lab", description="first floor", members=[MAC, "SN:PX1"], actor=ACTOR
    )
    with moves():
        saved = device_group_save(
            name="Pilots", description="first floor", members=["SN:PX1", "SN:PX2"],
            group=group, actor=ACTOR,
        )  # fmt: skip
    assert saved.pk == group.pk
    assert list(DeviceGroup.objects.values_list("pk", "name", "description")) == [
        (group.pk, "Pilots", "first floor")
    ]
    assert members_of(group) == [("SerialNumber", "PX1"), ("SerialNumber", "PX2")]
    assert audit()[-1] == (
        "portal.device_group.changed",
        "tests",
        "portal.devicegroup",
        {
            "name": ["Lab", "Pilots"],
            "members": [[MAC, "SN:PX1"], ["SN:PX1", "SN:PX2"]],
        },
    )


def test_a_group_may_change_the_case_of_its_own_name() -> None:
    group = device_group_save(name="Lab", members=[MAC], actor=ACTOR)
    device_group_save(name="LAB", description="new", members=[MAC], group=group, actor=ACTOR)
    assert DeviceGroup.objects.get().name == "LAB"
    assert audit()[-1][3] == {"name": ["Lab", "LAB"], "description": ["", "new"]}


def test_the_audit_reads_the_members_afresh_when_the_caller_prefetched_them() -> None:
    device_group_save(name="Lab", members=[MAC, "SN:PX1"], actor=ACTOR)
    group = DeviceGroup.objects.prefetch_related("members").get()
    assert [m.identity for m in group.members.all()] == [MAC, "SN:PX1"]  # cached now
    saved = device_group_save(name="Lab", members=["SN:PX2"], group=group, actor=ACTOR)
    assert members_of(group) == [("SerialNumber", "PX2")]
    assert [m.identity for m in saved.members.all()] == ["SN:PX2"]  # not the cached ones
    assert audit()[-1] == (
        "portal.device_group.changed",
        "tests",
        "portal.devicegroup",
        {"members": [[MAC, "SN:PX1"], ["SN:PX2"]]},
    )


@pytest.mark.parametrize("name", ["lab", "LAB", " Lab "])
def test_a_second_group_of_the_same_name_in_any_case_is_refused(refused: Any, name: str) -> None:
    device_group_save(name="Lab", members=[MAC], actor=ACTOR)
    other = device_group_save(name="Pilots", members=["SN:PX1"], actor=ACTOR)
    with refused(f"a device group named {name.strip()!r} already exists", "name"):
        device_group_save(name=name, members=["SN:PX9"], actor=ACTOR)
    with refused(f"a device group named {name.strip()!r} already exists", "name"):
        device_group_save(name=name, members=["SN:PX9"], group=other, actor=ACTOR)


@pytest.mark.parametrize("name", ["", "   ", "x" * 101, "tab\there", "line\nbreak"])
def test_a_group_name_must_be_printable_text(refused: Any, name: str) -> None:
    group = device_group_save(name="Lab", members=[MAC], actor=ACTOR)
    with refused("a name of 1 to 100 printable characters is required", "name"):
        device_group_save(name=name, members=["SN:PX9"], actor=ACTOR)
    with refused("a name of 1 to 100 printable characters is required", "name"):
        device_group_save(name=name, members=["SN:PX9"], group=group, actor=ACTOR)


def test_a_name_of_100_characters_is_taken() -> None:
    assert device_group_save(name="x" * 100, members=[], actor=ACTOR).name == "x" * 100


def test_a_bad_member_is_refused_and_the_group_keeps_its_members(refused: Any) -> None:
    group = device_group_save(name="Lab", members=[MAC], actor=ACTOR)
    with refused("'zz' is not a MAC address", "identity"):
        device_group_save(name="Pilots", members=["SN:PX1", "MAC:zz"], group=group, actor=ACTOR)
    with refused("'a b' is neither a MAC address nor a serial number", "identity"):
        device_group_save(name="New", members=["a b"], actor=ACTOR)
    assert members_of(group) == [("MACAddress", "0004F2112233")]


def test_delete_a_group(moves: Any) -> None:
    group = device_group_save(name="Lab", members=[MAC], actor=ACTOR)
    pk = group.pk
    with moves():
        device_group_delete(group=group, actor=ACTOR)
    assert (DeviceGroup.objects.count(), DeviceGroupMember.objects.count()) == (0, 0)
    assert audit()[-1] == (
        "portal.device_group.deleted",
        "tests",
        "portal.devicegroup",
        {"name": ["Lab", None]},
    )
    assert AuditEntry.objects.order_by("-id").first().object_id == str(pk)  # type: ignore[union-attr]


def group_rollout(rule: DeviceUpdateRule) -> Rollout:
    plan = RolloutPlan(
        waves=(WavePlan(percent=5), WavePlan(groups=("Lab",)), WavePlan(percent=100))
    )
    return rollout_plan(rule=rule, plan=plan, actor=ACTOR)


@pytest.mark.parametrize("state", sorted(RolloutState.active()))
def test_a_group_an_active_rollout_names_is_not_deleted(
    rule: DeviceUpdateRule, refused: Any, state: RolloutState
) -> None:
    group = device_group_save(name="Lab", members=[MAC], actor=ACTOR)
    rollout = group_rollout(rule)
    if state == RolloutState.PAUSED:
        rollout_pause(rollout=rollout, actor=ACTOR)
    elif state == RolloutState.HALTED:
        rollout_halt(rollout=rollout, actor=ACTOR, reason="too many failures")
    with refused(f"device group 'Lab' is in a wave of active rollout #{rollout.pk}", None):
        device_group_delete(group=group, actor=ACTOR)


def test_a_group_is_deleted_once_its_rollout_ended(rule: DeviceUpdateRule) -> None:
    group = device_group_save(name="Lab", members=[MAC], actor=ACTOR)
    rollout = group_rollout(rule)
    rollout_cancel(rollout=rollout, actor=ACTOR)
    device_group_delete(group=group, actor=ACTOR)
    assert DeviceGroup.objects.count() == 0
    assert list(rollout.waves.filter(groups__isnull=False)) == []


# --- maintenance windows --------------------------------------------------------------


def window(site: Site, weekday: int, start: str, end: str) -> MaintenanceWindow:
    return maintenance_window_create(
        site=site,
        weekday=weekday,
        start=dt.time.fromisoformat(start),
        end=dt.time.fromisoformat(end),
        actor=ACTOR,
    )


@pytest.fixture
def default() -> Site:
    return Site.objects.get(name="Default")


def test_create_a_window_in_the_sites_time_zone(default: Site, moves: Any) -> None:
    paris = Site.objects.create(name="Paris", time_zone="Europe/Paris")
    with moves():
        made = window(default, Weekday.MONDAY, "01:00", "04:00")
    window(paris, Weekday.SUNDAY, "22:00", "23:59")
    assert list(
        MaintenanceWindow.objects.order_by("id").values_list(
            "site__name", "weekday", "start", "end"
        )
    ) == [
        ("Default", 0, dt.time(1, 0), dt.time(4, 0)),
        ("Paris", 6, dt.time(22, 0), dt.time(23, 59)),
    ]
    assert made.pk == MaintenanceWindow.objects.order_by("id").first().pk  # type: ignore[union-attr]
    assert audit() == [
        (
            "portal.maintenance_window.created",
            "tests",
            "portal.maintenancewindow",
            {"window": [None, "Default: Monday 01:00–04:00"], "time_zone": [None, "UTC"]},
        ),
        (
            "portal.maintenance_window.created",
            "tests",
            "portal.maintenancewindow",
            {"window": [None, "Paris: Sunday 22:00–23:59"], "time_zone": [None, "Europe/Paris"]},
        ),
    ]


def test_windows_that_only_touch_or_fall_on_another_day_or_site_are_taken(
    default: Site,
) -> None:
    branch = Site.objects.create(name="Branch")
    window(default, Weekday.MONDAY, "01:00", "04:00")
    window(default, Weekday.MONDAY, "04:00", "06:00")  # starts as the other ends
    window(default, Weekday.MONDAY, "00:00", "01:00")  # ends as the other starts
    window(default, Weekday.TUESDAY, "01:00", "04:00")
    window(default, Weekday.SUNDAY, "00:00", "23:59")
    window(branch, Weekday.MONDAY, "01:00", "04:00")
    assert MaintenanceWindow.objects.count() == 6


@pytest.mark.parametrize(
    ("start", "end"),
    [("03:00", "05:00"), ("00:30", "01:30"), ("02:00", "03:00"), ("00:00", "05:00"),
     ("01:00", "04:00"), ("03:59", "04:00")],
)  # fmt: skip
def test_an_overlapping_window_on_the_same_day_is_refused(
    default: Site, refused: Any, start: str, end: str
) -> None:
    window(default, Weekday.MONDAY, "01:00", "04:00")
    with refused("the window overlaps Default: Monday 01:00–04:00", "start"):
        window(default, Weekday.MONDAY, start, end)


@pytest.mark.parametrize(("start", "end"), [("04:00", "04:00"), ("22:00", "02:00")])
def test_an_empty_window_is_refused(default: Site, refused: Any, start: str, end: str) -> None:
    with refused(
        f"the window {start}–{end} is empty: the end must be after the start "
        "(split a window across midnight into two)",
        "end",
    ):
        window(default, Weekday.MONDAY, start, end)


@pytest.mark.parametrize("weekday", [7, -1, 99])
def test_a_window_on_no_weekday_is_refused(default: Site, refused: Any, weekday: int) -> None:
    with refused(f"{weekday} is not a weekday (0 Monday to 6 Sunday)", "weekday"):
        window(default, weekday, "01:00", "04:00")


def test_delete_a_window(default: Site, moves: Any) -> None:
    made = window(default, Weekday.FRIDAY, "20:00", "23:00")
    pk = made.pk
    with moves():
        maintenance_window_delete(window=made, actor=ACTOR)
    assert MaintenanceWindow.objects.count() == 0
    assert audit()[-1] == (
        "portal.maintenance_window.deleted",
        "tests",
        "portal.maintenancewindow",
        {"window": ["Default: Friday 20:00–23:00", None]},
    )
    assert AuditEntry.objects.order_by("-id").first().object_id == str(pk)  # type: ignore[union-attr]
    window(default, Weekday.FRIDAY, "20:00", "23:00")  # the slot is free again
