"""Each event is emitted by the service where it happens, once its change commits:
rollout transitions, an import's success or refusal, a sign-in lockout, and a server
the anti-entropy finds out of sync. A transition webhooks do not hear of emits nothing."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from unittest import mock

import pytest

from deviceupdate_devtools import builder
from portal.choices import WebhookEvent
from portal.device_class import RuleClass
from portal.models import DeviceUpdateRule, Pool, Server, TrustedPublisher, UpdateVersion
from portal.services.audit import Actor
from portal.services.imports import package_import_run, package_import_start
from portal.services.replication import server_check_store, server_replicate
from portal.services.rollout_plans import RolloutPlan, WavePlan
from portal.services.rollouts import rollout_advance, rollout_halt, rollout_pause, rollout_plan
from portal.services.signin import signin_lockout_record
from portal.services.webhooks import webhook_register

pytestmark = pytest.mark.django_db

Capture = Callable[..., Any]
ACTOR = Actor.system("tests")
CX600 = RuleClass("UCPhone", "Polycom", "CX600", "Rev-1", "ENU", "CPE")
T0 = dt.datetime(2026, 1, 5, 9, 0, tzinfo=dt.UTC)


@pytest.fixture
def sent(django_capture_on_commit_callbacks: Capture) -> Iterator[list[tuple[str, Any]]]:
    """(event, data) of every delivery queued, to a webhook subscribed to every event."""
    webhook_register(
        name="All", url="https://hooks.example.org/", events=WebhookEvent.values, actor=ACTOR
    )
    queued: list[tuple[str, Any]] = []

    def delay(**kwargs: Any) -> None:
        queued.append((kwargs["event"], json.loads(kwargs["body"])["data"]))

    with mock.patch("portal.tasks.webhook_deliver_task.delay", side_effect=delay):
        yield queued


@pytest.fixture
def rule() -> DeviceUpdateRule:
    return DeviceUpdateRule.objects.create(
        pool=Pool.objects.get(), rule_id=uuid.UUID("2de8cbf6-8a1e-4bc0-9d9e-0b2b5a1c1f11"),
        pending_version="4.0.2", approved_version="4.0.1", **vars(CX600),
    )  # fmt: skip


def rollout_data(
    rule: DeviceUpdateRule, pk: int, state: str, wave: int, reason: str
) -> dict[str, Any]:
    return {
        "rollout": pk,
        "rule": rule.identity,
        "device_class": "UCPhone/Polycom/CX600/Rev-1/ENU/CPE",
        "from_version": "4.0.1",
        "to_version": "4.0.2",
        "state": state,
        "wave": wave,
        "waves": 2,
        "reason": reason,
        "actor": "tests",
    }


def test_rollout_transitions_are_sent_after_each_commit(
    rule: DeviceUpdateRule, sent: list[tuple[str, Any]], django_capture_on_commit_callbacks: Capture
) -> None:
    plan = RolloutPlan(waves=(WavePlan(percent=10), WavePlan(percent=100)))
    with django_capture_on_commit_callbacks(execute=True):
        rollout = rollout_plan(rule=rule, plan=plan, actor=ACTOR, now=T0)
    with django_capture_on_commit_callbacks(execute=True):
        rollout_pause(rollout=rollout, actor=ACTOR, now=T0)  # not an event
    with django_capture_on_commit_callbacks(execute=True):
        rollout_advance(rollout=rollout, actor=ACTOR, reason="soaked", now=T0)
    with django_capture_on_commit_callbacks(execute=True):
        rollout_halt(rollout=rollout, actor=ACTOR, reason="3 failed", now=T0)
    assert sent == [
        ("rollout.planned", rollout_data(rule, rollout.pk, "running", 1, "planned")),
        ("rollout.advanced", rollout_data(rule, rollout.pk, "running", 2, "soaked")),
        ("rollout.halted", rollout_data(rule, rollout.pk, "halted", 2, "3 failed")),
    ]


def test_a_completed_rollout_is_sent(
    rule: DeviceUpdateRule, sent: list[tuple[str, Any]], django_capture_on_commit_callbacks: Capture
) -> None:
    plan = RolloutPlan(waves=(WavePlan(percent=10), WavePlan(percent=100)))
    rollout = rollout_plan(rule=rule, plan=plan, actor=ACTOR, now=T0)
    rollout_advance(rollout=rollout, actor=ACTOR, now=T0)
    with django_capture_on_commit_callbacks(execute=True):
        rollout_advance(rollout=rollout, actor=ACTOR, reason="all waves done", now=T0)
    assert [(event, data["state"], data["reason"]) for event, data in sent] == [
        ("rollout.completed", "completed", "all waves done")
    ]


def test_a_rolled_back_transition_sends_nothing(
    rule: DeviceUpdateRule, sent: list[tuple[str, Any]], django_capture_on_commit_callbacks: Capture
) -> None:
    with (
        django_capture_on_commit_callbacks(execute=True),
        mock.patch(
            "portal.services.rollouts.decision_generation_bump", side_effect=OSError("disk full")
        ),
        pytest.raises(OSError, match="^disk full$"),
    ):
        rollout_plan(rule=rule, plan=RolloutPlan(waves=(WavePlan(percent=100),)), actor=ACTOR)
    assert sent == []


def test_a_sign_in_lockout_is_sent(
    sent: list[tuple[str, Any]], django_capture_on_commit_callbacks: Capture
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        signin_lockout_record(username="mallory", address="192.0.2.7", failures=5)
    assert sent == [
        (
            "signin.locked_out",
            {"username": "mallory", "address": "192.0.2.7", "failures": 5, "cooloff_minutes": 15},
        )
    ]


def test_an_import_refused_and_an_import_succeeded_are_sent(
    tmp_path: Path,
    publisher: builder.Signer,
    stores: dict[str, Path],
    trusted: TrustedPublisher,
    sent: list[tuple[str, Any]],
    django_capture_on_commit_callbacks: Capture,
) -> None:
    (tmp_path / "junk.cab").write_bytes(b"not a cabinet at all")
    package = builder.build_package(
        [builder.build_update(signer=publisher, images={"CPE.nbt": 10_000})],
        path=tmp_path / "good.cab",
    )
    jobs = []
    for path in (tmp_path / "junk.cab", package):
        with django_capture_on_commit_callbacks(execute=False), path.open("rb") as source:
            job = package_import_start(source=source, filename=path.name, pools=[], actor=ACTOR)
        with (
            mock.patch("portal.tasks.server_replicate_task.delay"),
            django_capture_on_commit_callbacks(execute=True),
        ):
            jobs.append(package_import_run(job_id=job.pk))
    refused, succeeded = jobs
    assert refused is not None
    assert succeeded is not None
    assert (refused.status, succeeded.status) == ("failed", "succeeded")
    assert sent == [
        (
            "import.refused",
            {"import": refused.pk, "package": "junk.cab", "package_sha256": refused.package_sha256,
             "actor": "tests", "error": refused.error},
        ),
        (
            "import.succeeded",
            {"import": succeeded.pk, "package": "good.cab",
             "package_sha256": succeeded.package_sha256, "actor": "tests", "error": None},
        ),
    ]  # fmt: skip
    assert refused.error != ""


def test_the_anti_entropy_sends_a_server_out_of_sync_once_per_check(
    tmp_path: Path,
    publisher: builder.Signer,
    stores: dict[str, Path],
    trusted: TrustedPublisher,
    sent: list[tuple[str, Any]],
    django_capture_on_commit_callbacks: Capture,
) -> None:
    package = builder.build_package(
        [builder.build_update(signer=publisher, images={"CPE.nbt": 10_000})],
        path=tmp_path / "p.cab",
    )
    with django_capture_on_commit_callbacks(execute=False), package.open("rb") as source:
        job = package_import_start(source=source, filename="p.cab", pools=[], actor=ACTOR)
    with mock.patch("portal.tasks.server_replicate_task.delay"):
        package_import_run(job_id=job.pk)
    server = Server.objects.select_related("pool").get()
    version = UpdateVersion.objects.get()
    server_replicate(server=server, version_id=version.pk, store_dir=stores["server"])
    # In sync: nothing to tell.
    with django_capture_on_commit_callbacks(execute=True):
        server_check_store(server=server, store_dir=stores["server"], full=True)
    assert sent == []
    next(stores["server"].rglob("CPE.nbt")).write_bytes(b"tampered")
    next(stores["server"].rglob("CPE.cat")).unlink()
    with django_capture_on_commit_callbacks(execute=True):
        server_check_store(server=server, store_dir=stores["server"], full=True)
    assert sent == [
        (
            "server.out_of_sync",
            {"server": server.fqdn, "pool": server.pool.fqdn, "missing": 1, "corrupt": 1,
             "copied": 2, "failed": 0},
        )
    ]  # fmt: skip
