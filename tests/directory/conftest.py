"""One real slapd for the whole session; ``directory`` turns directory sign-in on."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.core.cache import cache
from pytest_django.fixtures import Settings

from tests.conftest import missing_service
from tests.directory.slapd import Slapd, create_slapd

# The phone tests here need the phone tests' pool, server and rule (and their fresh
# decision table and audit buffer for each test).
from tests.phones.conftest import fresh_phone_state, pool, rule, server  # noqa: F401

BACKENDS = [
    "portal.admin.lockouts.SigninGuardBackend",
    "portal.directory.backend.DirectoryBackend",
    "django.contrib.auth.backends.ModelBackend",
]


def _tool(name: str) -> str:
    # slapd lives in /usr/sbin, which a non-root PATH may leave out.
    path = shutil.which(name) or shutil.which(name, path=f"{os.defpath}:/usr/sbin:/sbin")
    if path is None:
        missing_service(f"needs the Debian tool {name!r} (apt-get install slapd ldap-utils)")
    assert path is not None
    return path


@pytest.fixture(scope="session")
def slapd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Slapd]:
    running = create_slapd(
        slapd=_tool("slapd"),
        slapadd=_tool("slapadd"),
        folder=Path(tmp_path_factory.mktemp("slapd")),
    )
    running.start()
    yield running
    running.stop()


@pytest.fixture
def directory(slapd: Slapd, settings: Settings, db: None) -> Slapd:
    """The service signs in against the test directory (plain LDAP)."""
    settings.DIRECTORY = slapd.config()
    settings.AUTHENTICATION_BACKENDS = BACKENDS
    return slapd


@pytest.fixture(autouse=True)
def _fresh_cache() -> Iterator[None]:
    """No sign-in cached and no failures counted from another test."""
    cache.clear()
    yield
    cache.clear()
