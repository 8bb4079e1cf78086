"""Trusted publishers: PEM certificates in, fingerprint and validity read out."""

from __future__ import annotations

import datetime as dt

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID

from portal.errors import DomainError
from portal.models import AuditEntry, TrustedPublisher
from portal.services.audit import Actor
from portal.services.publishers import publisher_add, publisher_remove

pytestmark = pytest.mark.django_db

ACTOR = Actor.system("tests")
NOT_BEFORE = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
NOT_AFTER = dt.datetime(2035, 1, 1, tzinfo=dt.UTC)


def certificate() -> x509.Certificate:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Contoso Phones Publisher")])
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(0x1234)
        .not_valid_before(NOT_BEFORE)
        .not_valid_after(NOT_AFTER)
        .sign(key, hashes.SHA256())
    )


def test_a_pem_certificate_is_trusted_with_what_it_says() -> None:
    cert = certificate()
    publisher = publisher_add(pem=cert.public_bytes(Encoding.PEM).decode(), actor=ACTOR)
    fingerprint = cert.fingerprint(hashes.SHA256()).hex()
    assert (
        publisher.fingerprint_sha256,
        publisher.subject,
        publisher.issuer,
        publisher.serial_number,
        publisher.not_valid_before,
        publisher.not_valid_after,
    ) == (
        fingerprint,
        "CN=Contoso Phones Publisher",
        "CN=Contoso Phones Publisher",
        "1234",
        NOT_BEFORE,
        NOT_AFTER,
    )
    assert AuditEntry.objects.get().action == "portal.publisher.added"
    colon_form = ":".join(fingerprint[i : i + 2] for i in range(0, 64, 2)).upper()
    publisher_remove(fingerprint=colon_form, actor=ACTOR)
    assert TrustedPublisher.objects.count() == 0
    assert AuditEntry.objects.order_by("id").last().action == "portal.publisher.removed"  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("pem", "message"),
    [
        ("hello", "give exactly one PEM certificate (-----BEGIN CERTIFICATE-----)"),
        (
            "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----",
            "this is not a valid PEM certificate",
        ),
        ("x" * (64 * 1024 + 1), "the certificate is larger than 64 KiB"),
    ],
)
def test_what_is_not_one_certificate_is_refused(pem: str, message: str) -> None:
    with pytest.raises(DomainError) as error:
        publisher_add(pem=pem, actor=ACTOR)
    assert (error.value.field, error.value.message) == ("certificate_pem", message)
    assert TrustedPublisher.objects.count() == 0
    assert AuditEntry.objects.count() == 0


def test_two_certificates_at_once_and_duplicates_are_refused() -> None:
    pem = certificate().public_bytes(Encoding.PEM).decode()
    with pytest.raises(DomainError, match="give exactly one PEM certificate"):
        publisher_add(pem=pem + certificate().public_bytes(Encoding.PEM).decode(), actor=ACTOR)
    publisher_add(pem=pem, actor=ACTOR)
    with pytest.raises(DomainError, match="this certificate is already trusted"):
        publisher_add(pem=pem, actor=ACTOR)
    assert TrustedPublisher.objects.count() == 1
    assert AuditEntry.objects.count() == 1


def test_removing_an_unknown_fingerprint_is_refused() -> None:
    with pytest.raises(DomainError) as error:
        publisher_remove(fingerprint="ab" * 32, actor=ACTOR)
    assert (error.value.code, error.value.message) == (
        "not_found",
        f"no trusted publisher with fingerprint {'ab' * 32}",
    )
    with pytest.raises(DomainError, match="is not a SHA-256 fingerprint"):
        publisher_remove(fingerprint="xyz", actor=ACTOR)
