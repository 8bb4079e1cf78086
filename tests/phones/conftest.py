"""Fixtures for the phone endpoints: a pool with rules, stored versions and copies."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from django.conf import settings
from django.core.cache import cache
from django.utils import timezone
from pytest_django.fixtures import Settings

from phones.decision import decision_tables
from portal.choices import ReplicaState, UpdateFileRole
from portal.models import (
    DeviceUpdateRule,
    Pool,
    Server,
    ServerFile,
    UpdateFile,
    UpdateVersion,
)
from tests.factories import CX600_DEVICE, RuleFactory
from tests.factories import RULE_A as RULE_ID

CLASS = CX600_DEVICE  # the rule fixture's device class, as a phone reports it


@pytest.fixture(autouse=True)
def fresh_phone_state(settings: Settings) -> Iterator[None]:
    """Each test starts with no decision table, no throttle counts (and its own spool)."""
    decision_tables.reset()
    cache.clear()
    yield
    decision_tables.reset()


def stored_version(version: str, *, update_type: str = "CPE", verified_on: Server | None) -> str:
    """Record a stored version with an image and a catalog; verified on one server."""
    folder = "/".join([*CLASS.values(), version, update_type])
    stored = UpdateVersion.objects.create(
        **CLASS,
        version=version,
        update_type=update_type,
        folder=folder,
        rule_id=RULE_ID,
        signer="CN=Test",
        catalog_digest="sha256",
    )
    files = [
        UpdateFile.objects.create(
            version=stored, name=name, role=role, size=size, sha256=name[0] * 64,
            storage_name=f"DeviceUpdateStore/{folder}/{name}",
        )
        for name, role, size in [
            (f"{update_type}.nbt", UpdateFileRole.IMAGE, 31457280),
            (f"{update_type}.cat", UpdateFileRole.CATALOG, 2000),
            (f"{update_type}.xml", UpdateFileRole.DESCRIPTION, 500),
        ]
    ]  # fmt: skip
    if verified_on is not None:
        for file in files:
            ServerFile.objects.create(
                server=verified_on, file=file, state=ReplicaState.VERIFIED,
                verified_at=timezone.now(),
            )  # fmt: skip
    return folder


@pytest.fixture
def pool(db: None) -> Pool:
    pool = Pool.objects.get()
    pool.internal_web_fqdn = "pool01.contoso.com"
    pool.external_web_fqdn = "web.contoso.com"
    pool.save()
    return pool


@pytest.fixture
def server(pool: Pool) -> Server:
    return Server.objects.get(fqdn=settings.SERVER_FQDN)


@pytest.fixture
def rule(pool: Pool, server: Server) -> DeviceUpdateRule:
    """Approved 4.0.7577.4387 (restore 4.0.7577.4363), pending 4.0.7577.5000; all three
    stored and verified on this server."""
    for version in ("4.0.7577.4363", "4.0.7577.4387", "4.0.7577.5000"):
        stored_version(version, verified_on=server)
    return RuleFactory.create(
        pool=pool,
        rule_id=RULE_ID,
        pending_version="4.0.7577.5000",
        approved_version="4.0.7577.4387",
        restore_version="4.0.7577.4363",
    )
