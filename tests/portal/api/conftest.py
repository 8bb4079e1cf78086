"""Fixtures of the API tests: clients per role, a pool of their own, rules in any state,
certificates."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from django.contrib.auth.models import User
from rest_framework.test import APIClient

from portal.device_class import RuleClass
from portal.models import DeviceUpdateRule, Pool, Site
from tests.factories import CX600, RULE_A, RuleFactory

POOL = "pool01.example.org"


@pytest.fixture
def admin_api(administrator: User) -> APIClient:
    client = APIClient()
    client.force_login(administrator)
    return client


@pytest.fixture
def helpdesk_api(helpdesk: User) -> APIClient:
    client = APIClient()
    client.force_login(helpdesk)
    return client


@pytest.fixture
def anonymous_api(db: None) -> APIClient:
    return APIClient()


@pytest.fixture
def pool01(db: None) -> Pool:
    return Pool.objects.create(
        site=Site.objects.get(name="Default"), fqdn=POOL, internal_web_fqdn=POOL
    )


MakeRule = Callable[..., DeviceUpdateRule]


@pytest.fixture
def make_rule(pool01: Pool) -> MakeRule:
    """A rule of ``pool01`` with the given (P, A, R) versions, made directly."""

    def make(
        *,
        pending: str = "",
        approved: str = "",
        restore: str = "",
        restored: bool = False,
        device_class: RuleClass = CX600,
        rule_id: uuid.UUID = RULE_A,
    ) -> DeviceUpdateRule:
        return RuleFactory.create(
            pool=pool01,
            rule_id=rule_id,
            pending_version=pending,
            approved_version=approved,
            restore_version=restore,
            restored=restored,
            device_class=device_class,
        )

    return make


@pytest.fixture
def make_certificate() -> Callable[..., x509.Certificate]:
    """Self-signed certificates valid through 2024, named as asked."""

    def make(common_name: str = "API Test Publisher") -> x509.Certificate:
        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
        return (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(0x5EED)
            .not_valid_before(dt.datetime(2024, 1, 1, tzinfo=dt.UTC))
            .not_valid_after(dt.datetime(2025, 1, 1, tzinfo=dt.UTC))
            .sign(key, hashes.SHA256())
        )

    return make
