"""A test PKI made with `cryptography`: a root CA, an intermediate CA, and server
certificates as a deployment might (or should not) have them, written as PEM files."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.types import CertificateIssuerPrivateKeyTypes
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

NOW = dt.datetime.now(dt.UTC)
# The names a Lync pool's certificate carries (Lync's documentation), for domain example.org.
POOL_NAMES = ("UCUpdates-R2", "UCUpdates-R2.example.org", "pool01.example.org", "web.example.org")


@dataclass(frozen=True)
class Issued:
    certificate: x509.Certificate
    key: CertificateIssuerPrivateKeyTypes


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Device Update Tests"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _rsa(bits: int = 2048) -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=bits)


def make_ca(common_name: str, issuer: Issued | None = None) -> Issued:
    """A root CA (``issuer`` None) or an intermediate CA issued by ``issuer``."""
    key = _rsa()
    signer = issuer.key if issuer else key
    issuer_name = issuer.certificate.subject if issuer else _name(common_name)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name))
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW - dt.timedelta(days=30))
        .not_valid_after(NOW + dt.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )  # fmt: skip
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    )
    if issuer is not None:
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(
                issuer.certificate.public_key()  # type: ignore[arg-type]
            ),
            critical=False,
        )
    return Issued(builder.sign(signer, hashes.SHA256()), key)


def make_server_cert(
    issuer: Issued,
    names: tuple[str, ...] = POOL_NAMES,
    *,
    not_before: dt.datetime | None = None,
    not_after: dt.datetime | None = None,
    key: CertificateIssuerPrivateKeyTypes | None = None,
) -> Issued:
    key = key or _rsa()
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(names[0]))
        .issuer_name(issuer.certificate.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before or NOW - dt.timedelta(days=1))
        .not_valid_after(not_after or NOW + dt.timedelta(days=365))
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName(name) for name in names]), critical=False
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=True,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )  # fmt: skip
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(
                issuer.certificate.public_key()  # type: ignore[arg-type]
            ),
            critical=False,
        )
        .add_extension(
            x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
            critical=False,
        )
    )
    return Issued(builder.sign(issuer.key, hashes.SHA256()), key)


def ec_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def pem(*certificates: x509.Certificate) -> bytes:
    return b"".join(cert.public_bytes(serialization.Encoding.PEM) for cert in certificates)


def write_pair(
    folder: Path, name: str, leaf: Issued, *chain: x509.Certificate
) -> tuple[Path, Path]:
    """``<name>.crt`` (leaf, then ``chain``) and ``<name>.key``."""
    folder.mkdir(parents=True, exist_ok=True)
    certificate = folder / f"{name}.crt"
    certificate.write_bytes(pem(leaf.certificate, *chain))
    key = folder / f"{name}.key"
    key.write_bytes(
        leaf.key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    key.chmod(0o600)
    return certificate, key


@dataclass(frozen=True)
class Pki:
    """The files the tests use: the phones' bundle (the root), and certificate + key
    pairs: good (with the intermediate), expired, wrong names, missing intermediate,
    expiring soon; another CA's bundle a client that must not trust them uses."""

    folder: Path
    root: Issued
    intermediate: Issued
    bundle: Path
    other_bundle: Path
    pairs: dict[str, tuple[Path, Path]]


def make_pki(folder: Path) -> Pki:
    root = make_ca("Test Root CA")
    intermediate = make_ca("Test Issuing CA", root)
    other = make_ca("Another Root CA")
    bundle = folder / "phones-bundle.pem"
    folder.mkdir(parents=True, exist_ok=True)
    bundle.write_bytes(pem(root.certificate))
    other_bundle = folder / "other-bundle.pem"
    other_bundle.write_bytes(pem(other.certificate))
    ca = intermediate.certificate
    pairs = {
        "good": write_pair(folder, "good", make_server_cert(intermediate), ca),
        "expired": write_pair(
            folder, "expired",
            make_server_cert(
                intermediate, not_before=NOW - dt.timedelta(days=400),
                not_after=NOW - dt.timedelta(days=2),
            ),
            ca,
        ),
        "wrong-names": write_pair(
            folder, "wrong-names",
            make_server_cert(intermediate, ("www.example.com", "pool01.example.org")), ca,
        ),
        "no-intermediate": write_pair(folder, "no-intermediate", make_server_cert(intermediate)),
        "expiring": write_pair(
            folder, "expiring",
            make_server_cert(intermediate, not_after=NOW + dt.timedelta(days=10)), ca,
        ),
    }  # fmt: skip
    return Pki(folder, root, intermediate, bundle, other_bundle, pairs)
