"""The chain of a catalog's signer to a trusted publisher: each certificate's signature
verified with its issuer's key and its own algorithm (so SHA-1 chains verify and MD5 is
refused), CA and key usage required, each certificate valid at the signing time."""

from __future__ import annotations

import datetime

from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.serialization import Encoding

from portal.packaging.catalog.asn1 import (
    _short,
)
from portal.packaging.errors import PackageError

HASH_ALGORITHMS: dict[str, type[hashes.HashAlgorithm]] = {
    "sha1": hashes.SHA1,
    "sha256": hashes.SHA256,
    "sha384": hashes.SHA384,
    "sha512": hashes.SHA512,
}
_CHAIN_DEPTH = 8
_CERTIFICATE_SCHEMES = frozenset({"rsassa_pkcs1v15", "rsassa_pss", "ecdsa"})


def _load_certificate(data: bytes) -> x509.Certificate:
    try:
        if data.lstrip().startswith(b"-----BEGIN"):
            return x509.load_pem_x509_certificate(data)
        return x509.load_der_x509_certificate(data)
    except ValueError as error:
        raise PackageError(
            f"a trusted publisher certificate cannot be read ({_short(error)})"
        ) from None


def _try_load_certificate(data: bytes) -> x509.Certificate | None:
    try:
        return _load_certificate(data)
    except PackageError:
        return None


def _check_chain(
    signer: x509.Certificate,
    *,
    embedded: list[x509.Certificate],
    trusted: list[x509.Certificate],
    at: datetime.datetime,
) -> list[x509.Certificate]:
    """The path from the signer to a trusted publisher, every link valid at ``at``.

    Each certificate's signature is verified with its issuer's key and the certificate's
    own signature algorithm (so SHA-1 chains of the Lync era verify). A refusal names what
    failed; "does not chain to a trusted publisher" only when no trusted issuer is found.
    """
    if not trusted:
        raise PackageError("no trusted publisher certificate is configured")
    _require_usage(signer, x509.KeyUsage, "digital_signature", "sign catalogs")
    trusted_der = {cert.public_bytes(Encoding.DER) for cert in trusted}
    chain = [signer]
    current = signer
    for _ in range(_CHAIN_DEPTH):
        _require_valid_at(current, at)
        if current.public_bytes(Encoding.DER) in trusted_der:
            return chain
        issuer = _verified_issuer(current, [*trusted, *embedded])
        if issuer is None:
            raise PackageError(
                "the catalog's signer does not chain to a trusted publisher "
                f"({signer.subject.rfc4514_string()})"
            )
        chain.append(issuer)
        current = issuer
    raise PackageError("the catalog's certificate chain is too long")


def _verified_issuer(
    certificate: x509.Certificate, candidates: list[x509.Certificate]
) -> x509.Certificate | None:
    """The first candidate that issued ``certificate``; None when no candidate has its
    issuer's name. A named issuer that fails is refused with the reason it failed."""
    first_error: PackageError | None = None
    for candidate in candidates:
        if candidate.subject != certificate.issuer or candidate == certificate:
            continue
        try:
            if not _is_ca(candidate):
                raise PackageError(
                    f"certificate {candidate.subject.rfc4514_string()} may not issue "
                    "certificates (key usage)"
                )
            verify_certificate_signature(certificate, candidate)
        except PackageError as error:
            if isinstance(error, _NotIssuerKey) and not _same_key_identifier(
                certificate, candidate
            ):
                continue  # another CA of the same name, not this certificate's issuer
            first_error = first_error or error
            continue
        return candidate
    if first_error is not None:
        raise first_error
    return None


class _NotIssuerKey(PackageError):
    """The issuer's key did not make the signature: a bad signature, or another key."""


def _same_key_identifier(certificate: x509.Certificate, issuer: x509.Certificate) -> bool:
    """Whether the certificate names ``issuer``'s key (authority and subject key identifiers)."""
    try:
        authority = certificate.extensions.get_extension_for_class(
            x509.AuthorityKeyIdentifier
        ).value.key_identifier
        subject = issuer.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest
    except (x509.ExtensionNotFound, ValueError):
        return False
    return authority is not None and authority == subject


def certificate_signature_digest(certificate: x509.Certificate) -> str:
    """The hash algorithm of a certificate's own signature ("sha1", "sha256", "md5", ...)."""
    algorithm = asn1_x509.Certificate.load(certificate.public_bytes(Encoding.DER))[
        "signature_algorithm"
    ]
    try:
        return str(algorithm.hash_algo)
    except ValueError:
        return str(algorithm["algorithm"].dotted)


def verify_certificate_signature(certificate: x509.Certificate, issuer: x509.Certificate) -> None:
    """Verify ``certificate``'s signature with ``issuer``'s public key, using the hash and
    scheme the certificate names (RSA PKCS #1 v1.5 or PSS, ECDSA); refuse MD5 and any
    algorithm not known here, naming it."""
    subject = certificate.subject.rfc4514_string()
    algorithm = asn1_x509.Certificate.load(certificate.public_bytes(Encoding.DER))[
        "signature_algorithm"
    ]
    name = str(algorithm["algorithm"].native)
    try:
        scheme = algorithm.signature_algo
        digest_name = algorithm.hash_algo
    except ValueError:
        raise PackageError(
            f"certificate {subject} is signed with {name}, an algorithm that is not supported"
        ) from None
    if digest_name == "md5":
        raise PackageError(f"certificate {subject} is signed with MD5 ({name}), which is refused")
    if digest_name not in HASH_ALGORITHMS or scheme not in _CERTIFICATE_SCHEMES:
        raise PackageError(
            f"certificate {subject} is signed with {name}, an algorithm that is not supported"
        )
    hash_algorithm = HASH_ALGORITHMS[digest_name]()
    key = issuer.public_key()
    try:
        if scheme == "rsassa_pkcs1v15" and isinstance(key, rsa.RSAPublicKey):
            key.verify(
                certificate.signature,
                certificate.tbs_certificate_bytes,
                padding.PKCS1v15(),
                hash_algorithm,
            )
        elif scheme == "rsassa_pss" and isinstance(key, rsa.RSAPublicKey):
            parameters = algorithm["parameters"]
            mgf_hash = parameters["mask_gen_algorithm"]["parameters"]["algorithm"].native
            if mgf_hash not in HASH_ALGORITHMS:
                raise PackageError(
                    f"certificate {subject} is signed with RSA-PSS and MGF1 over {mgf_hash}, "
                    "which is not supported"
                )
            pss = padding.PSS(
                mgf=padding.MGF1(HASH_ALGORITHMS[mgf_hash]()),
                salt_length=int(parameters["salt_length"].native),
            )
            key.verify(
                certificate.signature, certificate.tbs_certificate_bytes, pss, hash_algorithm
            )
        elif scheme == "ecdsa" and isinstance(key, ec.EllipticCurvePublicKey):
            key.verify(
                certificate.signature,
                certificate.tbs_certificate_bytes,
                ec.ECDSA(hash_algorithm),
            )
        else:
            raise _NotIssuerKey(
                f"certificate {subject} is signed with {name}, which its issuer's key cannot verify"
            )
    except InvalidSignature:
        raise _NotIssuerKey(
            f"the signature of certificate {subject} by "
            f"{issuer.subject.rfc4514_string()} is not valid"
        ) from None


def _find_issuer(
    certificate: x509.Certificate, candidates: list[x509.Certificate]
) -> x509.Certificate | None:
    """For display: the first candidate that verifiably issued ``certificate``."""
    for candidate in candidates:
        if candidate.subject != certificate.issuer or candidate == certificate:
            continue
        try:
            verify_certificate_signature(certificate, candidate)
        except (PackageError, ValueError, TypeError):
            continue
        return candidate
    return None


def _is_ca(certificate: x509.Certificate) -> bool:
    try:
        constraints = certificate.extensions.get_extension_for_class(x509.BasicConstraints)
    except x509.ExtensionNotFound:
        # Lync-era roots (X.509 v1 or without the extension) are trusted as issuers only
        # when the administrator trusts them or they are self-signed.
        return certificate.subject == certificate.issuer
    if not constraints.value.ca:
        return False
    try:
        usage = certificate.extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound:
        return True
    return usage.key_cert_sign


def _require_usage(
    certificate: x509.Certificate, kind: type[x509.KeyUsage], flag: str, purpose: str
) -> None:
    try:
        usage = certificate.extensions.get_extension_for_class(kind).value
    except x509.ExtensionNotFound:
        return
    if not getattr(usage, flag):
        raise PackageError(
            f"the signer certificate may not {purpose} (key usage; "
            f"{certificate.subject.rfc4514_string()})"
        )


def _require_valid_at(certificate: x509.Certificate, at: datetime.datetime) -> None:
    if not certificate.not_valid_before_utc <= at <= certificate.not_valid_after_utc:
        raise PackageError(
            f"certificate {certificate.subject.rfc4514_string()} was not valid at the catalog's "
            f"signing time {at.isoformat()} (valid {certificate.not_valid_before_utc.isoformat()}"
            f" to {certificate.not_valid_after_utc.isoformat()})"
        )
