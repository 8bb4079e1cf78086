"""Fixtures shared by the control panel's tests: signing certificates, private stores."""

from __future__ import annotations

from pathlib import Path

import pytest
from pytest_django.fixtures import Settings

from deviceupdate_devtools import builder
from portal.models import TrustedPublisher
from portal.services.audit import Actor
from portal.services.publishers import publisher_add


@pytest.fixture(scope="session")
def ca() -> builder.Signer:
    return builder.make_test_ca()


@pytest.fixture(scope="session")
def publisher(ca: builder.Signer) -> builder.Signer:
    return builder.make_publisher(ca)


@pytest.fixture
def stores(settings: Settings, tmp_path: Path) -> dict[str, Path]:
    """A central file store, an import staging folder and this server's store, private
    to the test."""
    central = tmp_path / "central"
    imports = tmp_path / "imports"
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(central)},
        },
    }
    settings.IMPORT_STAGING_DIR = imports
    settings.SERVER_STORE_DIR = tmp_path / "server-store"
    return {"central": central, "staging": imports, "server": tmp_path / "server-store"}


@pytest.fixture
def trusted(db: None, ca: builder.Signer) -> TrustedPublisher:
    """The test CA as the control panel's trusted publisher."""
    return publisher_add(pem=ca.certificate_pem.decode(), actor=Actor.system("tests"))
