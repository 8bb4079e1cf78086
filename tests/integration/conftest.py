"""Fixtures of the live tests: this process's server in a pool of its own."""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from pytest_django.fixtures import Settings

from phones.decision import decision_tables
from phones.services.spool_loader import spool_load_once
from phones.tasks import rollouts_observe_task
from portal.models import Pool, Rollout, Server, Site
from tests.conftest import wait_until


def decisions_refreshed() -> None:
    # The live server runs in this process: its decision table notices a moved
    # generation at its next check, at most CHECK_EVERY seconds later.
    time.sleep(decision_tables.CHECK_EVERY + 0.5)


@pytest.fixture
def fleet_server(settings: Settings, tmp_path: Path) -> Iterator[Server]:
    """This process's server (the live server answers as it) in a pool of its own, its
    store private to the test; the audit is flushed by hand."""
    tag = secrets.token_hex(4)
    site = Site.objects.create(name=f"Fleet {tag}")
    pool = Pool.objects.create(
        site=site,
        fqdn=f"pool-{tag}.example.org",
        internal_web_fqdn=f"pool-{tag}.example.org",
        external_web_fqdn=f"web-{tag}.example.org",
    )
    server = Server.objects.create(pool=pool, fqdn=f"fe-{tag}.example.org")
    settings.SERVER_FQDN = server.fqdn
    settings.SERVER_STORE_DIR = tmp_path / "store"
    # A fast hasher: the external phones sign in on every check.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    decision_tables.reset()
    yield server
    decision_tables.reset()


def identity(mac: str) -> str:
    return "MAC:" + mac.replace("-", "").upper()


def observed_by_worker(rollout: Rollout, until: Callable[[Rollout], bool], what: str) -> Rollout:
    """Write out the audit, have the worker run the observation job, wait for ``until``."""
    spool_load_once()
    rollouts_observe_task.delay()

    def reached() -> bool:
        rollout.refresh_from_db()
        return until(rollout)

    wait_until(reached, what, seconds=60)
    decisions_refreshed()
    return rollout
