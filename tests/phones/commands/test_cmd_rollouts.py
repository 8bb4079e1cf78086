"""`manage.py device_update_rollouts`: plan, list, show (with the phones' progress), the
state machine's actions and the observation job; every bad input of the issue is one
`error:` line, exit status 1, nothing changed and no audit row."""

from __future__ import annotations

import datetime as dt
import getpass
import io
import json
from typing import Any

import pytest
from django.core.cache import cache
from django.core.management import call_command
from django.core.management.base import CommandError

from phones.choices import ObservedState
from phones.models import Device, DeviceOutcome
from phones.services.rollout_watch import LOCK_KEY
from portal.models import AuditEntry, DeviceUpdateRule, Rollout, RolloutWave, Site
from portal.services.audit import Actor
from portal.services.fleet import device_group_save
from portal.services.rollout_plans import WavePlan
from portal.services.rollouts import rollout_pause
from tests.factories import DeviceFactory, RolloutFactory

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
    """Everything a refused command could have changed."""
    return {
        "rollouts": list(Rollout.objects.values_list("pk", "state", "current_wave", "reason")),
        "waves": list(RolloutWave.objects.values_list("pk", "started_at", "completed_at")),
        "rules": list(
            DeviceUpdateRule.objects.values_list("pk", "pending_version", "approved_version")
        ),
        "audit": AuditEntry.objects.count(),
    }


@pytest.fixture
def identity(rule: DeviceUpdateRule) -> str:
    """The phones' rule (pending 4.0.7577.5000, approved 4.0.7577.4387), with a site and
    a device group for waves to name; no audit rows."""
    Site.objects.create(name="Redmond", time_zone="America/Los_Angeles")
    device_group_save(name="Pilot", members=["MAC:0004F2000001", "MAC:0004F2000002"], actor=SETUP)
    AuditEntry.objects.all().delete()
    return rule.identity


def planned(rule: DeviceUpdateRule, *waves: WavePlan, **gates: Any) -> Rollout:
    rollout = RolloutFactory.create(rule=rule, waves=waves, actor=SETUP, **gates)
    AuditEntry.objects.all().delete()
    return rollout


# --- plan ---------------------------------------------------------------------------


def test_plan_starts_at_the_first_wave(identity: str) -> None:
    status, out, err = run(
        "device_update_rollouts", "plan", identity, "--wave", "5", "--wave", "25%",
        "--wave", "site:redmond", "--wave", "group:pilot", "--wave", "100",
    )  # fmt: skip

    rollout = Rollout.objects.get()
    assert (status, out, err) == (
        0,
        f"rollout #{rollout.pk} running, wave 1 of 5 (5 %): planned\n",
        "",
    )
    assert [str(wave) for wave in rollout.waves.all()] == [f"wave {n}" for n in range(1, 6)]
    entry = AuditEntry.objects.get()
    assert (entry.action, entry.actor_name) == ("portal.rollout.planned", ACTOR_NAME)


def test_plan_with_gates_as_json(identity: str) -> None:
    status, out, err = run(
        "device_update_rollouts", "plan", identity, "--wave", "group:Pilot", "--wave", "100",
        "--min-soak-minutes", "30", "--success-percent", "90", "--failure-percent", "10",
        "--failure-max-phones", "3", "--min-sample", "4", "--silence-minutes", "600",
        "--manual-advance", "--no-automatic-halt", "--json",
    )  # fmt: skip

    rollout = Rollout.objects.get()
    waves = list(rollout.waves.all())
    assert (status, err) == (0, "")
    assert json.loads(out) == {
        "ok": True,
        "message": f"rollout #{rollout.pk} running, wave 1 of 2 (group:Pilot): planned",
        "rollout": {
            "id": rollout.pk,
            "rule": identity,
            "device_class": "UCPhone/Polycom/CX600/Rev-1/ENU/CPE",
            "from_version": "4.0.7577.4387",
            "to_version": "4.0.7577.5000",
            "state": "running",
            "reason": "planned",
            "current_wave": 1,
            "wave_started_at": rollout.wave_started_at.isoformat(),
            "counting_since": rollout.counting_since.isoformat(),
            "plan": {
                "waves": ["group:Pilot", "100 %"],
                "min_soak_minutes": 30,
                "success_percent": 90,
                "failure_percent": 10,
                "failure_max_phones": 3,
                "min_sample": 4,
                "silence_minutes": 600,
                "automatic_advance": False,
                "automatic_halt": False,
            },
            "waves": [
                {"number": 1, "label": "group:Pilot", "percent": None, "sites": [],
                 "groups": ["Pilot"], "started_at": waves[0].started_at.isoformat(),  # type: ignore[union-attr]
                 "completed_at": None},
                {"number": 2, "label": "100 %", "percent": 100, "sites": [], "groups": [],
                 "started_at": None, "completed_at": None},
            ],
            "actor_name": ACTOR_NAME,
            "created_at": rollout.created_at.isoformat(),
            "updated_at": rollout.updated_at.isoformat(),
            "finished_at": None,
        },
    }  # fmt: skip


PLAN_REFUSALS: list[tuple[list[str], str]] = [
    ([], "a rollout plan needs at least one wave"),
    (["--wave", "101"], "wave 1: a percentage is 0 to 100, not 101"),
    (["--wave", "5", "--wave", "-1"], "wave 2: a percentage is 0 to 100, not -1"),
    (["--wave", "25", "--wave", "5"], "wave 2: the percentages must increase (5 % after 25 %)"),
    (["--wave", "50", "--wave", "50"],
     "wave 2: the percentages must increase (50 % after 50 %)"),
    (["--wave", "site:Atlantis"], "wave 1: no site named 'Atlantis'"),
    (["--wave", "5", "--wave", "group:nobody"], "wave 2: no device group named 'nobody'"),
    (["--wave", "region:west"],
     "'region:west' is not a wave (a percentage, site:NAME or group:NAME)"),
    (["--wave", ""], "a wave is a percentage or site:NAME / group:NAME"),
    (["--wave", "100", "--success-percent", "101"], "success_percent must be 0 to 100, not 101"),
    (["--wave", "100", "--success-percent", "-5"], "success_percent must be 0 to 100, not -5"),
    (["--wave", "100", "--failure-percent", "150"], "failure_percent must be 0 to 100, not 150"),
    (["--wave", "100", "--min-sample", "0"], "min_sample must be at least 1, not 0"),
    (["--wave", "100", "--failure-max-phones", "-1"], "failure_max_phones cannot be negative"),
    (["--wave", "100", "--min-soak-minutes", "-1"], "min_soak_minutes must be 0 to a year"),
    (["--wave", "100", "--silence-minutes", "0"], "silence_minutes must be 1 minute to a year"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("args", "message"),
    PLAN_REFUSALS,
    ids=[" ".join(args) or "no waves" for args, _ in PLAN_REFUSALS],
)
def test_plan_refuses_bad_input_and_changes_nothing(
    identity: str, args: list[str], message: str
) -> None:
    before = state()

    result = run("device_update_rollouts", "plan", identity, *args)

    assert result == (1, "", f"error: {message}\n")
    assert state() == before
    assert Rollout.objects.count() == 0


@pytest.mark.parametrize(
    ("reference", "message"),
    [
        ("garbage", "'garbage' is not a rule identity (service:WebServer:<pool FQDN>/<rule Id>)"),
        ("service:WebServer:nowhere.example.org/" + GUID,
         "no rule service:WebServer:nowhere.example.org/" + GUID),
        ("service:WebServer:pool/not-a-guid", "'not-a-guid' is not a GUID"),
    ],
)  # fmt: skip
def test_plan_on_an_unknown_rule_is_refused(identity: str, reference: str, message: str) -> None:
    before = state()

    result = run("device_update_rollouts", "plan", reference, "--wave", "100")

    assert result == (1, "", f"error: {message}\n")
    assert state() == before


def test_plan_on_a_rule_without_a_pending_version_is_refused(
    identity: str, rule: DeviceUpdateRule
) -> None:
    DeviceUpdateRule.objects.filter(pk=rule.pk).update(pending_version="")
    before = state()

    result = run("device_update_rollouts", "plan", identity, "--wave", "100")

    assert result == (1, "", f"error: {identity}: no pending version to roll out\n")
    assert state() == before


def test_a_second_active_rollout_on_the_same_rule_is_refused(
    identity: str, rule: DeviceUpdateRule
) -> None:
    first = planned(rule, WavePlan(percent=100))
    before = state()

    result = run("device_update_rollouts", "plan", identity, "--wave", "10", "--wave", "100")

    assert result == (
        1,
        "",
        f"error: {identity} already has an active rollout (#{first.pk}, running)\n",
    )
    assert state() == before


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--min-sample", "ten"], "argument --min-sample: expected a whole number, got 'ten'"),
        (["--success-percent", "99999999999"],
         "argument --success-percent: 99999999999 is too large"),
    ],
)  # fmt: skip
def test_plan_usage_errors(identity: str, args: list[str], message: str) -> None:
    before = state()

    with pytest.raises(CommandError) as error:
        run("device_update_rollouts", "plan", identity, "--wave", "100", *args)

    assert str(error.value) == f"Error: {message}"
    assert state() == before


# --- list, show ---------------------------------------------------------------------


@pytest.fixture
def two_rollouts(identity: str, rule: DeviceUpdateRule) -> tuple[Rollout, Rollout]:
    """A cancelled rollout, then a running one on the same rule."""
    first = planned(rule, WavePlan(percent=100))
    run("device_update_rollouts", "cancel", str(first.pk))
    second = planned(rule, WavePlan(percent=10), WavePlan(percent=100))
    AuditEntry.objects.all().delete()
    return Rollout.objects.get(pk=first.pk), second


def test_list_newest_first(identity: str, two_rollouts: tuple[Rollout, Rollout]) -> None:
    first, second = two_rollouts
    day = f"{second.created_at:%Y-%m-%d %H:%M}"
    older = f"{first.created_at:%Y-%m-%d %H:%M}"

    status, out, err = run("device_update_rollouts", "list")

    assert (status, err) == (0, "")
    assert out.splitlines() == [
        f"{'ID':<{len(f'#{second.pk}')}}  STATE      WAVE  {'VERSIONS':<30}  "
        f"{'RULE':<{len(identity)}}  CREATED",
        f"#{second.pk}  running    1/2   4.0.7577.4387 -> 4.0.7577.5000  {identity}  {day}",
        f"#{first.pk}  cancelled  1/1   4.0.7577.4387 -> 4.0.7577.5000  {identity}  {older}",
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("args", "expected"),
    [([], ["second", "first"]), (["--state", "cancelled"], ["first"]),
     (["--state", "halted"], []), (["--rule", "{identity}"], ["second", "first"])],
)  # fmt: skip
def test_list_as_json_with_filters(
    identity: str, two_rollouts: tuple[Rollout, Rollout], args: list[str], expected: list[str]
) -> None:
    ids = {"first": two_rollouts[0].pk, "second": two_rollouts[1].pk}

    status, out, err = run(
        "device_update_rollouts", "list", *(a.format(identity=identity) for a in args), "--json"
    )

    assert (status, err) == (0, "")
    assert [item["id"] for item in json.loads(out)] == [ids[name] for name in expected]


def test_list_with_nothing_to_show(identity: str) -> None:
    assert run("device_update_rollouts", "list") == (0, "no rollouts\n", "")


def test_list_of_an_unknown_rule_is_refused(identity: str) -> None:
    result = run("device_update_rollouts", "list", "--rule", "garbage")

    assert result == (
        1,
        "",
        "error: 'garbage' is not a rule identity (service:WebServer:<pool FQDN>/<rule Id>)\n",
    )


def phone(identity: str, *, installed: str, server: str) -> Device:
    return DeviceFactory.create(
        identity=identity,
        mac=identity.removeprefix("MAC:"),
        installed={"CPE": installed},
        last_server=server,
    )


@pytest.fixture
def observed(identity: str, rule: DeviceUpdateRule, settings: Any) -> dict[str, Any]:
    """The pilot group's two phones in wave 1, one running the version and one failed;
    a third phone in wave 2."""
    rollout = planned(rule, WavePlan(groups=("Pilot",)), WavePlan(percent=100), min_sample=2)
    server = settings.SERVER_FQDN
    phone("MAC:0004F2000001", installed="4.0.7577.5000", server=server)
    failed = phone("MAC:0004F2000002", installed="4.0.7577.4387", server=server)
    phone("MAC:0004F2000003", installed="4.0.7577.4387", server=server)
    at = rollout.created_at + dt.timedelta(minutes=20)
    common = {"rule": rule, "version": "4.0.7577.5000", "offered_first": at, "offered_last": at,
              "offered_count": 1, "updated_at": at, "last_seen": at}  # fmt: skip
    DeviceOutcome.objects.create(
        identity="MAC:0004F2000001", state=ObservedState.RUNNING, running_at=at, **common
    )
    DeviceOutcome.objects.create(
        identity="MAC:0004F2000002", state=ObservedState.FAILED, failed_at=at,
        failure="still reports 4.0.7577.4387", **common,
    )  # fmt: skip
    return {"rollout": rollout, "failed": failed, "at": at}


def test_show_prints_plan_progress_and_failed_phones(
    identity: str, observed: dict[str, Any]
) -> None:
    rollout = observed["rollout"]
    started = f"{rollout.created_at:%Y-%m-%d %H:%M}"
    failed_at = f"{observed['at']:%Y-%m-%d %H:%M}"

    status, out, err = run("device_update_rollouts", "show", f"#{rollout.pk}")

    assert (status, err) == (0, "")
    assert out.splitlines() == [
        f"rollout #{rollout.pk}  running  wave 1 of 2 (group:Pilot)",
        f"rule        {identity} (UCPhone/Polycom/CX600/Rev-1/ENU/CPE)",
        "versions    4.0.7577.4387 -> 4.0.7577.5000",
        "reason      planned",
        "plan        group:Pilot | 100 %",
        "gates       soak 60 min; success >= 95 %; failure > 5 % (sample >= 2); "
        "silent 2880 min = failed; advance automatic; halt automatic",
        "gate now    wave 1: 1 of 2 observed phones failed (50 % > 5 %)",
        "population  3 phones",
        f"planned by  setup at {started}",
        "",
        "WAVE  PLAN         STARTED           COMPLETED  PLANNED  OFFERED  DOWNLOADED  "
        "RUNNING  FAILED  FAILED BEFORE",
        # The running phone counts as downloaded: it runs the version, whatever the log says.
        f"1     group:Pilot  {started}  -          2        2        1           1        "
        "1       0",
        "2     100 %        -                 -          1        0        0           0        "
        "0       0",
        "",
        "failed phones:",
        "IDENTITY          WAVE  FAILED AT         WHY",
        f"MAC:0004F2000002  1     {failed_at}  still reports 4.0.7577.4387",
    ]  # fmt: skip


def test_show_as_json_carries_the_progress(identity: str, observed: dict[str, Any]) -> None:
    rollout = observed["rollout"]

    status, out, err = run("device_update_rollouts", "show", str(rollout.pk), "--json")

    shown = json.loads(out)
    assert (status, err) == (0, "")
    assert (shown["id"], shown["state"], shown["plan"]["min_sample"]) == (rollout.pk, "running", 2)
    assert shown["progress"] == {
        "rollout": rollout.pk,
        "state": "running",
        "current_wave": 1,
        "population": 3,
        "gate": "wave 1: 1 of 2 observed phones failed (50 % > 5 %)",
        "waves": [
            {"number": 1, "label": "group:Pilot", "started_at": rollout.created_at.isoformat(),
             "completed_at": None, "planned": 2, "offered": 2, "downloaded": 1, "running": 1,
             "failed": 1, "failed_before": 0},
            {"number": 2, "label": "100 %", "started_at": None, "completed_at": None,
             "planned": 1, "offered": 0, "downloaded": 0, "running": 0, "failed": 0,
             "failed_before": 0},
        ],
        "failed_phones": [
            {"identity": "MAC:0004F2000002", "device_id": observed["failed"].pk, "wave": 1,
             "failure": "still reports 4.0.7577.4387", "failed_at": observed["at"].isoformat()},
        ],
    }  # fmt: skip


@pytest.mark.parametrize(
    ("reference", "message"),
    [("999", "no rollout #999"), ("#999", "no rollout #999"),
     ("latest", "'latest' is not a rollout number")],
)  # fmt: skip
def test_show_an_unknown_rollout_is_refused(identity: str, reference: str, message: str) -> None:
    assert run("device_update_rollouts", "show", reference) == (1, "", f"error: {message}\n")


# --- advance, pause, resume, cancel, restore ----------------------------------------


def test_advance_to_completion_approves_the_version(identity: str, rule: DeviceUpdateRule) -> None:
    rollout = planned(rule, WavePlan(percent=50), WavePlan(percent=100))

    second = run("device_update_rollouts", "advance", str(rollout.pk), "--reason", "pilot fine")
    done = run("device_update_rollouts", "advance", str(rollout.pk))

    assert second == (0, f"rollout #{rollout.pk} running, wave 2 of 2 (100 %): pilot fine\n", "")
    assert done == (
        0,
        f"rollout #{rollout.pk} completed, wave 2 of 2 (100 %): advanced by hand\n",
        "",
    )
    rule.refresh_from_db()
    assert (rule.pending_version, rule.approved_version) == ("", "4.0.7577.5000")
    assert list(AuditEntry.objects.order_by("pk").values_list("action", "actor_name")) == [
        ("portal.rollout.advanced", ACTOR_NAME),
        ("portal.rollout.completed", ACTOR_NAME),
        ("portal.rule.approved", ACTOR_NAME),
    ]


def test_pause_resume_cancel(identity: str, rule: DeviceUpdateRule) -> None:
    rollout = planned(rule, WavePlan(percent=50), WavePlan(percent=100))
    number = str(rollout.pk)

    results = [
        run("device_update_rollouts", "pause", number),
        run("device_update_rollouts", "resume", number, "--json"),
        run("device_update_rollouts", "cancel", number, "--reason", "wrong build"),
    ]

    line = f"rollout #{rollout.pk} {{}}, wave 1 of 2 (50 %): {{}}"
    assert results[0] == (0, line.format("paused", "paused by hand") + "\n", "")
    resumed = json.loads(results[1][1])
    assert (resumed["ok"], resumed["message"], resumed["rollout"]["state"]) == (
        True,
        line.format("running", "resumed by hand"),
        "running",
    )
    assert results[2] == (0, line.format("cancelled", "wrong build") + "\n", "")
    assert list(AuditEntry.objects.order_by("pk").values_list("action", flat=True)) == [
        "portal.rollout.paused",
        "portal.rollout.resumed",
        "portal.rollout.cancelled",
    ]


def test_restore_sends_everyone_back(identity: str, rule: DeviceUpdateRule) -> None:
    rollout = planned(rule, WavePlan(percent=50), WavePlan(percent=100))

    result = run("device_update_rollouts", "restore", str(rollout.pk))

    assert result == (
        0,
        f"rollout #{rollout.pk} restored, wave 1 of 2 (50 %): restored by hand\n",
        "",
    )
    rule.refresh_from_db()
    assert (rule.pending_version, rule.approved_version) == ("", "4.0.7577.4387")


@pytest.mark.parametrize(
    ("action", "message"),
    [
        ("pause", "rollout #{id} is paused: it cannot be paused (only when running)"),
        ("advance", None),
        ("cancel", None),
    ],
)
def test_a_refused_transition_changes_nothing(
    identity: str, rule: DeviceUpdateRule, action: str, message: str | None
) -> None:
    rollout = planned(rule, WavePlan(percent=100))
    rollout_pause(rollout=rollout, actor=SETUP)
    if message is None:  # finished: nothing is allowed any more
        run("device_update_rollouts", "cancel", str(rollout.pk))
        verb = {"advance": "advanced", "cancel": "cancelled"}[action]
        allowed = "paused or running" if action == "advance" else "halted or paused or running"
        message = f"rollout #{{id}} is cancelled: it cannot be {verb} (only when {allowed})"
    AuditEntry.objects.all().delete()
    before = state()

    result = run("device_update_rollouts", action, str(rollout.pk))

    assert result == (1, "", f"error: {message.format(id=rollout.pk)}\n")
    assert state() == before


def test_a_transition_of_an_unknown_rollout_is_refused(identity: str) -> None:
    assert run("device_update_rollouts", "advance", "999") == (1, "", "error: no rollout #999\n")


# --- observe ------------------------------------------------------------------------


def test_observe_runs_the_job_once_and_reports(identity: str, rule: DeviceUpdateRule) -> None:
    rollout = planned(rule, WavePlan(groups=("Pilot",)), WavePlan(percent=100), min_soak_minutes=0)

    status, out, err = run("device_update_rollouts", "observe")

    assert (status, err) == (0, "")
    assert out.splitlines() == [
        "read 0 checks and 0 downloads; no change",
        f"rollout #{rollout.pk}: wave 1 waits: no phones in the wave yet (advance it by hand "
        "to skip it), soaked 0 min",
    ]
    rollout.refresh_from_db()
    assert (rollout.state, rollout.current_wave) == ("running", 0)
    assert not AuditEntry.objects.exists()


def test_observe_as_json(identity: str, rule: DeviceUpdateRule) -> None:
    rollout = planned(rule, WavePlan(percent=100))

    status, out, err = run("device_update_rollouts", "observe", "--json")

    assert (status, err) == (0, "")
    assert json.loads(out) == {
        "checks": 0,
        "downloads": 0,
        "transitions": {},
        "rollouts": [
            f"rollout #{rollout.pk}: wave 1 waits: no phones in the wave yet (advance it by "
            "hand to skip it), soaked 0 min"
        ],
    }


def test_observe_while_another_run_is_in_progress_is_refused(identity: str) -> None:
    cache.add(LOCK_KEY, "another run", timeout=60)

    result = run("device_update_rollouts", "observe")

    assert result == (1, "", "error: another observation run is in progress; nothing was done\n")
