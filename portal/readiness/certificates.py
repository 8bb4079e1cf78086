"""Check 2, certificates: on each HTTPS listener, the chain the server sends as a phone
sees it: trusted by the phones' bundle (not the OS store), with its intermediates, the
names phones ask for, in its validity period, a key and signatures phones accept."""

from __future__ import annotations

import datetime as dt
import select
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.verification import PolicyBuilder, Store, VerificationError
from django.conf import settings
from django.utils import timezone
from OpenSSL import SSL

from portal.models import Pool
from portal.readiness.base import CheckResult, Status
from portal.readiness.network import (
    TIMEOUT_FIX,
    CheckError,
    CheckTimeout,
    Deadline,
    Endpoint,
    base_urls,
    connect,
    this_pool,
)

CHECK = "certificates"
MIN_RSA_BITS = 2048
WEAK_HASHES = frozenset({"md5", "sha1"})


def served_chain(endpoint: Endpoint, deadline: Deadline) -> list[x509.Certificate]:
    """The certificates the listener sends, leaf first, unverified (verifying is ours)."""
    sock = connect(endpoint.host, endpoint.port, deadline)
    try:
        context = SSL.Context(SSL.TLS_CLIENT_METHOD)
        context.set_verify(SSL.VERIFY_NONE)
        connection = SSL.Connection(context, sock)
        connection.set_tlsext_host_name(endpoint.host.encode("idna"))
        connection.set_connect_state()
        while True:
            try:
                connection.do_handshake()
                break
            except (SSL.WantReadError, SSL.WantWriteError):
                # The socket has a timeout, so it is non-blocking underneath.
                select.select([sock], [sock], [], deadline.left())
            except SSL.Error as error:
                raise CheckError(f"TLS handshake with {endpoint.url} failed: {error}") from None
        chain = connection.get_peer_cert_chain(as_cryptography=True) or []
        return list(chain)
    finally:
        sock.close()


def dns_names(certificate: x509.Certificate) -> list[str]:
    try:
        extension = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    except x509.ExtensionNotFound:
        return []
    return [name.lower() for name in extension.value.get_values_for_type(x509.DNSName)]


def load_bundle() -> list[x509.Certificate]:
    path = settings.READINESS_TRUST_BUNDLE
    assert path is not None
    try:
        return x509.load_pem_x509_certificates(Path(path).read_bytes())
    except (OSError, ValueError) as error:
        raise CheckError(f"cannot read the phones' trust bundle {path}: {error}") from None


def _verify(leaf: x509.Certificate, intermediates: list[x509.Certificate],
            anchors: list[x509.Certificate], name: str) -> str:  # fmt: skip
    """'' when the chain validates, else why not."""
    if not anchors:
        return "no certificate to trust"
    builder = PolicyBuilder().store(Store(anchors)).time(timezone.now())
    try:
        builder.build_server_verifier(x509.DNSName(name)).verify(leaf, intermediates)
    except VerificationError as error:
        return str(error)
    return ""


def chain_result(subject: str, chain: list[x509.Certificate]) -> CheckResult:
    """Validates against the phones' bundle, and with only its roots (the served chain
    must carry the intermediates: phones do not fetch them)."""
    if not settings.READINESS_TRUST_BUNDLE:
        return CheckResult(
            CHECK, f"{subject}: chain", Status.WARN,
            "no trust bundle configured: the chain was not validated",
            "set DEVICEUPDATE_PHONE_TRUST_BUNDLE to the root CA certificates the phones trust",
        )  # fmt: skip
    bundle = load_bundle()
    leaf, intermediates = chain[0], chain[1:]
    names = dns_names(leaf)
    if not names:
        return CheckResult(
            CHECK, f"{subject}: chain", Status.FAIL, "the certificate has no DNS names",
            "issue a certificate with subjectAltName DNS names",
        )  # fmt: skip
    roots = [cert for cert in bundle if cert.subject == cert.issuer]
    if leaf.issuer not in {cert.subject for cert in [*intermediates, *bundle]}:
        # Phones build the chain from what the server sends: they fetch nothing.
        return CheckResult(
            CHECK, f"{subject}: chain", Status.FAIL,
            f"the served chain lacks the CA that issued the certificate "
            f"({leaf.issuer.rfc4514_string()})",
            "append the intermediate CA certificate(s) after the leaf in the certificate file",
        )  # fmt: skip
    problem = _verify(leaf, intermediates, bundle, names[0])
    if problem:
        return CheckResult(
            CHECK, f"{subject}: chain", Status.FAIL,
            f"the served chain does not validate against the phones' trust bundle: {problem}",
            "serve a certificate issued by a CA the phones trust, leaf then intermediates",
        )  # fmt: skip
    if roots and _verify(leaf, intermediates, roots, names[0]):
        return CheckResult(
            CHECK, f"{subject}: chain", Status.FAIL,
            "the served chain validates only with intermediates from the bundle, which "
            "phones may not hold",
            "append the intermediate CA certificate(s) after the leaf in the certificate file",
        )  # fmt: skip
    return CheckResult(
        CHECK, f"{subject}: chain", Status.PASS,
        f"{len(chain)} certificate(s) served, valid for the phones' trust bundle",
    )  # fmt: skip


def required_names(pool: Pool | None, domains: list[str], external: bool) -> list[str]:
    """The names phones and reverse proxies ask for on this listener."""
    if external:
        return [pool.external_web_fqdn.lower()] if pool and pool.external_web_fqdn else []
    names = ["ucupdates-r2", *(f"ucupdates-r2.{domain.lower()}" for domain in domains)]
    if pool is not None:
        names.append(pool.internal_web_fqdn.lower())
    return list(dict.fromkeys(filter(None, names)))


def names_result(subject: str, leaf: x509.Certificate, required: list[str]) -> CheckResult:
    present = set(dns_names(leaf))
    missing = [name for name in required if name not in present]
    if missing:
        return CheckResult(
            CHECK, f"{subject}: names", Status.FAIL,
            f"the certificate does not name {', '.join(missing)} "
            f"(it names {', '.join(sorted(present)) or 'nothing'})",
            f"reissue it with subjectAltName DNS names {', '.join(required)}",
        )  # fmt: skip
    return CheckResult(
        CHECK, f"{subject}: names", Status.PASS, f"names {', '.join(required) or 'its host'}"
    )


def validity_result(subject: str, leaf: x509.Certificate) -> CheckResult:
    now = timezone.now()
    begins, ends = leaf.not_valid_before_utc, leaf.not_valid_after_utc
    days = settings.READINESS_CERT_EXPIRY_DAYS
    if begins > now:
        return CheckResult(
            CHECK, f"{subject}: validity", Status.FAIL,
            f"not valid before {begins:%Y-%m-%d %H:%M} UTC",
            "check this server's clock and the CA's, or wait until the certificate is valid",
        )  # fmt: skip
    if ends <= now:
        return CheckResult(
            CHECK, f"{subject}: validity", Status.FAIL, f"expired on {ends:%Y-%m-%d}",
            "renew the certificate and reload nginx",
        )  # fmt: skip
    if ends - now < dt.timedelta(days=days):
        return CheckResult(
            CHECK, f"{subject}: validity", Status.WARN,
            f"expires on {ends:%Y-%m-%d}, within {days} days",
            "renew the certificate before it expires",
        )  # fmt: skip
    return CheckResult(CHECK, f"{subject}: validity", Status.PASS, f"valid until {ends:%Y-%m-%d}")


def _key_kind(key: object) -> str:
    if isinstance(key, ec.EllipticCurvePublicKey):
        return f"an elliptic-curve ({key.curve.name})"
    return f"a {type(key).__name__}"


def key_result(subject: str, chain: list[x509.Certificate]) -> CheckResult:
    leaf = chain[0]
    key = leaf.public_key()
    weak = sorted(
        {
            cert.signature_hash_algorithm.name
            for cert in chain
            if cert.signature_hash_algorithm is not None
            and cert.signature_hash_algorithm.name in WEAK_HASHES
        }
    )
    if weak:
        return CheckResult(
            CHECK, f"{subject}: key", Status.FAIL,
            f"the served chain is signed with {', '.join(weak).upper()}",
            "reissue the certificates signed with SHA-256 or stronger",
        )  # fmt: skip
    if not isinstance(key, rsa.RSAPublicKey):
        return CheckResult(
            CHECK, f"{subject}: key", Status.WARN,
            f"{_key_kind(key)} key: older phone firmware accepts RSA keys only",
            "use an RSA key of 2048 bits or more while such phones remain",
        )  # fmt: skip
    if key.key_size < MIN_RSA_BITS:
        return CheckResult(
            CHECK, f"{subject}: key", Status.FAIL, f"an RSA key of {key.key_size} bits",
            f"reissue with an RSA key of at least {MIN_RSA_BITS} bits",
        )  # fmt: skip
    algorithm = leaf.signature_hash_algorithm
    return CheckResult(
        CHECK, f"{subject}: key", Status.PASS,
        f"RSA {key.key_size} bits, signed with {algorithm.name.upper() if algorithm else '?'}",
    )  # fmt: skip


def certificate_checks(*, domains: list[str], timeout: float) -> list[CheckResult]:
    """Each HTTPS listener (internal, external): chain, names, validity, key."""
    pool = this_pool()
    urls = base_urls(pool)
    results: list[CheckResult] = []
    deadline = Deadline(timeout)
    listeners = [("internal", urls.internal_https, False), ("external", urls.external_https, True)]
    for label, url, external in listeners:
        if not url:
            results.append(
                CheckResult(
                    CHECK, f"{label} HTTPS", Status.WARN, f"no {label} HTTPS address known",
                    f"set the pool's {label} web FQDN or "
                    f"DEVICEUPDATE_CHECK_{label.upper()}_HTTPS_URL",
                )
            )  # fmt: skip
            continue
        subject = f"{label} {url}"
        try:
            chain = served_chain(Endpoint.parse(url), deadline)
        except CheckTimeout as error:
            results.append(CheckResult(CHECK, subject, Status.WARN, str(error), TIMEOUT_FIX))
            continue
        except CheckError as error:
            results.append(
                CheckResult(
                    CHECK, subject, Status.FAIL, str(error),
                    "start nginx with the HTTPS listener (manage.py nginx_config)",
                )
            )  # fmt: skip
            continue
        if not chain:
            results.append(
                CheckResult(CHECK, subject, Status.FAIL, "no certificate served", "configure one")
            )
            continue
        try:
            results.append(chain_result(subject, chain))
        except CheckError as error:
            results.append(
                CheckResult(
                    CHECK, f"{subject}: chain", Status.WARN, str(error),
                    "point DEVICEUPDATE_PHONE_TRUST_BUNDLE at a PEM file",
                )
            )  # fmt: skip
        results.append(names_result(subject, chain[0], required_names(pool, domains, external)))
        results.append(validity_result(subject, chain[0]))
        results.append(key_result(subject, chain))
    return results
