"""Trusted publishers in the control panel: paste a PEM, list, remove; never edit."""

from __future__ import annotations

import datetime as dt

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID
from django.contrib.auth.models import User
from django.test import Client

from portal.models import AuditEntry, TrustedPublisher
from portal.services.audit import Actor
from portal.services.publishers import publisher_add

pytestmark = pytest.mark.django_db

CHANGELIST = "/admin/portal/trustedpublisher/"
ADD = f"{CHANGELIST}add/"


def certificate_pem(common_name: str = "Contoso Phones Publisher") -> tuple[str, str]:
    """A self-signed certificate as PEM, and its SHA-256 fingerprint."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(0x1234)
        .not_valid_before(dt.datetime(2025, 1, 1, tzinfo=dt.UTC))
        .not_valid_after(dt.datetime(2035, 1, 1, tzinfo=dt.UTC))
        .sign(key, hashes.SHA256())
    )
    return cert.public_bytes(Encoding.PEM).decode(), cert.fingerprint(hashes.SHA256()).hex()


def test_add_a_publisher_by_pasting_a_pem(client: Client, administrator: User) -> None:
    pem, fingerprint = certificate_pem()
    client.force_login(administrator)
    form = client.get(ADD).context["adminform"].form
    assert list(form.fields) == ["certificate_pem"]

    response = client.post(ADD, {"certificate_pem": f"pasted from the vendor:\n{pem}"})

    assert response.status_code == 302
    publisher = TrustedPublisher.objects.get()
    assert (publisher.subject, publisher.issuer, publisher.fingerprint_sha256) == (
        "CN=Contoso Phones Publisher",
        "CN=Contoso Phones Publisher",
        fingerprint,
    )
    entry = AuditEntry.objects.get()
    assert (entry.action, entry.actor_name, entry.object_id) == (
        "portal.publisher.added",
        "ada",
        str(publisher.pk),
    )


def test_list_shows_subject_issuer_fingerprint_and_validity(
    client: Client, administrator: User
) -> None:
    pem, fingerprint = certificate_pem()
    publisher_add(pem=pem, actor=Actor.system("setup"))
    client.force_login(administrator)

    response = client.get(CHANGELIST)

    assert list(response.context["cl"].list_display) == [
        "action_checkbox",
        "subject",
        "issuer",
        "fingerprint_sha256",
        "not_valid_before",
        "not_valid_after",
    ]
    page = response.content.decode()
    assert fingerprint in page
    assert "CN=Contoso Phones Publisher" in page


@pytest.mark.parametrize(
    ("pem", "message"),
    [
        ("hello", "give exactly one PEM certificate (-----BEGIN CERTIFICATE-----)"),
        (
            "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----",
            "this is not a valid PEM certificate",
        ),
        (
            "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----",
            "give exactly one PEM certificate (-----BEGIN CERTIFICATE-----)",
        ),
    ],
)
def test_a_pem_that_is_not_a_certificate_is_a_form_error(
    client: Client, administrator: User, pem: str, message: str
) -> None:
    client.force_login(administrator)

    response = client.post(ADD, {"certificate_pem": pem})

    assert response.status_code == 200
    assert response.context["adminform"].form.errors == {"certificate_pem": [message]}
    assert TrustedPublisher.objects.count() == 0
    assert AuditEntry.objects.count() == 0


def test_the_same_certificate_twice_is_refused(client: Client, administrator: User) -> None:
    pem, fingerprint = certificate_pem()
    publisher_add(pem=pem, actor=Actor.system("setup"))
    client.force_login(administrator)

    response = client.post(ADD, {"certificate_pem": pem})

    assert response.context["adminform"].form.errors == {
        "certificate_pem": [f"this certificate is already trusted ({fingerprint})"]
    }
    assert TrustedPublisher.objects.count() == 1
    assert AuditEntry.objects.count() == 1


def test_a_publisher_is_never_edited(client: Client, administrator: User) -> None:
    pem, _ = certificate_pem()
    publisher = publisher_add(pem=pem, actor=Actor.system("setup"))
    client.force_login(administrator)

    page = client.get(f"{CHANGELIST}{publisher.pk}/change/")
    response = client.post(
        f"{CHANGELIST}{publisher.pk}/change/", {"subject": "CN=Mallory", "certificate_pem": pem}
    )

    assert page.status_code == 200
    assert 'name="_save"' not in page.content.decode()
    assert "CN=Contoso Phones Publisher" in page.content.decode()
    assert response.status_code == 403
    assert TrustedPublisher.objects.get().subject == "CN=Contoso Phones Publisher"


def test_delete_removes_through_the_service(client: Client, administrator: User) -> None:
    pem, fingerprint = certificate_pem()
    publisher = publisher_add(pem=pem, actor=Actor.system("setup"))
    client.force_login(administrator)

    response = client.post(f"{CHANGELIST}{publisher.pk}/delete/", {"post": "yes"})

    assert response.status_code == 302
    assert TrustedPublisher.objects.count() == 0
    entry = AuditEntry.objects.latest("id")
    assert (entry.action, entry.actor_name, entry.changes["fingerprint_sha256"]) == (
        "portal.publisher.removed",
        "ada",
        [fingerprint, None],
    )


def test_bulk_delete_removes_through_the_service(client: Client, administrator: User) -> None:
    setup = Actor.system("setup")
    first = publisher_add(pem=certificate_pem("One")[0], actor=setup)
    second = publisher_add(pem=certificate_pem("Two")[0], actor=setup)
    client.force_login(administrator)

    client.post(
        CHANGELIST,
        {"action": "delete_selected", "_selected_action": [first.pk, second.pk], "post": "yes"},
    )

    assert TrustedPublisher.objects.count() == 0
    assert sorted(
        AuditEntry.objects.filter(actor_name="ada").values_list("action", "object_id")
    ) == sorted(
        [("portal.publisher.removed", str(first.pk)), ("portal.publisher.removed", str(second.pk))]
    )
