"""Staged rollouts through the API: plan, list, detail, the state machine's actions, the
phones' progress per wave and a phone's observed outcomes; every bad input of the
issue refused with its one message, nothing changed, no audit row."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import pytest
from rest_framework.test import APIClient

from phones.choices import ObservedState
from phones.models import Device, DeviceOutcome
from portal.models import (
    AuditEntry,
    DeviceUpdateRule,
    Pool,
    Rollout,
    RolloutWave,
    Server,
    Site,
)
from portal.services.audit import Actor
from portal.services.fleet import device_group_save
from portal.services.rollout_plans import WavePlan
from portal.services.rollouts import rollout_pause
from tests.factories import AASTRA, RULE_A, RULE_B, DeviceFactory, RolloutFactory

pytestmark = pytest.mark.django_db

IDENTITY = f"service:WebServer:pool01.example.org/{RULE_A}"
SETUP = Actor.system("setup")
PLAN = {"rule": IDENTITY, "waves": [5, "25", "site:redmond", "group:PILOT", 100]}


def iso(value: dt.datetime | None) -> str | None:
    """A datetime as DRF writes it."""
    return None if value is None else value.isoformat().replace("+00:00", "Z")


@pytest.fixture
def rule(make_rule: Any) -> DeviceUpdateRule:
    return make_rule(pending="4.0.2", approved="4.0.1", restore="4.0.0")


@pytest.fixture
def targets(db: None) -> None:
    """A site and a device group for waves to name; no audit rows."""
    Site.objects.create(name="Redmond", time_zone="America/Los_Angeles")
    device_group_save(name="Pilot", members=["00:04:f2:00:00:01", "00:04:f2:00:00:02"], actor=SETUP)
    AuditEntry.objects.all().delete()


def planned(rule: DeviceUpdateRule, *waves: WavePlan, **gates: Any) -> Rollout:
    rollout = RolloutFactory.create(rule=rule, waves=waves, actor=SETUP, **gates)
    AuditEntry.objects.all().delete()
    return rollout


def state() -> dict[str, Any]:
    """Everything a refused request could have changed."""
    return {
        "rollouts": list(Rollout.objects.values_list("pk", "state", "current_wave", "reason")),
        "waves": list(RolloutWave.objects.values_list("pk", "started_at", "completed_at")),
        "rules": list(
            DeviceUpdateRule.objects.values_list("pk", "pending_version", "approved_version")
        ),
        "audit": AuditEntry.objects.count(),
    }


def expected_rollout(rollout: Rollout, **changes: Any) -> dict[str, Any]:
    rollout.refresh_from_db()
    waves = list(rollout.waves.order_by("position"))
    data = {
        "id": rollout.pk,
        "rule": IDENTITY,
        "device_class": "UCPhone/Polycom/CX600/Rev-1/ENU/CPE",
        "from_version": "4.0.1",
        "to_version": "4.0.2",
        "state": rollout.state,
        "reason": rollout.reason,
        "current_wave": rollout.current_wave + 1,
        "wave_started_at": iso(rollout.wave_started_at),
        "counting_since": iso(rollout.counting_since),
        "actor_name": rollout.actor_name,
        "created_at": iso(rollout.created_at),
        "updated_at": iso(rollout.updated_at),
        "finished_at": iso(rollout.finished_at),
        "waves_started": [iso(wave.started_at) for wave in waves],
        "waves_completed": [iso(wave.completed_at) for wave in waves],
    }
    data.update(changes)
    return data


def shown(body: dict[str, Any]) -> dict[str, Any]:
    """The response with the waves' times pulled out, to compare with expected_rollout."""
    data = {key: value for key, value in body.items() if key not in {"plan", "waves"}}
    data["waves_started"] = [wave["started_at"] for wave in body["waves"]]
    data["waves_completed"] = [wave["completed_at"] for wave in body["waves"]]
    return data


# --- Plan ---------------------------------------------------------------------------


def test_plan_starts_a_rollout_at_its_first_wave(
    admin_api: APIClient, rule: DeviceUpdateRule, targets: None
) -> None:
    response = admin_api.post(
        "/api/v1/rollouts/",
        {**PLAN, "min_soak_minutes": 30, "failure_max_phones": 3, "automatic_advance": False},
        format="json",
    )

    rollout = Rollout.objects.get()
    first = rollout.waves.get(position=0).started_at
    assert response.status_code == 201
    assert response.json() == {
        "id": rollout.pk,
        "rule": IDENTITY,
        "device_class": "UCPhone/Polycom/CX600/Rev-1/ENU/CPE",
        "from_version": "4.0.1",
        "to_version": "4.0.2",
        "state": "running",
        "reason": "planned",
        "current_wave": 1,
        "wave_started_at": iso(rollout.wave_started_at),
        "counting_since": iso(rollout.counting_since),
        "plan": {
            "waves": ["5 %", "25 %", "site:Redmond", "group:Pilot", "100 %"],
            "min_soak_minutes": 30,
            "success_percent": 95,
            "failure_percent": 5,
            "failure_max_phones": 3,
            "min_sample": 10,
            "silence_minutes": 2880,
            "automatic_advance": False,
            "automatic_halt": True,
        },
        "waves": [
            {"number": 1, "label": "5 %", "percent": 5, "sites": [], "groups": [],
             "started_at": iso(first), "completed_at": None},
            {"number": 2, "label": "25 %", "percent": 25, "sites": [], "groups": [],
             "started_at": None, "completed_at": None},
            {"number": 3, "label": "site:Redmond", "percent": None, "sites": ["Redmond"],
             "groups": [], "started_at": None, "completed_at": None},
            {"number": 4, "label": "group:Pilot", "percent": None, "sites": [],
             "groups": ["Pilot"], "started_at": None, "completed_at": None},
            {"number": 5, "label": "100 %", "percent": 100, "sites": [], "groups": [],
             "started_at": None, "completed_at": None},
        ],
        "actor_name": "ada",
        "created_at": iso(rollout.created_at),
        "updated_at": iso(rollout.updated_at),
        "finished_at": None,
    }  # fmt: skip
    entry = AuditEntry.objects.get()
    assert (entry.action, entry.actor_name, entry.object_id) == (
        "portal.rollout.planned",
        "ada",
        str(rollout.pk),
    )
    assert entry.changes["versions"] == ["4.0.1", "4.0.2"]
    assert rule.pending_version == DeviceUpdateRule.objects.get().pending_version == "4.0.2"


def test_plan_names_the_rule_by_id_too(admin_api: APIClient, rule: DeviceUpdateRule) -> None:
    response = admin_api.post(
        "/api/v1/rollouts/", {"rule": rule.pk, "waves": ["10%", 100]}, format="json"
    )

    assert response.status_code == 201
    assert response.json()["plan"]["waves"] == ["10 %", "100 %"]


GATE_REFUSALS: list[tuple[dict[str, Any], dict[str, Any]]] = [
    ({"waves": []}, {"waves": ["a rollout plan needs at least one wave"]}),
    ({"waves": [101]}, {"waves": ["wave 1: a percentage is 0 to 100, not 101"]}),
    ({"waves": [5, -1]}, {"waves": ["wave 2: a percentage is 0 to 100, not -1"]}),
    ({"waves": [25, 5, 100]},
     {"waves": ["wave 2: the percentages must increase (5 % after 25 %)"]}),
    ({"waves": [25, 25]}, {"waves": ["wave 2: the percentages must increase (25 % after 25 %)"]}),
    ({"waves": ["site:Atlantis"]}, {"waves": ["wave 1: no site named 'Atlantis'"]}),
    ({"waves": [5, "group:nobody"]}, {"waves": ["wave 2: no device group named 'nobody'"]}),
    ({"waves": ["region:west"]},
     {"waves": ["'region:west' is not a wave (a percentage, site:NAME or group:NAME)"]}),
    ({"waves": [""]}, {"waves": {"0": ["This field may not be blank."]}}),
    ({"waves": "5,25"}, {"waves": ['Expected a list of items but got type "str".']}),
    ({"success_percent": 101}, {"success_percent": ["success_percent must be 0 to 100, not 101"]}),
    ({"success_percent": -1}, {"success_percent": ["success_percent must be 0 to 100, not -1"]}),
    ({"failure_percent": 150}, {"failure_percent": ["failure_percent must be 0 to 100, not 150"]}),
    ({"min_sample": 0}, {"min_sample": ["min_sample must be at least 1, not 0"]}),
    ({"min_sample": 2**31},
     {"min_sample": ["Ensure this value is less than or equal to 2147483647."]}),
    ({"failure_max_phones": -1}, {"failure_max_phones": ["failure_max_phones cannot be negative"]}),
    ({"min_soak_minutes": -5}, {"min_soak_minutes": ["min_soak_minutes must be 0 to a year"]}),
    ({"silence_minutes": 0}, {"silence_minutes": ["silence_minutes must be 1 minute to a year"]}),
    ({"automatic_halt": "maybe"}, {"automatic_halt": ["Must be a valid boolean."]}),
    ({"rule": "garbage"}, {"rule": ["'garbage' is not a rule identity "
                                    "(service:WebServer:<pool FQDN>/<rule Id>)"]}),
    ({"rule": f"service:WebServer:pool01.example.org/{RULE_B}"},
     {"rule": [f"no rule service:WebServer:pool01.example.org/{RULE_B}"]}),
    ({"rule": 999}, {"rule": ["no rule with id 999"]}),
]  # fmt: skip


@pytest.mark.parametrize(
    ("change", "errors"), GATE_REFUSALS, ids=[str(change) for change, _ in GATE_REFUSALS]
)
def test_plan_refuses_bad_input_and_changes_nothing(
    admin_api: APIClient,
    rule: DeviceUpdateRule,
    targets: None,
    change: dict[str, Any],
    errors: dict[str, Any],
) -> None:
    before = state()

    response = admin_api.post("/api/v1/rollouts/", {**PLAN, **change}, format="json")

    assert (response.status_code, response.json()) == (400, errors)
    assert state() == before
    assert Rollout.objects.count() == 0


def test_plan_without_a_pending_version_is_refused(admin_api: APIClient, make_rule: Any) -> None:
    make_rule(approved="4.0.1")
    before = state()

    response = admin_api.post(
        "/api/v1/rollouts/", {"rule": IDENTITY, "waves": [100]}, format="json"
    )

    assert response.status_code == 400
    assert response.json() == {"rule": [f"{IDENTITY}: no pending version to roll out"]}
    assert state() == before


def test_a_second_active_rollout_on_the_same_rule_is_refused(
    admin_api: APIClient, rule: DeviceUpdateRule
) -> None:
    first = planned(rule, WavePlan(percent=100))
    rollout_pause(rollout=first, actor=SETUP)
    AuditEntry.objects.all().delete()
    before = state()

    response = admin_api.post(
        "/api/v1/rollouts/", {"rule": IDENTITY, "waves": [100]}, format="json"
    )

    assert response.status_code == 400
    assert response.json() == {
        "rule": [f"{IDENTITY} already has an active rollout (#{first.pk}, paused)"]
    }
    assert state() == before


# --- List and detail ----------------------------------------------------------------


@pytest.fixture
def two_rollouts(rule: DeviceUpdateRule, make_rule: Any) -> tuple[Rollout, Rollout]:
    other = make_rule(pending="2.1", device_class=AASTRA, rule_id=RULE_B)
    first = planned(rule, WavePlan(percent=10), WavePlan(percent=100))
    second = planned(other, WavePlan(percent=100))
    rollout_pause(rollout=second, actor=SETUP)
    AuditEntry.objects.all().delete()
    return first, second


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("", ["second", "first"]),
        ("?state=running", ["first"]),
        ("?state=paused", ["second"]),
        ("?state=halted", []),
        (f"?rule={IDENTITY}", ["first"]),
        (f"?rule=service:WebServer:pool01.example.org/{uuid.UUID(int=1)}", []),
    ],
)
def test_list_newest_first_with_filters(
    helpdesk_api: APIClient, two_rollouts: tuple[Rollout, Rollout], query: str, expected: list[str]
) -> None:
    ids = {"first": two_rollouts[0].pk, "second": two_rollouts[1].pk}

    response = helpdesk_api.get(f"/api/v1/rollouts/{query}")

    assert response.status_code == 200
    assert [item["id"] for item in response.json()["results"]] == [ids[n] for n in expected]


@pytest.mark.parametrize(
    ("query", "errors"),
    [
        ("?state=sleeping", {"state": ["Select a valid choice. sleeping is not one of the "
                                       "available choices."]}),
        ("?rule=garbage", {"rule": ["'garbage' is not a rule identity "
                                    "(service:WebServer:<pool FQDN>/<rule Id>)"]}),
    ],
)  # fmt: skip
def test_list_refuses_bad_filters(
    helpdesk_api: APIClient, two_rollouts: tuple[Rollout, Rollout], query: str, errors: Any
) -> None:
    response = helpdesk_api.get(f"/api/v1/rollouts/{query}")

    assert (response.status_code, response.json()) == (400, errors)


def test_detail_of_a_rollout(
    helpdesk_api: APIClient, two_rollouts: tuple[Rollout, Rollout]
) -> None:
    first = two_rollouts[0]

    response = helpdesk_api.get(f"/api/v1/rollouts/{first.pk}/")

    assert response.status_code == 200
    assert shown(response.json()) == expected_rollout(first)
    assert response.json()["plan"]["waves"] == ["10 %", "100 %"]


def test_unknown_rollout_is_404(helpdesk_api: APIClient) -> None:
    response = helpdesk_api.get("/api/v1/rollouts/999/")

    assert (response.status_code, response.json()) == (
        404,
        {"detail": "No Rollout matches the given query."},
    )


# --- Actions ------------------------------------------------------------------------


def test_advance_wave_by_wave_to_completion_approves_the_version(
    admin_api: APIClient, rule: DeviceUpdateRule
) -> None:
    rollout = planned(rule, WavePlan(percent=50), WavePlan(percent=100))

    second = admin_api.post(
        f"/api/v1/rollouts/{rollout.pk}/advance/", {"reason": "pilot looks fine"}, format="json"
    )
    done = admin_api.post(f"/api/v1/rollouts/{rollout.pk}/advance/")

    assert second.status_code == 200
    assert (second.json()["state"], second.json()["current_wave"], second.json()["reason"]) == (
        "running",
        2,
        "pilot looks fine",
    )
    assert done.status_code == 200
    assert shown(done.json()) == expected_rollout(
        rollout, state="completed", reason="advanced by hand", current_wave=2
    )
    rule.refresh_from_db()
    assert (rule.pending_version, rule.approved_version, rule.restore_version) == (
        "",
        "4.0.2",
        "4.0.1",
    )
    assert list(AuditEntry.objects.order_by("pk").values_list("action", "actor_name")) == [
        ("portal.rollout.advanced", "ada"),
        ("portal.rollout.completed", "ada"),
        ("portal.rule.approved", "ada"),
    ]


def test_pause_resume_cancel(admin_api: APIClient, rule: DeviceUpdateRule) -> None:
    rollout = planned(rule, WavePlan(percent=50), WavePlan(percent=100))
    url = f"/api/v1/rollouts/{rollout.pk}"

    steps = [
        admin_api.post(f"{url}/pause/"),
        admin_api.post(f"{url}/resume/", {"reason": "vendor fix confirmed"}, format="json"),
        admin_api.post(f"{url}/cancel/"),
    ]

    assert [(r.status_code, r.json()["state"], r.json()["reason"]) for r in steps] == [
        (200, "paused", "paused by hand"),
        (200, "running", "vendor fix confirmed"),
        (200, "cancelled", "cancelled by hand"),
    ]
    assert list(AuditEntry.objects.order_by("pk").values_list("action", flat=True)) == [
        "portal.rollout.paused",
        "portal.rollout.resumed",
        "portal.rollout.cancelled",
    ]
    assert DeviceUpdateRule.objects.get().pending_version == "4.0.2"


def test_restore_during_a_rollout_cancels_the_pending_version(
    admin_api: APIClient, rule: DeviceUpdateRule
) -> None:
    rollout = planned(rule, WavePlan(percent=50), WavePlan(percent=100))

    response = admin_api.post(f"/api/v1/rollouts/{rollout.pk}/restore/")

    assert (response.status_code, response.json()["state"]) == (200, "restored")
    rule.refresh_from_db()
    assert (rule.pending_version, rule.approved_version) == ("", "4.0.1")
    assert list(AuditEntry.objects.order_by("pk").values_list("action", flat=True)) == [
        "portal.rollout.restored",
        "portal.rule.reset",
    ]


SETUP_ACTION = {"paused": "pause", "cancelled": "cancel"}


@pytest.mark.parametrize(
    ("setup", "action", "message"),
    [
        ("paused", "pause", "rollout #{id} is paused: it cannot be paused (only when running)"),
        ("running", "resume",
         "rollout #{id} is running: it cannot be resumed (only when halted or paused)"),
        ("cancelled", "advance",
         "rollout #{id} is cancelled: it cannot be advanced (only when paused or running)"),
        ("cancelled", "restore",
         "rollout #{id} is cancelled: it cannot be restored (only when halted or paused or "
         "running)"),
        ("cancelled", "cancel",
         "rollout #{id} is cancelled: it cannot be cancelled (only when halted or paused or "
         "running)"),
    ],
)  # fmt: skip
def test_an_action_the_state_does_not_allow_is_refused(
    admin_api: APIClient, rule: DeviceUpdateRule, setup: str, action: str, message: str
) -> None:
    rollout = planned(rule, WavePlan(percent=100))
    if setup != "running":
        admin_api.post(f"/api/v1/rollouts/{rollout.pk}/{SETUP_ACTION[setup]}/")
    AuditEntry.objects.all().delete()
    before = state()

    response = admin_api.post(f"/api/v1/rollouts/{rollout.pk}/{action}/")

    assert response.status_code == 400
    assert response.json() == {"state": [message.format(id=rollout.pk)]}
    assert state() == before


def test_an_action_on_an_unknown_rollout_is_404(admin_api: APIClient) -> None:
    response = admin_api.post("/api/v1/rollouts/999/advance/")

    assert (response.status_code, response.json()) == (
        404,
        {"detail": "No Rollout matches the given query."},
    )


def test_a_reason_longer_than_400_characters_is_refused(
    admin_api: APIClient, rule: DeviceUpdateRule
) -> None:
    rollout = planned(rule, WavePlan(percent=100))
    before = state()

    response = admin_api.post(
        f"/api/v1/rollouts/{rollout.pk}/pause/", {"reason": "x" * 401}, format="json"
    )

    assert response.status_code == 400
    assert response.json() == {"reason": ["Ensure this field has no more than 400 characters."]}
    assert state() == before


# --- Progress (phone side) ----------------------------------------------------------


def phone(identity: str, *, installed: str) -> Device:
    return DeviceFactory.create(
        identity=identity, mac=identity.removeprefix("MAC:"), brand="polycom", model="cx600",
        installed={"CPE": installed}, last_server="web01.example.org",
    )  # fmt: skip


@pytest.fixture
def observed(rule: DeviceUpdateRule, targets: None) -> dict[str, Any]:
    """Three phones of the rule's pool: the pilot group's two in wave 1 (one running the
    version, one failed), the third in wave 2 (not offered yet)."""
    Server.objects.create(
        pool=Pool.objects.get(fqdn="pool01.example.org"), fqdn="web01.example.org"
    )
    rollout = planned(rule, WavePlan(groups=("Pilot",)), WavePlan(percent=100), min_sample=2)
    running = phone("MAC:0004F2000001", installed="4.0.2")
    failed = phone("MAC:0004F2000002", installed="4.0.1")
    phone("MAC:0004F2000003", installed="4.0.1")
    offered = rollout.created_at + dt.timedelta(minutes=1)
    failed_at = rollout.created_at + dt.timedelta(minutes=20)
    common = {"rule": rule, "version": "4.0.2", "offered_first": offered, "offered_last": offered,
              "offered_count": 1, "updated_at": failed_at}  # fmt: skip
    DeviceOutcome.objects.create(
        identity=running.identity, state=ObservedState.RUNNING, downloaded_at=offered,
        running_at=failed_at, last_seen=failed_at, **common,
    )  # fmt: skip
    DeviceOutcome.objects.create(
        identity=failed.identity, state=ObservedState.FAILED, failed_at=failed_at,
        failure="still reports 4.0.1 after the offer", last_seen=failed_at, **common,
    )  # fmt: skip
    return {"rollout": rollout, "failed": failed, "offered": offered, "failed_at": failed_at}


def test_progress_counts_each_waves_phones(
    helpdesk_api: APIClient, observed: dict[str, Any]
) -> None:
    rollout = observed["rollout"]
    waves = list(rollout.waves.order_by("position"))

    response = helpdesk_api.get(f"/api/v1/rollouts/{rollout.pk}/progress/")

    assert response.status_code == 200
    assert response.json() == {
        "rollout": rollout.pk,
        "state": "running",
        "current_wave": 1,
        "population": 3,
        "gate": "wave 1: 1 of 2 observed phones failed (50 % > 5 %)",
        "waves": [
            {"number": 1, "label": "group:Pilot", "started_at": iso(waves[0].started_at),
             "completed_at": None, "planned": 2, "offered": 2, "downloaded": 1, "running": 1,
             "failed": 1, "failed_before": 0},
            {"number": 2, "label": "100 %", "started_at": None, "completed_at": None,
             "planned": 1, "offered": 0, "downloaded": 0, "running": 0, "failed": 0,
             "failed_before": 0},
        ],
        "failed_phones": [
            {"identity": "MAC:0004F2000002", "device_id": observed["failed"].pk, "wave": 1,
             "failure": "still reports 4.0.1 after the offer",
             "failed_at": iso(observed["failed_at"])},
        ],
    }  # fmt: skip


def test_progress_of_an_unknown_rollout_is_404(helpdesk_api: APIClient) -> None:
    response = helpdesk_api.get("/api/v1/rollouts/999/progress/")

    assert (response.status_code, response.json()) == (
        404,
        {"detail": "No Rollout matches the given query."},
    )


@pytest.mark.parametrize("spelling", ["MAC:0004F2000002", "00-04-f2-00-00-02", "0004f2000002"])
def test_a_phones_observed_outcomes(
    helpdesk_api: APIClient, observed: dict[str, Any], spelling: str
) -> None:
    response = helpdesk_api.get(f"/api/v1/devices/{spelling}/outcomes/")

    assert response.status_code == 200
    assert response.json() == [
        {
            "rule": IDENTITY,
            "device_class": "UCPhone/Polycom/CX600/Rev-1/ENU/CPE",
            "version": "4.0.2",
            "state": "failed",
            "offered_first": iso(observed["offered"]),
            "offered_last": iso(observed["offered"]),
            "offered_count": 1,
            "downloaded_at": None,
            "running_at": None,
            "failed_at": iso(observed["failed_at"]),
            "failure": "still reports 4.0.1 after the offer",
            "last_seen": iso(observed["failed_at"]),
            "updated_at": iso(observed["failed_at"]),
        }
    ]


def test_a_phone_in_the_inventory_without_outcomes_has_an_empty_list(
    helpdesk_api: APIClient, observed: dict[str, Any]
) -> None:
    response = helpdesk_api.get("/api/v1/devices/MAC:0004F2000003/outcomes/")

    assert (response.status_code, response.json()) == (200, [])


@pytest.mark.parametrize(
    ("identity", "status", "body"),
    [
        ("MAC:0004F2999999", 404, {"detail": "no phone MAC:0004F2999999 in the inventory"}),
        ("SN:x!y", 400, {"identity": ["'x!y' is neither a MAC address nor a serial number"]}),
        ("MAC:xyz", 400, {"identity": ["'xyz' is not a MAC address"]}),
    ],
)
def test_outcomes_of_an_unknown_or_malformed_phone(
    helpdesk_api: APIClient, observed: dict[str, Any], identity: str, status: int, body: Any
) -> None:
    response = helpdesk_api.get(f"/api/v1/devices/{identity}/outcomes/")

    assert (response.status_code, response.json()) == (status, body)
