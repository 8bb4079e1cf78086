"""`manage.py trusted_publishers`: list, add a PEM file (or standard input), remove."""

from __future__ import annotations

import datetime as dt
import getpass
import io
import json
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID
from django.core.management import call_command

from portal.models import AuditEntry, TrustedPublisher
from portal.services.audit import Actor
from portal.services.publishers import publisher_add

pytestmark = pytest.mark.django_db

ACTOR_NAME = f"manage.py ({getpass.getuser()})"
NOT_BEFORE = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
NOT_AFTER = dt.datetime(2035, 1, 1, tzinfo=dt.UTC)


def run(*args: str, stdin: bytes | None = None) -> tuple[int, str, str]:
    """Exit status, stdout and stderr of one command."""
    out, err = io.StringIO(), io.StringIO()
    extra: dict[str, Any] = {} if stdin is None else {"stdin": io.BytesIO(stdin)}
    try:
        call_command(*args, stdout=out, stderr=err, **extra)
    except SystemExit as stop:
        return (stop.code if isinstance(stop.code, int) else 1), out.getvalue(), err.getvalue()
    return 0, out.getvalue(), err.getvalue()


def certificate(common_name: str = "Contoso Phones Publisher") -> x509.Certificate:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
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


def pem_file(tmp_path: Path, cert: x509.Certificate, name: str = "publisher.pem") -> Path:
    path = tmp_path / name
    path.write_bytes(cert.public_bytes(Encoding.PEM))
    return path


def fingerprints() -> list[str]:
    return list(TrustedPublisher.objects.values_list("fingerprint_sha256", flat=True))


def test_add_a_pem_file_and_list_it(tmp_path: Path) -> None:
    cert = certificate()
    fingerprint = cert.fingerprint(hashes.SHA256()).hex()
    status, out, err = run("trusted_publishers", "add", str(pem_file(tmp_path, cert)))
    assert (status, err) == (0, "")
    assert out == (
        f"trusted CN=Contoso Phones Publisher (SHA-256 {fingerprint}, valid until 2035-01-01)\n"
    )
    entry = AuditEntry.objects.get()
    assert (entry.action, entry.actor_name) == ("portal.publisher.added", ACTOR_NAME)
    status, out, err = run("trusted_publishers", "list")
    assert (status, err) == (0, "")
    assert out.splitlines() == [
        f"{'FINGERPRINT (SHA-256)':<64}  SUBJECT                      VALID UNTIL",
        f"{fingerprint}  CN=Contoso Phones Publisher  2035-01-01",
    ]
    _, out, _ = run("trusted_publishers", "list", "--json")
    publisher = TrustedPublisher.objects.get()
    assert json.loads(out) == [
        {
            "fingerprint_sha256": fingerprint,
            "subject": "CN=Contoso Phones Publisher",
            "issuer": "CN=Contoso Phones Publisher",
            "serial_number": "1234",
            "not_valid_before": "2025-01-01T00:00:00+00:00",
            "not_valid_after": "2035-01-01T00:00:00+00:00",
            "added_at": publisher.added_at.isoformat(),
        }
    ]


def test_add_from_standard_input_as_json() -> None:
    cert = certificate("Fabrikam")
    status, out, err = run(
        "trusted_publishers", "add", "-", "--json", stdin=cert.public_bytes(Encoding.PEM)
    )
    assert (status, err) == (0, "")
    fingerprint = cert.fingerprint(hashes.SHA256()).hex()
    result = json.loads(out)
    assert (result["ok"], result["message"], result["publisher"]["fingerprint_sha256"]) == (
        True,
        f"trusted CN=Fabrikam (SHA-256 {fingerprint}, valid until 2035-01-01)",
        fingerprint,
    )
    assert fingerprints() == [fingerprint]


def test_list_when_nothing_is_trusted() -> None:
    assert run("trusted_publishers", "list") == (0, "no trusted publishers\n", "")
    assert run("trusted_publishers", "list", "--json") == (0, "[]\n", "")


def test_remove_by_fingerprint_with_colons() -> None:
    cert = certificate()
    publisher_add(pem=cert.public_bytes(Encoding.PEM).decode(), actor=Actor.system("test"))
    AuditEntry.objects.all().delete()
    fingerprint = cert.fingerprint(hashes.SHA256()).hex()
    colons = ":".join(fingerprint[i : i + 2] for i in range(0, 64, 2)).upper()
    status, out, err = run("trusted_publishers", "remove", colons, "--json")
    assert (status, err) == (0, "")
    assert json.loads(out) == {
        "ok": True,
        "message": f"no longer trusted: {fingerprint}",
        "fingerprint_sha256": fingerprint,
    }
    assert fingerprints() == []
    entry = AuditEntry.objects.get()
    assert (entry.action, entry.actor_name) == ("portal.publisher.removed", ACTOR_NAME)


@pytest.fixture
def trusted() -> str:
    """One trusted certificate, added without an audit row left; its fingerprint."""
    cert = certificate("Already trusted")
    publisher_add(pem=cert.public_bytes(Encoding.PEM).decode(), actor=Actor.system("test"))
    AuditEntry.objects.all().delete()
    return cert.fingerprint(hashes.SHA256()).hex()


def assert_refused(args: list[str], message: str, stdin: bytes | None = None) -> None:
    before = fingerprints()
    assert run("trusted_publishers", *args, stdin=stdin) == (1, "", f"error: {message}\n")
    assert fingerprints() == before
    assert AuditEntry.objects.count() == 0


def test_refuses_a_file_that_is_not_a_certificate(tmp_path: Path, trusted: str) -> None:
    text = tmp_path / "notes.pem"
    text.write_text("hello\n")
    assert_refused(
        ["add", str(text)], "give exactly one PEM certificate (-----BEGIN CERTIFICATE-----)"
    )
    broken = tmp_path / "broken.pem"
    broken.write_text("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")
    assert_refused(["add", str(broken), "--json"], "this is not a valid PEM certificate")
    binary = tmp_path / "cert.der"
    binary.write_bytes(certificate().public_bytes(Encoding.DER))
    assert_refused(
        ["add", str(binary)], "give exactly one PEM certificate (-----BEGIN CERTIFICATE-----)"
    )


def test_refuses_two_certificates_in_one_file(tmp_path: Path, trusted: str) -> None:
    both = tmp_path / "both.pem"
    both.write_bytes(
        certificate().public_bytes(Encoding.PEM) + certificate().public_bytes(Encoding.PEM)
    )
    assert_refused(
        ["add", str(both)], "give exactly one PEM certificate (-----BEGIN CERTIFICATE-----)"
    )


def test_refuses_a_file_over_64_kib_and_what_cannot_be_read(tmp_path: Path, trusted: str) -> None:
    big = tmp_path / "big.pem"
    with big.open("wb") as file:  # sparse: its size says it all, nothing needs reading
        file.truncate(64 * 1024 + 1)
    assert_refused(["add", str(big)], f"{big} is larger than 64 KiB")
    assert_refused(["add", "-"], "standard input is larger than 64 KiB", stdin=b"x" * 65537)
    missing = tmp_path / "missing.pem"
    assert_refused(["add", str(missing)], f"cannot read {missing}: No such file or directory")
    assert_refused(["add", str(tmp_path)], f"cannot read {tmp_path}: Is a directory")


def test_refuses_a_certificate_already_trusted(tmp_path: Path) -> None:
    cert = certificate()
    publisher_add(pem=cert.public_bytes(Encoding.PEM).decode(), actor=Actor.system("test"))
    AuditEntry.objects.all().delete()
    fingerprint = cert.fingerprint(hashes.SHA256()).hex()
    assert_refused(
        ["add", str(pem_file(tmp_path, cert))],
        f"this certificate is already trusted ({fingerprint})",
    )


def test_refuses_an_unknown_or_malformed_fingerprint(trusted: str) -> None:
    assert_refused(["remove", "0" * 64], f"no trusted publisher with fingerprint {'0' * 64}")
    assert_refused(
        ["remove", "abc", "--json"], "'abc' is not a SHA-256 fingerprint (64 hex digits)"
    )
