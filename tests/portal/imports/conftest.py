"""Fixtures for package imports: a signing CA, a trusted publisher, private stores."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from django.conf import settings
from pytest_django.fixtures import Settings as SettingsWrapper

from portal.models import TrustedPublisher
from portal.packaging.builder import Signer, make_publisher, make_test_ca
from portal.services.audit import Actor
from portal.services.publishers import publisher_add

NOT_BEFORE = dt.datetime(2020, 1, 1, tzinfo=dt.UTC)
NOT_AFTER = dt.datetime(2040, 1, 1, tzinfo=dt.UTC)


@pytest.fixture
def stores(settings: SettingsWrapper, tmp_path: Path) -> dict[str, Path]:
    """A central store and staging folder of this test's own."""
    central = tmp_path / "central"
    staging = tmp_path / "imports"
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(central)},
        },
    }
    settings.IMPORT_STAGING_DIR = staging
    return {"central": central, "staging": staging}


@pytest.fixture(scope="session")
def vendor_ca() -> Signer:
    return make_test_ca(common_name="Contoso Test Root", not_before=NOT_BEFORE, not_after=NOT_AFTER)


@pytest.fixture(scope="session")
def signer(vendor_ca: Signer) -> Signer:
    return make_publisher(
        vendor_ca,
        common_name="Polycom Firmware Signing",
        not_before=NOT_BEFORE,
        not_after=NOT_AFTER,
        key_type="rsa",
    )


@pytest.fixture
def trusted(db: None, vendor_ca: Signer) -> TrustedPublisher:
    return publisher_add(pem=vendor_ca.certificate_pem.decode(), actor=Actor.system("tests"))


__all__ = ["settings"]
