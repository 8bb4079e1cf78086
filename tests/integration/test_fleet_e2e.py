"""A fleet of simulated phones against a live server whose store a real worker fills:
nothing before approval, every phone moves after it, again for a second version, and
back on a restore; the inventory and the request audit say so."""

from __future__ import annotations

import shutil
import subprocess
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest
from django.conf import settings
from django.contrib.auth.models import User
from django.db.models import QuerySet
from pytest_django.live_server_helper import LiveServer

from deviceupdate_devtools.demo import demo_package_make
from deviceupdate_devtools.simulator import Fleet, FleetConfig, RoundSummary
from phones.models import Device, RequestAudit
from phones.services.spool_loader import spool_load_once, spool_pending_records
from portal.choices import ReplicaState, RuleAction
from portal.models import DeviceUpdateRule, Server, ServerFile, UpdateFile
from portal.services.audit import Actor
from portal.services.imports import package_import_run, package_import_start
from portal.services.rules import rules_apply
from tests.conftest import wait_until
from tests.integration.conftest import decisions_refreshed

pytestmark = pytest.mark.django_db(transaction=True)

StartWorker = Callable[..., subprocess.Popen[bytes]]
PHONES, EXTERNAL = 12, 3
MODELS = ("Aastra 6725ip", "Polycom CX600", "Polycom CX700")


def everyone_at(version: str) -> dict[str, dict[str, int]]:
    return {model: {version: PHONES // len(MODELS)} for model in MODELS}


def inventory(devices: QuerySet[Device]) -> Counter[tuple[str, str, str]]:
    """(installed, target, state) of the phones' CPE module -> phones."""
    return Counter(
        (installed.get("CPE", ""), targets.get("CPE", ""), state)
        for installed, targets, state in devices.values_list("installed", "targets", "state")
    )


def test_a_fleet_follows_approve_a_second_version_and_a_restore(
    tmp_path: Path, start_worker: StartWorker, live_server: LiveServer, fleet_server: Server
) -> None:
    pool = fleet_server.pool
    number = int(fleet_server.fqdn[3:7], 16)
    old, first, second = (f"4.1.{number}.{build}" for build in (100, 200, 300))
    actor = Actor.system("tests")
    for n in range(1, EXTERNAL + 1):
        User.objects.create_user(username=f"phone{n:04d}@example.org", password="phone-secret")
    start_worker(
        queues=[fleet_server.queue],
        broker_url=settings.CELERY_BROKER_URL,
        DEVICEUPDATE_SERVER_FQDN=fleet_server.fqdn,
        DEVICEUPDATE_SERVER_STORE_DIR=str(settings.SERVER_STORE_DIR),
    )
    fleet = Fleet(
        FleetConfig(
            url=live_server.url,
            phones=PHONES,
            installed_version=old,
            external_users=EXTERNAL,
            password="phone-secret",
            concurrency=4,
            round_timeout=120,
        )
    )

    def import_version(version: str) -> None:
        demo = demo_package_make(directory=tmp_path / "demo", version=version, actor=actor)
        with demo.path.open("rb") as source:
            job = package_import_start(
                source=source, filename=demo.path.name, pools=[pool], actor=actor
            )
        # The import runs here; the replication runs on the server's own worker.
        done = package_import_run(job_id=job.pk)
        assert done is not None
        assert (done.status, done.error, done.replication) == (
            "succeeded",
            "",
            "queued to 1 server(s)",
        )
        files = UpdateFile.objects.filter(version__version=version).count()
        assert files == 9
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

    def act(action: RuleAction) -> None:
        outcomes = rules_apply(
            action=action, rules=DeviceUpdateRule.objects.filter(pool=pool), actor=actor
        )
        assert [outcome.ok for outcome in outcomes] == [True] * len(MODELS)
        decisions_refreshed()

    def moved(summary: RoundSummary, version: str) -> None:
        """Every phone was offered ``version``, fetched and verified it, and runs it."""
        images = UpdateFile.objects.filter(version__version=version, role="image")
        sizes = {row.version.model: row.size for row in images.select_related("version")}
        assert (summary.checks, summary.offers, summary.downloads, summary.verified) == (
            PHONES, PHONES, PHONES, PHONES,
        )  # fmt: skip
        assert (summary.installs, summary.busy, summary.errors) == (PHONES, 0, 0)
        assert summary.bytes == sum(sizes.values()) * (PHONES // len(MODELS))
        assert summary.versions == everyone_at(version)

    def quiet(summary: RoundSummary, version: str) -> None:
        """Every phone checked, nothing was offered, each still runs ``version``."""
        assert (summary.checks, summary.offers, summary.downloads, summary.errors) == (
            PHONES, 0, 0, 0,
        )  # fmt: skip
        assert summary.versions == everyone_at(version)

    try:
        # No rule yet: the external phones are challenged once, then sign in.
        summary = fleet.run_round()
        quiet(summary, old)
        assert summary.challenged == EXTERNAL

        # Imported: pending only, so nothing is offered to phones that are not test devices.
        import_version(first)
        quiet(fleet.run_round(), old)

        act(RuleAction.APPROVE)
        moved(fleet.run_round(), first)
        quiet(fleet.run_round(), first)
        spool_load_once()
        assert inventory(Device.objects.all()) == {(first, first, "up to date"): PHONES}

        import_version(second)
        quiet(fleet.run_round(), first)
        act(RuleAction.APPROVE)
        moved(fleet.run_round(), second)
        quiet(fleet.run_round(), second)

        # Restore: the approved version goes back to the first, and the phones follow.
        act(RuleAction.RESTORE)
        moved(fleet.run_round(), first)
        quiet(fleet.run_round(), first)
        assert fleet.rounds_run == 9

        spool_load_once()
        assert spool_pending_records() == 0
        devices = Device.objects.filter(last_server=fleet_server.fqdn)
        assert devices.count() == PHONES
        assert inventory(devices) == {(first, first, "up to date"): PHONES}
        assert Counter(devices.values_list("last_channel", flat=True)) == {
            "internal": PHONES - EXTERNAL,
            "external": EXTERNAL,
        }
        assert sorted(
            devices.filter(last_channel="external").values_list("last_user", flat=True)
        ) == [f"sip:phone{n:04d}@example.org" for n in range(1, EXTERNAL + 1)]

        # The audit: 9 rounds of 12 answered checks, and the 3 challenges of round one.
        audit = RequestAudit.objects.filter(server=fleet_server.fqdn)
        assert Counter(audit.values_list("outcome", "status")) == {
            ("no rule", 200): PHONES,
            ("up to date", 200): 5 * PHONES,
            ("offered", 200): 3 * PHONES,
            ("refused", 401): EXTERNAL,
        }
        assert set(audit.filter(status=401).values_list("message", flat=True)) == {
            "AnonymousNotSupported: credentials are required"
        }
        # One phone's story, oldest first: what it reported and what it was told.
        phone = fleet.phones[EXTERNAL]  # an internal one
        story = [
            (row.request_modules[0]["version"], row.response_modules[0]["target"], row.outcome)
            for row in audit.filter(mac=phone.mac.replace("-", "")).order_by("created_at", "id")
        ]
        assert story == [
            (old, "", "no rule"),
            (old, "", "up to date"),
            (old, first, "offered"),
            (first, first, "up to date"),
            (first, first, "up to date"),
            (first, second, "offered"),
            (second, second, "up to date"),
            (second, first, "offered"),
            (first, first, "up to date"),
        ]
        logs = settings.DATA_DIR / "DeviceUpdateLogs" / "Server" / "Audit" / "ImageUpdates"
        lines = [
            line
            for path in logs.glob(f"RequestHandlerAuditLog_{fleet_server.fqdn}_*.log")
            for line in path.read_text().splitlines()
        ]
        assert len(lines) == 9 * PHONES + EXTERNAL
    finally:
        store = settings.CENTRAL_STORE_DIR / "DeviceUpdateStore" / "UCPhone"
        for version in (first, second):
            for folder in store.glob(f"*/*/Rev-1/ENU/{version}"):
                shutil.rmtree(folder)
