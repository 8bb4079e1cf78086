"""A staged rollout on a live server whose store and observation job a real worker runs:
the first wave only, then everyone, then approved; a second rollout whose failing
phones halt it at the first wave, after which nobody new is offered it; a restore sends
the phones back. The worker moves and halts the rollouts, nobody by hand."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from django.conf import settings
from pytest_django.live_server_helper import LiveServer

from deviceupdate_devtools.demo import demo_package_make
from deviceupdate_devtools.simulator import Fleet, FleetConfig, RoundSummary, models_named
from portal.choices import ReplicaState, RolloutState, RuleAction
from portal.models import AuditEntry, DeviceUpdateRule, Rollout, Server, ServerFile, UpdateFile
from portal.services.audit import Actor
from portal.services.imports import package_import_run, package_import_start
from portal.services.rollout_plans import RolloutPlan, WavePlan
from portal.services.rollouts import rollout_plan, rollout_restore
from portal.services.rules import rules_apply
from portal.waves import bucket
from tests.conftest import wait_until
from tests.integration.conftest import decisions_refreshed, identity, observed_by_worker

pytestmark = pytest.mark.django_db(transaction=True)

StartWorker = Callable[..., subprocess.Popen[bytes]]
PHONES = 40
MODEL = "Polycom CX600"  # as the simulator names its models
MODEL_NAME = "CX600"


def test_a_rollout_advances_wave_by_wave_and_a_failing_one_halts_by_itself(
    tmp_path: Path, start_worker: StartWorker, live_server: LiveServer, fleet_server: Server
) -> None:
    pool = fleet_server.pool
    number = int(fleet_server.fqdn[3:7], 16)
    old, first, second = (f"4.2.{number}.{build}" for build in (100, 200, 300))
    actor = Actor.system("tests")
    start_worker(
        queues=[fleet_server.queue, settings.CELERY_TASK_DEFAULT_QUEUE],
        broker_url=settings.CELERY_BROKER_URL,
        DEVICEUPDATE_SERVER_FQDN=fleet_server.fqdn,
        DEVICEUPDATE_SERVER_STORE_DIR=str(settings.SERVER_STORE_DIR),
    )
    url = live_server.url

    def fleet(installed: str, fail_percent: int = 0) -> Fleet:
        return Fleet(
            FleetConfig(
                url=url,
                phones=PHONES,
                models=models_named([MODEL_NAME]),
                installed_version=installed,
                concurrency=4,
                round_timeout=120,
                fail_percent=fail_percent,
            )
        )

    def import_version(version: str) -> DeviceUpdateRule:
        demo = demo_package_make(directory=tmp_path / "demo", version=version, actor=actor)
        with demo.path.open("rb") as source:
            job = package_import_start(
                source=source, filename=demo.path.name, pools=[pool], actor=actor
            )
        done = package_import_run(job_id=job.pk)
        assert done is not None
        assert (done.status, done.error) == ("succeeded", "")
        files = UpdateFile.objects.filter(version__version=version).count()
        wait_until(
            lambda: (
                ServerFile.objects.filter(
                    server=fleet_server, file__version__version=version, state=ReplicaState.VERIFIED
                ).count()
                == files
            ),
            f"the server's verified copies of {version}",
            seconds=120,
        )
        decisions_refreshed()
        return DeviceUpdateRule.objects.get(pool=pool, model="CX600")

    def plan(rule: DeviceUpdateRule, percents: tuple[int, ...], *, min_sample: int) -> Rollout:
        waves = tuple(WavePlan(percent=p) for p in percents)
        rollout = rollout_plan(
            rule=rule,
            plan=RolloutPlan(
                waves=waves,
                min_soak_minutes=0,
                success_percent=100,
                failure_percent=10,
                min_sample=min_sample,
            ),
            actor=actor,
        )
        decisions_refreshed()
        return rollout

    def in_reach(phones: Fleet, rule: DeviceUpdateRule, percent: int) -> set[int]:
        return {
            phone.index
            for phone in phones.phones
            if bucket(str(rule.rule_id), identity(phone.mac)) < percent * 100
        }

    def counts(summary: RoundSummary) -> tuple[int, int, int, int]:
        return (summary.checks, summary.offers, summary.installs, summary.errors)

    try:
        # Everyone on the first version, approved the ordinary way.
        phones = fleet(old)
        import_version(first)
        rules_apply(
            action=RuleAction.APPROVE, rules=DeviceUpdateRule.objects.filter(pool=pool), actor=actor
        )
        decisions_refreshed()
        assert counts(phones.run_round()) == (PHONES, PHONES, PHONES, 0)

        # A healthy rollout of the second version: 25 %, then everyone.
        rule = import_version(second)
        rollout = plan(rule, (25, 100), min_sample=2)
        first_wave = in_reach(phones, rule, 25)
        assert 0 < len(first_wave) < PHONES
        assert counts(phones.run_round()) == (PHONES, len(first_wave), len(first_wave), 0)
        assert counts(phones.run_round()) == (PHONES, 0, 0, 0)  # they report the version
        rollout = observed_by_worker(rollout, lambda r: r.current_wave == 1, "wave 2")
        assert rollout.state == RolloutState.RUNNING
        rest = PHONES - len(first_wave)
        assert counts(phones.run_round()) == (PHONES, rest, rest, 0)
        assert counts(phones.run_round()) == (PHONES, 0, 0, 0)
        rollout = observed_by_worker(
            rollout, lambda r: r.state == RolloutState.COMPLETED, "the rollout to complete"
        )
        rule.refresh_from_db()
        assert (rule.approved_version, rule.pending_version, rule.restore_version) == (
            second,
            "",
            first,
        )
        assert phones.versions() == {MODEL: {second: PHONES}}
        assert list(
            AuditEntry.objects.filter(object_id=str(rollout.pk), object_type="portal.rollout")
            .order_by("id")
            .values_list("action", "actor_name")
        ) == [
            ("portal.rollout.planned", "tests"),
            ("portal.rollout.advanced", "rollout watch"),
            ("portal.rollout.completed", "rollout watch"),
        ]

        # A rollout whose failing phones (30 %) keep the old version halts at wave 1.
        third = f"4.2.{number}.400"
        rule = import_version(third)
        failing = fleet(second, fail_percent=30)
        rollout = plan(rule, (50, 100), min_sample=3)
        first_wave = in_reach(failing, rule, 50)
        fails = {p.index for p in failing.phones if p.fails} & first_wave
        assert fails, "the failing share must meet the first wave"
        summary = failing.run_round()
        assert (summary.offers, summary.installs) == (
            len(first_wave),
            len(first_wave) - len(fails),
        )
        failing.run_round()  # the failing phones report the old version once more
        rollout = observed_by_worker(
            rollout, lambda r: r.state == RolloutState.HALTED, "the automatic halt"
        )
        assert rollout.current_wave == 0
        assert rollout.reason.startswith("wave 1: ")
        # Halted: nobody new is offered the version, nobody who runs it is sent back.
        assert counts(failing.run_round()) == (PHONES, 0, 0, 0)

        # Restore: everyone who took the third version goes back to the second.
        rollout_restore(rollout=rollout, actor=actor)
        decisions_refreshed()
        took = len(first_wave) - len(fails)
        assert counts(failing.run_round()) == (PHONES, took, took, 0)
        assert failing.versions() == {MODEL: {second: PHONES}}
    finally:
        store = settings.CENTRAL_STORE_DIR / "DeviceUpdateStore" / "UCPhone"
        for version in (first, second, f"4.2.{number}.400"):
            for folder in store.glob(f"*/*/Rev-1/ENU/{version}"):
                shutil.rmtree(folder)
