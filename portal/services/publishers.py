"""Trusted publishers: the certificates package catalogs must chain to."""

from __future__ import annotations

import re

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.serialization import Encoding
from django.db import transaction

from portal.errors import DomainError
from portal.models import TrustedPublisher
from portal.services.audit import Actor, audit_record, diff, snapshot

MAX_PEM_BYTES = 64 * 1024
FIELDS = ("fingerprint_sha256", "subject", "issuer", "not_valid_before", "not_valid_after")
_PEM_BLOCK = re.compile(
    r"-----BEGIN CERTIFICATE-----\s+[A-Za-z0-9+/=\s]+?-----END CERTIFICATE-----"
)


def normalise_fingerprint(value: str) -> str:
    text = re.sub(r"[\s:]", "", value).lower()
    if not re.fullmatch(r"[0-9a-f]{64}", text):
        raise DomainError(
            f"{value!r} is not a SHA-256 fingerprint (64 hex digits)", field="fingerprint"
        )
    return text


def publisher_add(*, pem: str, actor: Actor) -> TrustedPublisher:
    """Trust one PEM certificate; refuses anything that is not exactly one certificate."""
    if len(pem.encode("utf-8", "replace")) > MAX_PEM_BYTES:
        raise DomainError("the certificate is larger than 64 KiB", field="certificate_pem")
    blocks = _PEM_BLOCK.findall(pem)
    if len(blocks) != 1:
        raise DomainError(
            "give exactly one PEM certificate (-----BEGIN CERTIFICATE-----)",
            field="certificate_pem",
        )
    try:
        certificate = x509.load_pem_x509_certificate(blocks[0].encode("ascii"))
    except ValueError:
        raise DomainError("this is not a valid PEM certificate", field="certificate_pem") from None
    fingerprint = certificate.fingerprint(hashes.SHA256()).hex()
    publisher = TrustedPublisher(
        certificate_pem=certificate.public_bytes(Encoding.PEM).decode("ascii"),
        fingerprint_sha256=fingerprint,
        subject=certificate.subject.rfc4514_string()[:1000],
        issuer=certificate.issuer.rfc4514_string()[:1000],
        serial_number=format(certificate.serial_number, "x"),
        not_valid_before=certificate.not_valid_before_utc,
        not_valid_after=certificate.not_valid_after_utc,
    )
    with transaction.atomic():
        if TrustedPublisher.objects.filter(fingerprint_sha256=fingerprint).exists():
            raise DomainError(
                f"this certificate is already trusted ({fingerprint})", field="certificate_pem"
            )
        publisher.save()
        audit_record(
            actor=actor,
            action="portal.publisher.added",
            obj=publisher,
            changes=diff({}, snapshot(publisher, FIELDS)),
        )
    return publisher


def publisher_remove(*, fingerprint: str, actor: Actor) -> None:
    """Stop trusting a certificate; packages already imported stay as they are."""
    normalised = normalise_fingerprint(fingerprint)
    with transaction.atomic():
        publisher = (
            TrustedPublisher.objects.select_for_update()
            .filter(fingerprint_sha256=normalised)
            .first()
        )
        if publisher is None:
            raise DomainError(
                f"no trusted publisher with fingerprint {normalised}",
                field="fingerprint",
                code="not_found",
            )
        audit_record(
            actor=actor,
            action="portal.publisher.removed",
            obj=publisher,
            changes=diff(snapshot(publisher, FIELDS), {}),
        )
        publisher.delete()
