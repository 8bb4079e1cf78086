"""The update check under rollouts, holds, pins, maintenance windows and the offer cap."""

from __future__ import annotations

import datetime as dt
import multiprocessing
import threading
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.test import Client
from pytest_django.fixtures import Settings

from phones import decision
from phones.decision import decision_tables, offer_for_request
from phones.models import Device, RequestAudit
from phones.offercap import offer_take
from phones.protocol import Module, UpdateCheck
from phones.selectors import device_what_if
from phones.services.spool_loader import spool_load_once
from portal.choices import Weekday
from portal.models import DeviceUpdateRule, Rollout, Server, Site, TestDevice
from portal.services.audit import Actor
from portal.services.fleet import device_hold, device_pin, maintenance_window_create
from portal.services.rollout_plans import RolloutPlan, WavePlan
from portal.services.rollouts import (
    rollout_cancel,
    rollout_halt,
    rollout_pause,
    rollout_plan,
    rollout_restore,
)
from portal.services.topology import topology_save
from portal.waves import bucket
from tests.phones.conftest import CLASS, RULE_ID, stored_version
from tests.phones.test_update_check import NOTHING, A, P, R, check, request_xml, same_offer

pytestmark = pytest.mark.django_db

ACTOR = Actor.system("tests")
# Saturday 12:00 UTC is Sunday 01:00 in Auckland (NZDT, UTC+13).
SUNDAY_1AM_AUCKLAND = dt.datetime(2026, 1, 3, 12, 0, tzinfo=dt.UTC)


@pytest.fixture(autouse=True)
def private_data_dir(settings: Settings, tmp_path: Path) -> None:
    """Each test counts its offers in a counter file of its own."""
    settings.DATA_DIR = tmp_path


def clock(monkeypatch: pytest.MonkeyPatch, moment: dt.datetime) -> None:
    monkeypatch.setattr(decision, "now", lambda: moment)


def mac_with_bucket(wanted: int) -> str:
    """A MAC (as a phone spells it) whose bucket for the rule is exactly ``wanted``."""
    for number in range(1, 1_000_000):
        mac = f"0004F2{number:06X}"
        if bucket(str(RULE_ID), f"MAC:{mac}") == wanted:
            return "-".join(mac[i : i + 2] for i in range(0, 12, 2))
    raise AssertionError(f"no MAC with bucket {wanted}")


IN_25 = mac_with_bucket(2499)  # the last bucket a 25 % wave takes
OUT_25 = mac_with_bucket(2500)  # the first one it leaves


def plan(rule: DeviceUpdateRule, *percents: int) -> Rollout:
    waves = tuple(WavePlan(percent=percent) for percent in percents)
    return rollout_plan(rule=rule, plan=RolloutPlan(waves=waves), actor=ACTOR)


def audited() -> list[tuple[str, list[dict[str, str]]]]:
    spool_load_once()
    return [
        (row.outcome, row.response_modules)
        for row in RequestAudit.objects.order_by("created_at", "id")
    ]


def answer(rule: DeviceUpdateRule, installed: str, target: str, outcome: str, why: str) -> Any:
    return [
        {
            "update_type": "CPE", "rule": rule.identity, "installed": installed,
            "target": target, "outcome": outcome, "why": why,
        }
    ]  # fmt: skip


def set_offer_cap(cap: int) -> Server:
    server = Server.objects.get(fqdn=settings.SERVER_FQDN)
    server.offer_cap_per_minute = cap
    topology_save(obj=server, actor=ACTOR)
    return server


def auckland_sunday_window(site: Site) -> None:
    site.time_zone = "Pacific/Auckland"
    topology_save(obj=site, actor=ACTOR)
    maintenance_window_create(
        site=site, weekday=Weekday.SUNDAY, start=dt.time(1, 0), end=dt.time(4, 0), actor=ACTOR
    )


def test_a_warm_check_makes_no_database_query_with_rollouts_holds_windows_and_a_cap(
    client: Client,
    rule: DeviceUpdateRule,
    monkeypatch: pytest.MonkeyPatch,
    django_assert_num_queries: Any,
) -> None:
    plan(rule, 25, 100)
    device_hold(identity=OUT_25, rule=rule, actor=ACTOR)
    auckland_sunday_window(rule.pool.site)
    set_offer_cap(100)
    clock(monkeypatch, SUNDAY_1AM_AUCKLAND)
    check(client, request_xml())  # builds the table

    with django_assert_num_queries(0):
        in_wave = check(client, request_xml(mac=IN_25))[1]
        held = check(client, request_xml(mac=OUT_25))

    assert same_offer(in_wave, P)
    assert held == (200, NOTHING)


# Rollouts


def test_a_running_rollout_offers_its_version_to_the_phones_of_its_wave_only(
    client: Client, rule: DeviceUpdateRule
) -> None:
    plan(rule, 25, 100)

    assert same_offer(check(client, request_xml(mac=IN_25))[1], P)
    assert same_offer(check(client, request_xml(mac=OUT_25))[1], A)
    assert check(client, request_xml(mac=IN_25, version=P)) == (200, NOTHING)
    wave_1 = "pending (rollout wave 1)"
    assert audited() == [
        ("offered", answer(rule, R, P, "offered", f"offered the {wave_1} version")),
        ("offered", answer(rule, R, A, "offered", "offered the approved version")),
        ("up to date", answer(rule, P, P, "up to date", f"runs the {wave_1} version")),
    ]


@pytest.mark.parametrize(
    ("stop", "state"),
    [
        (lambda r: rollout_pause(rollout=r, actor=ACTOR), "paused"),
        (lambda r: rollout_halt(rollout=r, actor=ACTOR, reason="wave 1: 3 failed"), "halted"),
        (lambda r: rollout_cancel(rollout=r, actor=ACTOR), "cancelled"),
    ],
)
def test_a_stopped_rollout_keeps_the_phones_running_it_and_reaches_no_new_phone(
    client: Client, rule: DeviceUpdateRule, stop: Callable[[Rollout], Rollout], state: str
) -> None:
    stop(plan(rule, 25, 100))

    assert check(client, request_xml(mac=IN_25, version=P)) == (200, NOTHING)
    assert same_offer(check(client, request_xml(mac=IN_25))[1], A)
    assert same_offer(check(client, request_xml(mac=OUT_25))[1], A)
    assert [outcome for outcome, _ in audited()] == ["up to date", "offered", "offered"]
    assert RequestAudit.objects.order_by("created_at", "id")[0].response_modules == answer(
        rule, P, P, "up to date", f"runs the pending (rollout {state}) version"
    )


def test_a_restore_sends_the_phones_of_the_rollout_back_to_the_approved_version(
    client: Client, rule: DeviceUpdateRule
) -> None:
    rollout_restore(rollout=plan(rule, 25, 100), actor=ACTOR)

    assert same_offer(check(client, request_xml(mac=IN_25, version=P))[1], A)
    assert same_offer(check(client, request_xml(mac=OUT_25, version=P))[1], A)


def test_a_test_device_still_gets_the_pending_version_during_a_rollout(
    client: Client, rule: DeviceUpdateRule
) -> None:
    TestDevice.objects.create(
        name="lab", identifier_type="MACAddress", identifier=OUT_25.replace("-", "")
    )
    plan(rule, 25, 100)

    assert same_offer(check(client, request_xml(mac=OUT_25))[1], P)


# Holds and pins


@pytest.mark.parametrize("test_device", [False, True])
def test_a_held_phone_is_offered_nothing_and_audited_held(
    client: Client, rule: DeviceUpdateRule, test_device: bool
) -> None:
    if test_device:
        TestDevice.objects.create(
            name="lab", identifier_type="MACAddress", identifier=IN_25.replace("-", "")
        )
    plan(rule, 25, 100)
    device_hold(identity=IN_25, rule=rule, actor=ACTOR)

    assert check(client, request_xml(mac=IN_25)) == (200, NOTHING)
    assert same_offer(check(client, request_xml(mac=OUT_25))[1], A)
    assert audited()[0] == ("held", answer(rule, R, P, "held", "held for this rule"))
    assert Device.objects.get(mac=IN_25.replace("-", "")).state == "held"


def test_a_pinned_phone_is_offered_its_pinned_version(
    client: Client, rule: DeviceUpdateRule
) -> None:
    plan(rule, 25, 100)
    device_pin(identity=IN_25, rule=rule, version=R, actor=ACTOR)

    assert same_offer(check(client, request_xml(mac=IN_25, version=P))[1], R)
    assert check(client, request_xml(mac=IN_25, version=R)) == (200, NOTHING)
    assert audited() == [
        ("offered", answer(rule, P, R, "offered", "offered the pinned version")),
        ("up to date", answer(rule, R, R, "up to date", "runs the pinned version")),
    ]


def test_a_pin_to_a_version_not_verified_on_this_server_is_not_offered(
    client: Client, rule: DeviceUpdateRule
) -> None:
    stored_version("4.0.7577.4000", verified_on=None)
    device_pin(identity=IN_25, rule=rule, version="4.0.7577.4000", actor=ACTOR)

    assert check(client, request_xml(mac=IN_25)) == (200, NOTHING)
    assert audited() == [
        (
            "not replicated",
            answer(
                rule, R, "4.0.7577.4000", "not replicated",
                "the pinned version 4.0.7577.4000 is not verified on this server yet",
            ),
        )
    ]  # fmt: skip


# Maintenance windows


@pytest.mark.parametrize(
    ("moment", "offered"),
    [
        (SUNDAY_1AM_AUCKLAND, True),  # Sunday 01:00 local, the start: inside
        (dt.datetime(2026, 1, 3, 14, 59, 59, tzinfo=dt.UTC), True),  # 03:59:59 local
        (dt.datetime(2026, 1, 3, 15, 0, tzinfo=dt.UTC), False),  # 04:00 local, the end
        (dt.datetime(2026, 1, 3, 11, 59, 59, tzinfo=dt.UTC), False),  # 00:59:59 local
        (dt.datetime(2026, 1, 4, 2, 0, tzinfo=dt.UTC), False),  # Sunday 02:00 UTC, 15:00 local
    ],
)
def test_new_versions_are_offered_only_inside_the_sites_maintenance_windows(
    client: Client,
    rule: DeviceUpdateRule,
    monkeypatch: pytest.MonkeyPatch,
    moment: dt.datetime,
    offered: bool,
) -> None:
    auckland_sunday_window(rule.pool.site)
    clock(monkeypatch, moment)

    status, body = check(client, request_xml())

    assert status == 200
    assert same_offer(body, A) if offered else body == NOTHING
    expected = (
        ("offered", answer(rule, R, A, "offered", "offered the approved version"))
        if offered
        else ("deferred", answer(rule, R, A, "deferred", "outside the maintenance window"))
    )
    assert audited() == [expected]
    assert Device.objects.get().state == ("update offered" if offered else "deferred")


def test_a_phone_running_its_target_outside_the_window_is_up_to_date(
    client: Client, rule: DeviceUpdateRule, monkeypatch: pytest.MonkeyPatch
) -> None:
    auckland_sunday_window(rule.pool.site)
    clock(monkeypatch, SUNDAY_1AM_AUCKLAND - dt.timedelta(hours=1))

    assert check(client, request_xml(version=A)) == (200, NOTHING)
    assert [outcome for outcome, _ in audited()] == ["up to date"]


def test_test_devices_ignore_maintenance_windows(
    client: Client, rule: DeviceUpdateRule, monkeypatch: pytest.MonkeyPatch
) -> None:
    TestDevice.objects.create(name="lab", identifier_type="MACAddress", identifier="0004F2112233")
    auckland_sunday_window(rule.pool.site)
    clock(monkeypatch, SUNDAY_1AM_AUCKLAND - dt.timedelta(hours=1))

    assert same_offer(check(client, request_xml())[1], P)


def test_a_site_without_windows_is_always_open(
    client: Client, rule: DeviceUpdateRule, monkeypatch: pytest.MonkeyPatch
) -> None:
    auckland_sunday_window(Site.objects.create(name="Auckland"))
    clock(monkeypatch, SUNDAY_1AM_AUCKLAND - dt.timedelta(hours=1))

    assert same_offer(check(client, request_xml())[1], A)


# The offer cap


def test_the_offer_cap_lets_that_many_checks_a_minute_be_offered(
    client: Client, rule: DeviceUpdateRule, monkeypatch: pytest.MonkeyPatch
) -> None:
    set_offer_cap(3)
    macs = [f"00-04-F2-00-00-{number:02X}" for number in range(10)]
    clock(monkeypatch, dt.datetime(2026, 1, 5, 9, 0, 0, tzinfo=dt.UTC))

    first = [check(client, request_xml(mac=mac))[1] != NOTHING for mac in macs]
    up_to_date = check(client, request_xml(mac="00-04-F2-00-00-AA", version=A))
    clock(monkeypatch, dt.datetime(2026, 1, 5, 9, 0, 59, tzinfo=dt.UTC))
    same_minute = check(client, request_xml(mac=macs[3]))
    clock(monkeypatch, dt.datetime(2026, 1, 5, 9, 1, 0, tzinfo=dt.UTC))
    next_minute = [check(client, request_xml(mac=mac))[1] != NOTHING for mac in macs[3:]]

    assert first == [True] * 3 + [False] * 7
    assert up_to_date == (200, NOTHING)
    assert same_minute == (200, NOTHING)
    assert next_minute == [True] * 3 + [False] * 4
    outcomes = audited()
    assert [outcome for outcome, _ in outcomes].count("deferred") == 7 + 1 + 4
    assert outcomes[3] == (
        "deferred", answer(rule, R, A, "deferred", "offer cap reached")
    )  # fmt: skip


def test_a_check_offered_several_modules_takes_one_offer(
    client: Client, rule: DeviceUpdateRule, server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    stored_version(A, update_type="UCPE", verified_on=server)
    DeviceUpdateRule.objects.create(
        pool=rule.pool, rule_id=uuid.uuid4(), update_type="UCPE", approved_version=A, **CLASS
    )
    set_offer_cap(2)
    clock(monkeypatch, dt.datetime(2026, 1, 5, 9, 0, tzinfo=dt.UTC))

    bodies = [check(client, request_xml(mac=f"00-04-F2-00-00-0{n}"))[1] for n in range(3)]

    assert [body.count("<Module>") for body in bodies] == [2, 2, 0]
    assert [outcome for outcome, _ in audited()] == ["offered", "offered", "deferred"]


def test_concurrent_checks_never_pass_the_offer_cap(
    rule: DeviceUpdateRule, monkeypatch: pytest.MonkeyPatch
) -> None:
    set_offer_cap(150)
    clock(monkeypatch, dt.datetime(2026, 1, 5, 9, 0, tzinfo=dt.UTC))
    checks = [
        UpdateCheck(
            device_type="UCPhone", mac=f"0004F201{n:04X}", serial="", vendor="Polycom",
            model="CX600", revision="Rev-1", locale="ENU", user_id="",
            modules=(Module(update_type="CPE", file_name="CPE.nbt", version=R, timestamp=""),),
        )
        for n in range(8 * 50)
    ]  # fmt: skip
    decision_tables.get()  # built once, before the threads
    start = threading.Barrier(8)
    offered = [0] * 8

    def phones(index: int) -> None:
        start.wait()
        for one in checks[index::8]:
            offered[index] += bool(offer_for_request(check=one).offered)

    threads = [threading.Thread(target=phones, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sum(offered) == 150


def _take_many(data_dir: str, times: int, start: Any, results: Any) -> None:
    """A forked process taking offers from the shared counter file."""
    settings.DATA_DIR = Path(data_dir)
    moment = dt.datetime(2026, 1, 5, 9, 0, tzinfo=dt.UTC)
    start.wait()
    results.put(
        sum(offer_take(server_fqdn="fe01.example.org", cap=500, now=moment) for _ in range(times))
    )


def test_processes_share_one_offer_budget(tmp_path: Path) -> None:
    context = multiprocessing.get_context("fork")
    start, results = context.Barrier(4), context.Queue()
    processes = [
        context.Process(target=_take_many, args=(str(tmp_path), 250, start, results))
        for _ in range(4)
    ]
    for process in processes:
        process.start()
    taken = [results.get(timeout=60) for _ in processes]
    for process in processes:
        process.join()

    assert sum(taken) == 500
    assert [process.exitcode for process in processes] == [0] * 4
    assert (tmp_path / "offer-cap" / "fe01.example.org.count").read_text() == (
        f"{29460060:020d} {500:012d}\n"  # minutes since the epoch, offers taken
    )


def test_without_a_cap_no_counter_file_is_written(tmp_path: Path) -> None:
    moment = dt.datetime(2026, 1, 5, 9, 0, tzinfo=dt.UTC)

    assert all(offer_take(server_fqdn="fe01.example.org", cap=0, now=moment) for _ in range(5))
    assert not (tmp_path / "offer-cap").exists()


def test_the_what_if_never_spends_the_offer_cap(
    client: Client, rule: DeviceUpdateRule, monkeypatch: pytest.MonkeyPatch
) -> None:
    set_offer_cap(1)
    clock(monkeypatch, dt.datetime(2026, 1, 5, 9, 0, tzinfo=dt.UTC))
    check(client, request_xml(version=A))  # in the inventory, up to date
    spool_load_once()
    device = Device.objects.get()
    device.installed = {"CPE": R}

    what_if = [device_what_if(device=device).outcome for _ in range(3)]

    assert what_if == ["offered"] * 3
    assert same_offer(check(client, request_xml())[1], A)
    assert check(client, request_xml(mac="00-04-F2-00-00-01")) == (200, NOTHING)
