"""Fixtures of the live tests: this process's server in a pool of its own."""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from pytest_django.fixtures import Settings

from phones.decision import decision_tables
from portal.models import Pool, Server, Site


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
