"""Check 2, certificates, against Debian's nginx serving the test CA's certificates:
good, expired, wrong names, missing intermediate, expiring soon."""

from __future__ import annotations

import datetime as dt
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa
from django.utils import timezone
from pytest_django.fixtures import Settings

from portal.models import Pool
from portal.readiness.base import CheckResult, Status
from portal.readiness.certificates import (
    certificate_checks,
    chain_result,
    key_result,
    validity_result,
)
from tests.conftest import free_port
from tests.deploy.servers import start_nginx, stop, tool
from tests.deploy.tls import NOW, Pki, ec_key, make_server_cert, pem

VALID = "2 certificate(s) served, valid for the phones' trust bundle"
INTERNAL_NAMES = "ucupdates-r2, ucupdates-r2.example.org, pool01.example.org"
KINDS = ("good", "expired", "wrong-names", "no-intermediate", "expiring")


@pytest.fixture(scope="module")
def listeners(pki: Pki, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, int]]:
    """One nginx, one HTTPS listener per kind of certificate."""
    ports = {kind: free_port() for kind in KINDS}
    servers = []
    for kind, port in ports.items():
        certificate, key = pki.pairs[kind]
        servers.append(
            f"server {{ listen 127.0.0.1:{port} ssl; ssl_certificate {certificate}; "
            f"ssl_certificate_key {key}; location / {{ return 200 'ok'; }} }}\n"
        )
    process = start_nginx(
        tmp_path_factory.mktemp("nginx-certs"), "".join(servers), list(ports.values())
    )
    yield ports
    stop(process)


def serve(settings: Settings, listeners: dict[str, int], internal: str, external: str) -> None:
    settings.READINESS_INTERNAL_HTTPS_URL = f"https://pool01.example.org:{listeners[internal]}"
    settings.READINESS_EXTERNAL_HTTPS_URL = f"https://web.example.org:{listeners[external]}"


def by_subject(results: list[CheckResult]) -> dict[str, CheckResult]:
    return {result.subject: result for result in results}


def test_a_good_certificate_passes_on_both_listeners(
    pool: Pool, settings: Settings, listeners: dict[str, int]
) -> None:
    serve(settings, listeners, "good", "good")
    results = certificate_checks(domains=["example.org"], timeout=10)
    internal = f"internal https://pool01.example.org:{listeners['good']}"
    external = f"external https://web.example.org:{listeners['good']}"
    ends = f"{NOW + dt.timedelta(days=365):%Y-%m-%d}"
    assert [(r.subject, r.status, r.detail) for r in results] == [
        (f"{internal}: chain", Status.PASS, VALID),
        (f"{internal}: names", Status.PASS, f"names {INTERNAL_NAMES}"),
        (f"{internal}: validity", Status.PASS, f"valid until {ends}"),
        (f"{internal}: key", Status.PASS, "RSA 2048 bits, signed with SHA256"),
        (f"{external}: chain", Status.PASS, VALID),
        (f"{external}: names", Status.PASS, "names web.example.org"),
        (f"{external}: validity", Status.PASS, f"valid until {ends}"),
        (f"{external}: key", Status.PASS, "RSA 2048 bits, signed with SHA256"),
    ]  # fmt: skip


def test_an_expired_certificate_fails(
    pool: Pool, settings: Settings, listeners: dict[str, int]
) -> None:
    serve(settings, listeners, "expired", "good")
    results = by_subject(certificate_checks(domains=["example.org"], timeout=10))
    subject = f"internal https://pool01.example.org:{listeners['expired']}"
    validity = results[f"{subject}: validity"]
    assert (validity.status, validity.detail, validity.fix) == (
        Status.FAIL,
        f"expired on {NOW - dt.timedelta(days=2):%Y-%m-%d}",
        "renew the certificate and reload nginx",
    )
    chain = results[f"{subject}: chain"]
    assert chain.status == Status.FAIL
    assert chain.detail.startswith(
        "the served chain does not validate against the phones' trust bundle: "
    )


def test_a_certificate_without_the_names_phones_ask_for_fails(
    pool: Pool, settings: Settings, listeners: dict[str, int]
) -> None:
    serve(settings, listeners, "wrong-names", "wrong-names")
    results = by_subject(certificate_checks(domains=["example.org"], timeout=10))
    internal = f"internal https://pool01.example.org:{listeners['wrong-names']}"
    external = f"external https://web.example.org:{listeners['wrong-names']}"
    assert results[f"{internal}: names"] == CheckResult(
        "certificates", f"{internal}: names", Status.FAIL,
        "the certificate does not name ucupdates-r2, ucupdates-r2.example.org "
        "(it names pool01.example.org, www.example.com)",
        "reissue it with subjectAltName DNS names ucupdates-r2, ucupdates-r2.example.org, "
        "pool01.example.org",
    )  # fmt: skip
    assert results[f"{external}: names"].detail == (
        "the certificate does not name web.example.org "
        "(it names pool01.example.org, www.example.com)"
    )
    assert results[f"{internal}: chain"].status == Status.PASS


def test_a_chain_without_its_intermediate_fails(
    pool: Pool, settings: Settings, listeners: dict[str, int], pki: Pki, tmp_path: Path
) -> None:
    serve(settings, listeners, "no-intermediate", "no-intermediate")
    subject = f"internal https://pool01.example.org:{listeners['no-intermediate']}: chain"
    results = by_subject(certificate_checks(domains=["example.org"], timeout=10))
    assert results[subject] == CheckResult(
        "certificates", subject, Status.FAIL,
        "the served chain lacks the CA that issued the certificate "
        "(CN=Test Issuing CA,O=Device Update Tests)",
        "append the intermediate CA certificate(s) after the leaf in the certificate file",
    )  # fmt: skip
    # Even when the bundle holds the intermediate: phones with only the root would fail.
    bundle = tmp_path / "bundle-with-intermediate.pem"
    bundle.write_bytes(pem(pki.root.certificate, pki.intermediate.certificate))
    settings.READINESS_TRUST_BUNDLE = str(bundle)
    results = by_subject(certificate_checks(domains=["example.org"], timeout=10))
    assert (results[subject].status, results[subject].detail) == (
        Status.FAIL,
        "the served chain validates only with intermediates from the bundle, which phones "
        "may not hold",
    )


def test_a_certificate_the_phones_do_not_trust_fails(
    pool: Pool, settings: Settings, listeners: dict[str, int], pki: Pki
) -> None:
    serve(settings, listeners, "good", "good")
    settings.READINESS_TRUST_BUNDLE = str(pki.other_bundle)
    results = certificate_checks(domains=["example.org"], timeout=10)
    chains = [r for r in results if r.subject.endswith(": chain")]
    assert [r.status for r in chains] == [Status.FAIL, Status.FAIL]
    assert chains[0].fix == (
        "serve a certificate issued by a CA the phones trust, leaf then intermediates"
    )


def test_a_certificate_expiring_within_the_warning_period_is_a_warning(
    pool: Pool, settings: Settings, listeners: dict[str, int]
) -> None:
    serve(settings, listeners, "expiring", "good")
    subject = f"internal https://pool01.example.org:{listeners['expiring']}: validity"
    results = by_subject(certificate_checks(domains=["example.org"], timeout=10))
    assert results[subject] == CheckResult(
        "certificates", subject, Status.WARN,
        f"expires on {NOW + dt.timedelta(days=10):%Y-%m-%d}, within 30 days",
        "renew the certificate before it expires",
    )  # fmt: skip
    settings.READINESS_CERT_EXPIRY_DAYS = 7
    results = by_subject(certificate_checks(domains=["example.org"], timeout=10))
    assert results[subject].status == Status.PASS


def test_a_listener_that_is_not_there_fails_and_a_missing_bundle_is_a_warning(
    pool: Pool, settings: Settings, listeners: dict[str, int]
) -> None:
    closed = free_port()
    settings.READINESS_INTERNAL_HTTPS_URL = f"https://pool01.example.org:{closed}"
    settings.READINESS_EXTERNAL_HTTPS_URL = f"https://web.example.org:{listeners['good']}"
    settings.READINESS_TRUST_BUNDLE = None
    results = certificate_checks(domains=["example.org"], timeout=10)
    assert (results[0].subject, results[0].status, results[0].fix) == (
        f"internal https://pool01.example.org:{closed}",
        Status.FAIL,
        "start nginx with the HTTPS listener (manage.py nginx_config)",
    )
    assert results[0].detail.startswith(f"cannot connect to pool01.example.org:{closed}")
    assert results[1] == CheckResult(
        "certificates", f"external https://web.example.org:{listeners['good']}: chain",
        Status.WARN, "no trust bundle configured: the chain was not validated",
        "set DEVICEUPDATE_PHONE_TRUST_BUNDLE to the root CA certificates the phones trust",
    )  # fmt: skip


def test_keys_and_signatures_phones_refuse(pki: Pki, tmp_path: Path) -> None:
    # cryptography no longer signs with SHA-1; Debian's openssl still does.
    subprocess.run(
        [
            tool("openssl"), "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-sha1",
            "-subj", "/CN=UCUpdates-R2", "-days", "30", "-keyout", str(tmp_path / "sha1.key"),
            "-out", str(tmp_path / "sha1.crt"),
        ],
        check=True, capture_output=True,
    )  # fmt: skip
    sha1 = x509.load_pem_x509_certificate((tmp_path / "sha1.crt").read_bytes())
    small = make_server_cert(pki.intermediate, key=_small_rsa())
    curve = make_server_cert(pki.intermediate, key=ec_key())
    ca = pki.intermediate.certificate
    assert key_result("x", [sha1]) == CheckResult(
        "certificates", "x: key", Status.FAIL, "the served chain is signed with SHA1",
        "reissue the certificates signed with SHA-256 or stronger",
    )  # fmt: skip
    assert key_result("x", [small.certificate, ca]) == CheckResult(
        "certificates", "x: key", Status.FAIL, "an RSA key of 1024 bits",
        "reissue with an RSA key of at least 2048 bits",
    )  # fmt: skip
    assert key_result("x", [curve.certificate, ca]) == CheckResult(
        "certificates", "x: key", Status.WARN,
        "an elliptic-curve (secp256r1) key: older phone firmware accepts RSA keys only",
        "use an RSA key of 2048 bits or more while such phones remain",
    )  # fmt: skip


def test_a_certificate_not_valid_yet_fails(pool: Pool, pki: Pki) -> None:
    later = make_server_cert(
        pki.intermediate, not_before=timezone.now() + dt.timedelta(days=2)
    ).certificate
    result = chain_result("x", [later, pki.intermediate.certificate])
    assert result.status == Status.FAIL
    validity = validity_result("x", later)
    assert (validity.status, validity.detail) == (
        Status.FAIL,
        f"not valid before {later.not_valid_before_utc:%Y-%m-%d %H:%M} UTC",
    )


def _small_rsa() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=1024)  # noqa: S505
