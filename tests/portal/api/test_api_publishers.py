"""Trusted publishers through the API: list, detail, add a PEM certificate, remove by
fingerprint; anything but exactly one new certificate is refused."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.serialization import Encoding
from rest_framework.test import APIClient

from portal.models import AuditEntry, TrustedPublisher
from portal.services.audit import Actor
from portal.services.publishers import publisher_add

pytestmark = pytest.mark.django_db

MakeCertificate = Callable[..., x509.Certificate]


def pem(certificate: x509.Certificate) -> str:
    return certificate.public_bytes(Encoding.PEM).decode("ascii")


def fingerprint(certificate: x509.Certificate) -> str:
    return certificate.fingerprint(hashes.SHA256()).hex()


def publisher_json(certificate: x509.Certificate, name: str) -> dict[str, str]:
    return {
        "fingerprint": fingerprint(certificate),
        "subject": f"CN={name}",
        "issuer": f"CN={name}",
        "serial_number": "5eed",
        "not_valid_before": "2024-01-01T00:00:00Z",
        "not_valid_after": "2025-01-01T00:00:00Z",
    }


@pytest.fixture
def certificate(make_certificate: MakeCertificate) -> x509.Certificate:
    return make_certificate("API Test Publisher")


@pytest.fixture
def trusted(db: None, certificate: x509.Certificate) -> TrustedPublisher:
    return publisher_add(pem=pem(certificate), actor=Actor.system("setup"))


def test_add_publisher_reads_the_certificate(
    admin_api: APIClient, certificate: x509.Certificate
) -> None:
    response = admin_api.post(
        "/api/v1/trusted-publishers/", {"certificate_pem": pem(certificate)}, format="json"
    )

    assert response.status_code == 201
    assert response.json() == publisher_json(certificate, "API Test Publisher")
    assert list(TrustedPublisher.objects.values_list("fingerprint_sha256", flat=True)) == [
        fingerprint(certificate)
    ]
    entry = AuditEntry.objects.get()
    assert (entry.action, entry.actor_name) == ("portal.publisher.added", "ada")


def test_list_and_detail_show_publishers(
    admin_api: APIClient, certificate: x509.Certificate, trusted: TrustedPublisher
) -> None:
    expected = publisher_json(certificate, "API Test Publisher")

    listed = admin_api.get("/api/v1/trusted-publishers/")
    detail = admin_api.get(f"/api/v1/trusted-publishers/{fingerprint(certificate).upper()}/")

    assert listed.status_code == 200
    assert listed.json() == {"next": None, "previous": None, "results": [expected]}
    assert detail.status_code == 200
    assert detail.json() == expected


def test_detail_of_an_unknown_fingerprint_is_404(admin_api: APIClient) -> None:
    response = admin_api.get(f"/api/v1/trusted-publishers/{'ab' * 32}/")

    assert response.status_code == 404


def test_remove_publisher_by_fingerprint_with_colons(
    admin_api: APIClient, certificate: x509.Certificate, trusted: TrustedPublisher
) -> None:
    hex_text = fingerprint(certificate).upper()
    with_colons = ":".join(hex_text[i : i + 2] for i in range(0, 64, 2))

    response = admin_api.delete(f"/api/v1/trusted-publishers/{with_colons}/")

    assert response.status_code == 204
    assert not TrustedPublisher.objects.exists()
    entry = AuditEntry.objects.get(action="portal.publisher.removed")
    assert entry.actor_name == "ada"


def test_remove_unknown_publisher_is_404_and_changes_nothing(
    admin_api: APIClient, trusted: TrustedPublisher
) -> None:
    response = admin_api.delete(f"/api/v1/trusted-publishers/{'ab' * 32}/")

    assert response.status_code == 404
    assert response.json() == {"detail": f"no trusted publisher with fingerprint {'ab' * 32}"}
    assert TrustedPublisher.objects.count() == 1
    assert AuditEntry.objects.count() == 1


def test_remove_with_a_malformed_fingerprint_is_400(
    admin_api: APIClient, trusted: TrustedPublisher
) -> None:
    response = admin_api.delete("/api/v1/trusted-publishers/abc/")

    assert response.status_code == 400
    assert response.json() == {
        "fingerprint": ["'abc' is not a SHA-256 fingerprint (64 hex digits)"]
    }
    assert TrustedPublisher.objects.count() == 1
    assert AuditEntry.objects.count() == 1


EXACTLY_ONE = "give exactly one PEM certificate (-----BEGIN CERTIFICATE-----)"
NOT_VALID = "this is not a valid PEM certificate"
PRIVATE_KEY = (
    "-----BEGIN PRIVATE KEY-----\nMIGHAgEAMBMGByqGSM49AgEGCCqGSM49\n-----END PRIVATE KEY-----\n"
)
GARBAGE_CERTIFICATE = "-----BEGIN CERTIFICATE-----\nAAAABBBBCCCC\n-----END CERTIFICATE-----\n"


@pytest.mark.parametrize(
    ("text", "errors"),
    [
        ("hello", {"certificate_pem": [EXACTLY_ONE]}),
        (PRIVATE_KEY, {"certificate_pem": [EXACTLY_ONE]}),
        (GARBAGE_CERTIFICATE, {"certificate_pem": [NOT_VALID]}),
        ("", {"certificate_pem": ["This field may not be blank."]}),
    ],
)
def test_add_something_that_is_not_a_certificate_is_400(
    admin_api: APIClient, trusted: TrustedPublisher, text: str, errors: dict[str, list[str]]
) -> None:
    response = admin_api.post(
        "/api/v1/trusted-publishers/", {"certificate_pem": text}, format="json"
    )

    assert response.status_code == 400
    assert response.json() == errors
    assert TrustedPublisher.objects.count() == 1
    assert AuditEntry.objects.count() == 1


def test_add_two_certificates_at_once_is_400(
    admin_api: APIClient, make_certificate: MakeCertificate
) -> None:
    both = pem(make_certificate("One")) + pem(make_certificate("Two"))

    response = admin_api.post(
        "/api/v1/trusted-publishers/", {"certificate_pem": both}, format="json"
    )

    assert response.status_code == 400
    assert response.json() == {"certificate_pem": [EXACTLY_ONE]}
    assert not TrustedPublisher.objects.exists()
    assert AuditEntry.objects.count() == 0


def test_add_an_already_trusted_certificate_is_400(
    admin_api: APIClient, certificate: x509.Certificate, trusted: TrustedPublisher
) -> None:
    response = admin_api.post(
        "/api/v1/trusted-publishers/", {"certificate_pem": pem(certificate)}, format="json"
    )

    assert response.status_code == 400
    assert response.json() == {
        "certificate_pem": [f"this certificate is already trusted ({fingerprint(certificate)})"]
    }
    assert TrustedPublisher.objects.count() == 1
    assert AuditEntry.objects.count() == 1
