"""The signature side of a security catalog: loading PKCS #7 signed data and the trust
list it carries, finding its signatures (each signer and the signatures nested in them),
checking the signed attributes and the signature, building the chain to a trusted
publisher (each certificate's signature verified with its issuer's key and its own
algorithm, so SHA-1 chains verify and MD5 is refused) and validating it at the signing
time, and describing any Authenticode signature (signer and chain certificates, signing
time, timestamps and SpcSpOpusInfo) unjudged as a ``SignatureSummary`` through
``summarize_signature``.
"""

from __future__ import annotations

import contextlib
import datetime
import hashlib
import hmac
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from asn1crypto import cms, core, tsp
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.serialization import Encoding

from portal.packaging.catalog.asn1 import (
    _CONTENT_TYPE,
    _DECODING_ERRORS,
    _MESSAGE_DIGEST,
    _SIGNING_TIME,
    ID_AA_TIME_STAMP,
    PKCS9_COUNTERSIGNATURE,
    SPC_NESTED_SIGNATURE_OBJID,
    SPC_RFC3161_OBJID,
    SPC_SP_OPUS_INFO_OBJID,
    SZOID_CATALOG_LIST,
    SZOID_CATALOG_LIST_MEMBER,
    SZOID_CATALOG_LIST_MEMBER2,
    SZOID_CTL,
    CertificateTrustList,
    SpcLink,
    SpcSpOpusInfo,
    SpcString,
    _decoding,
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
_MAX_SIGNATURES = 16
_CERTIFICATE_SCHEMES = frozenset({"rsassa_pkcs1v15", "rsassa_pss", "ecdsa"})
_INVALID_CATALOG = "the catalog is not a valid security catalog"
_INVALID_SIGNATURE = "the signature is not valid PKCS #7 signed data"


# -------------------------------------------------------------------------- results


@dataclass(frozen=True)
class CertificateInfo:
    subject: str
    issuer: str
    serial: str  # hexadecimal
    not_before: datetime.datetime
    not_after: datetime.datetime
    sha256: str  # fingerprint, lower-case hexadecimal


@dataclass(frozen=True)
class TimestampInfo:
    kind: str  # "rfc3161" or "countersignature"
    time: datetime.datetime | None
    authority: str  # the timestamp signer's subject, "" if unknown
    # Whether the timestamp covers this signature: RFC 3161 messageImprint (or, for a
    # countersignature, its messageDigest) equals the hash of the signature value.
    imprint_matches: bool | None


@dataclass(frozen=True)
class SignatureSummary:
    signer: CertificateInfo | None
    chain: tuple[CertificateInfo, ...]  # signer first, then each issuer found
    signature_digest: str
    signature_scheme: str
    signing_time: datetime.datetime | None
    signing_time_source: str  # "signingTime", "thisUpdate" or ""
    timestamps: tuple[TimestampInfo, ...]
    program_name: str  # from SpcSpOpusInfo, "" when absent
    program_url: str
    content_type: str  # dotted OID of the signed content
    nested: bool = False  # a signature nested in the first signer's unsigned attributes
    # The hash of each chain certificate's own signature (the root's is not relied upon).
    chain_digests: tuple[str, ...] = ()

    @property
    def unsigned(self) -> bool:
        return self.signer is None and not self.signature_digest


@dataclass(frozen=True)
class _ParsedCatalog:
    signed_data: cms.SignedData
    ctl: CertificateTrustList
    ctl_octets: bytes
    version: int  # member format: 1 or 2


# ------------------------------------------------------------------------ summarizing


def summarize_signature(
    der: bytes, *, trusted_publishers: Sequence[bytes] = ()
) -> SignatureSummary:
    """Describe a PKCS #7 signature (a catalog's, or a signed cabinet's Authenticode
    signature) without judging it; refuse only what is not signed data at all."""
    signed_data = _load_signed_data(
        der, invalid=_INVALID_SIGNATURE, not_signed="the signature is not PKCS #7 signed data"
    )
    trusted = [cert for cert in map(_try_load_certificate, trusted_publishers) if cert]
    return _summarize(signed_data, trusted=trusted, invalid=_INVALID_SIGNATURE, warnings=[])


# --------------------------------------------------------------- loading and checking


def _load_signed_data(der: bytes, *, invalid: str, not_signed: str) -> cms.SignedData:
    with _decoding(invalid):
        info = cms.ContentInfo.load(der, strict=True)
        if info["content_type"].native != "signed_data":
            raise PackageError(not_signed)
        signed_data = info["content"]
        if not isinstance(signed_data, cms.SignedData):
            raise PackageError(not_signed)
        return signed_data


def _parse(catalog: bytes) -> _ParsedCatalog:
    signed_data = _load_signed_data(
        catalog, invalid=_INVALID_CATALOG, not_signed="the catalog is not PKCS #7 signed data"
    )
    with _decoding(_INVALID_CATALOG):
        if signed_data["version"].native != "v1":
            # Only the PKCS #7 v1.5 form carries the trust list directly in [0].
            raise PackageError("the catalog is not in the PKCS #7 v1.5 form Windows writes")
        content_info = signed_data["encap_content_info"]
        if content_info["content_type"].dotted != SZOID_CTL:
            raise PackageError("the catalog's signed content is not a certificate trust list")
        ctl = _trust_list(signed_data)
        if ctl is None:
            raise PackageError("the catalog has no certificate trust list")
        usage = [oid.dotted for oid in ctl["subject_usage"]]
        member_format = ctl["subject_algorithm"]["algorithm"].dotted
        ctl["this_update"].native  # noqa: B018 - a catalog without a readable date is broken
    if SZOID_CATALOG_LIST not in usage:
        raise PackageError("the certificate trust list is not a catalog list")
    if member_format not in (SZOID_CATALOG_LIST_MEMBER, SZOID_CATALOG_LIST_MEMBER2):
        raise PackageError("the catalog's member format is not one Windows writes")
    version = 2 if member_format == SZOID_CATALOG_LIST_MEMBER2 else 1
    # The signed digest covers the trust list's content octets: DER without tag and length.
    return _ParsedCatalog(signed_data, ctl, ctl.contents, version)


def _trust_list(signed_data: cms.SignedData) -> CertificateTrustList | None:
    """The trust list sitting directly in [0] (PKCS #7 v1.5), or None."""
    content = signed_data["encap_content_info"]["content"]
    if not isinstance(content, core.Any) or content.contents is None:
        return None
    parsed = content.parse(CertificateTrustList)
    return parsed if isinstance(parsed, CertificateTrustList) else None


@dataclass(frozen=True)
class _Signature:
    """One signature of a catalog: the primary signer, or a nested one (its own SignedData)."""

    signed_data: cms.SignedData
    signer_info: cms.SignerInfo
    nested: bool


def _signatures(signed_data: cms.SignedData) -> list[_Signature]:
    """The catalog's signatures: each signer, then each one nested in a signer's unsigned
    attributes (``1.3.6.1.4.1.311.2.4.1``, e.g. a SHA-256 signature next to a SHA-1 one)."""
    found: list[_Signature] = []
    for signer_info in signed_data["signer_infos"]:
        found.append(_Signature(signed_data, signer_info, nested=False))
    for primary in list(found):
        for attribute in primary.signer_info["unsigned_attrs"] or []:
            if attribute["type"].dotted != SPC_NESTED_SIGNATURE_OBJID:
                continue
            for value in attribute["values"]:
                info = value.parse(cms.ContentInfo) if isinstance(value, core.Any) else value
                nested = info["content"]
                if info["content_type"].native != "signed_data" or not isinstance(
                    nested, cms.SignedData
                ):
                    raise PackageError(
                        f"{_INVALID_CATALOG} (a nested signature is not signed data)"
                    )
                for signer_info in nested["signer_infos"]:
                    found.append(_Signature(nested, signer_info, nested=True))
    if len(found) > _MAX_SIGNATURES:
        # Each signature costs a chain walk: a bound keeps a hostile catalog cheap.
        raise PackageError(
            f"the catalog has {len(found)} signatures, more than the {_MAX_SIGNATURES} accepted"
        )
    return found


def _embedded_certificates(signed_data: cms.SignedData) -> list[x509.Certificate]:
    """The readable certificates of the signature; others cannot be in a valid chain."""
    certificates = []
    with contextlib.suppress(*_DECODING_ERRORS):
        for choice in signed_data["certificates"] or []:
            if choice.name == "certificate":
                certificate = _try_load_certificate(choice.chosen.dump())
                if certificate is not None:
                    certificates.append(certificate)
    return certificates


def _find_by_sid(
    sid: cms.SignerIdentifier, certificates: list[x509.Certificate]
) -> x509.Certificate | None:
    for certificate in certificates:
        if sid.name == "issuer_and_serial_number":
            issuer = asn1_x509.Name.load(certificate.issuer.public_bytes())
            if (
                issuer == sid.chosen["issuer"]
                and certificate.serial_number == sid.chosen["serial_number"].native
            ):
                return certificate
        else:
            try:
                identifier = certificate.extensions.get_extension_for_class(
                    x509.SubjectKeyIdentifier
                ).value.digest
            except (x509.ExtensionNotFound, ValueError):
                continue
            if identifier == sid.chosen.native:
                return certificate
    return None


def _signer_certificate(signature: _Signature, outer: cms.SignedData) -> x509.Certificate:
    certificates = _embedded_certificates(signature.signed_data)
    if signature.nested:
        certificates += _embedded_certificates(outer)
    found = _find_by_sid(signature.signer_info["sid"], certificates)
    if found is None:
        raise PackageError("the catalog does not contain its signer's certificate")
    return found


def _attributes(attributes: cms.CMSAttributes | None) -> dict[str, cms.CMSAttribute]:
    """Attributes by dotted type; the first of a repeated type (the signature step
    refuses repeats among the signed attributes)."""
    found: dict[str, cms.CMSAttribute] = {}
    for attribute in attributes or []:
        found.setdefault(attribute["type"].dotted, attribute)
    return found


def _check_signature(
    parsed: _ParsedCatalog, judged: _Signature, signer: x509.Certificate
) -> tuple[datetime.datetime, str]:
    """Check the signed attributes and the signature; return the signing time and its source.

    A nested signature carries its own copy of the trust list; it counts for the catalog
    only when that copy is the catalog's own list, byte for byte.
    """
    signer_info = judged.signer_info
    if judged.nested:
        ctl = _trust_list(judged.signed_data)
        if ctl is None or ctl.contents != parsed.ctl_octets:
            raise PackageError("the nested signature signs another trust list than the catalog's")
    digest_name = signer_info["digest_algorithm"]["algorithm"].native
    if digest_name == "md5":
        raise PackageError("the catalog is signed with MD5, which is refused")
    if digest_name not in HASH_ALGORITHMS:
        raise PackageError(f"the catalog's digest algorithm {digest_name} is not accepted")
    signed_attrs = signer_info["signed_attrs"]
    if not signed_attrs:
        raise PackageError("the catalog's signature has no signed attributes")
    seen: set[str] = set()
    for attribute in signed_attrs:
        if attribute["type"].dotted in seen:
            name = attribute["type"].native
            raise PackageError(f"the catalog's signed attribute {name} appears twice")
        seen.add(attribute["type"].dotted)
    attributes = _attributes(signed_attrs)
    content_types = list(attributes[_CONTENT_TYPE]["values"]) if _CONTENT_TYPE in attributes else []
    if len(content_types) != 1 or content_types[0].dotted != SZOID_CTL:
        raise PackageError("the catalog's signed content type is not a certificate trust list")
    digests = list(attributes[_MESSAGE_DIGEST]["values"]) if _MESSAGE_DIGEST in attributes else []
    if len(digests) != 1:
        raise PackageError("the catalog's signature has no message digest")
    expected = hashlib.new(digest_name, parsed.ctl_octets).digest()
    if not hmac.compare_digest(digests[0].native, expected):
        raise PackageError("the catalog's content does not match its signed digest")

    # The signature covers the attributes re-tagged as a SET, exactly as received.
    to_verify = b"\x31" + signed_attrs.dump()[1:]
    algorithm = HASH_ALGORITHMS[digest_name]()
    signature = signer_info["signature"].native
    scheme = signer_info["signature_algorithm"].signature_algo
    key = signer.public_key()
    try:
        if scheme == "rsassa_pkcs1v15" and isinstance(key, rsa.RSAPublicKey):
            key.verify(signature, to_verify, padding.PKCS1v15(), algorithm)
        elif scheme == "ecdsa" and isinstance(key, ec.EllipticCurvePublicKey):
            key.verify(signature, to_verify, ec.ECDSA(algorithm))
        else:
            raise PackageError(f"the catalog's signature scheme {scheme} is not supported")
    except InvalidSignature:
        raise PackageError("the catalog's signature is not valid") from None

    time, source = _signing_time(attributes, parsed.ctl)
    if time is None:
        raise PackageError("the catalog's signing time is not a valid time")
    return time, source


def _signing_time(
    attributes: Mapping[str, cms.CMSAttribute], ctl: CertificateTrustList | None
) -> tuple[datetime.datetime | None, str]:
    """The signingTime attribute, else the trust list's thisUpdate, else nothing."""
    if _SIGNING_TIME in attributes:
        values = list(attributes[_SIGNING_TIME]["values"])
        return (_aware(values[0].native) if values else None), "signingTime"
    if ctl is not None:
        return _aware(ctl["this_update"].native), "thisUpdate"
    return None, ""


def _aware(value: object) -> datetime.datetime | None:
    if not isinstance(value, datetime.datetime) or value.tzinfo is None:
        return None
    return value


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


# ----------------------------------------------------------------------- summaries


def _summarize(
    signed_data: cms.SignedData,
    *,
    trusted: list[x509.Certificate],
    invalid: str,
    warnings: list[str],
    ctl: CertificateTrustList | None = None,
    signer_info: cms.SignerInfo | None = None,
    extra_certificates: Sequence[x509.Certificate] = (),
    nested: bool = False,
) -> SignatureSummary:
    """The signer, chain, times and publisher information of a signature, unjudged: of
    ``signer_info`` when given, else of the first signer (none: an unsigned summary)."""
    with _decoding(invalid):
        content_type = signed_data["encap_content_info"]["content_type"].dotted
        if ctl is None and content_type == SZOID_CTL:
            with contextlib.suppress(*_DECODING_ERRORS):
                ctl = _trust_list(signed_data)
        signer_infos = list(signed_data["signer_infos"])
        embedded = [*_embedded_certificates(signed_data), *extra_certificates]
        if signer_info is None:
            if not signer_infos:
                return SignatureSummary(None, (), "", "", None, "", (), "", "", content_type)
            signer_info = signer_infos[0]
        signature = signer_info["signature"].native
        digest = signer_info["digest_algorithm"]["algorithm"].native
        algorithm = signer_info["signature_algorithm"]
        try:
            scheme = algorithm.signature_algo
        except ValueError:
            scheme = algorithm["algorithm"].native
        signer = _find_by_sid(signer_info["sid"], embedded)
        signed = _attributes(signer_info["signed_attrs"])
        unsigned = _attributes(signer_info["unsigned_attrs"])
    try:
        signing_time, time_source = _signing_time(signed, ctl)
    except _DECODING_ERRORS:
        signing_time, time_source = None, ""
    program_name, program_url = _opus_info(signed, warnings)
    timestamps = _timestamps(unsigned, signature, embedded, warnings)
    chain: list[x509.Certificate] = []
    current = signer
    while current is not None and current not in chain and len(chain) < _CHAIN_DEPTH:
        chain.append(current)
        current = _find_issuer(current, trusted) or _find_issuer(current, embedded)
    return SignatureSummary(
        signer=_certificate_info(signer) if signer else None,
        chain=tuple(_certificate_info(certificate) for certificate in chain),
        signature_digest=digest,
        signature_scheme=str(scheme),
        signing_time=signing_time,
        signing_time_source=time_source,
        timestamps=tuple(timestamps),
        program_name=program_name,
        program_url=program_url,
        content_type=content_type,
        nested=nested,
        chain_digests=tuple(certificate_signature_digest(c) for c in chain[:-1] or chain),
    )


def _certificate_info(certificate: x509.Certificate) -> CertificateInfo:
    return CertificateInfo(
        subject=certificate.subject.rfc4514_string(),
        issuer=certificate.issuer.rfc4514_string(),
        serial=format(certificate.serial_number, "x"),
        not_before=certificate.not_valid_before_utc,
        not_after=certificate.not_valid_after_utc,
        sha256=certificate.fingerprint(hashes.SHA256()).hex(),
    )


def _opus_info(signed: Mapping[str, cms.CMSAttribute], warnings: list[str]) -> tuple[str, str]:
    """SpcSpOpusInfo's program name and link; ("", "") when absent or unreadable."""
    if SPC_SP_OPUS_INFO_OBJID not in signed:
        return "", ""
    try:
        values = list(signed[SPC_SP_OPUS_INFO_OBJID]["values"])
        opus = values[0].parse(SpcSpOpusInfo)
        name = opus["program_name"]
        link = opus["more_info"]
        program_name = str(name.chosen.native) if isinstance(name, SpcString) else ""
        program_url = ""
        if isinstance(link, SpcLink) and link.name == "url":
            program_url = str(link.chosen.native)
        elif isinstance(link, SpcLink) and link.name == "file":
            program_url = str(link.chosen.chosen.native)
    except (*_DECODING_ERRORS, AttributeError) as error:
        warnings.append(f"the signature's publisher information cannot be read ({_short(error)})")
        return "", ""
    return program_name, program_url


def _timestamps(
    unsigned: Mapping[str, cms.CMSAttribute],
    signature: bytes,
    embedded: list[x509.Certificate],
    warnings: list[str],
) -> list[TimestampInfo]:
    """Timestamps are reported, not relied upon: validity is judged at the signing time."""
    found: list[TimestampInfo] = []
    for oid, attribute in unsigned.items():
        if oid in (SPC_RFC3161_OBJID, ID_AA_TIME_STAMP):
            kind = "rfc3161"
        elif oid == PKCS9_COUNTERSIGNATURE:
            kind = "countersignature"
        else:
            continue
        try:
            for value in attribute["values"]:
                if kind == "rfc3161":
                    found.append(_rfc3161_timestamp(value, signature, embedded))
                else:
                    found.append(_countersignature(value, signature, embedded))
        except (*_DECODING_ERRORS, AttributeError) as error:
            warnings.append(f"the signature's timestamp cannot be read ({_short(error)})")
            found.append(TimestampInfo(kind, None, "", None))
    for timestamp in found:
        if timestamp.imprint_matches is False:
            warnings.append("the signature's timestamp was made for another signature")
    return found


def _rfc3161_timestamp(
    token: cms.ContentInfo, signature: bytes, embedded: list[x509.Certificate]
) -> TimestampInfo:
    signed_data = token["content"]
    tst_info = signed_data["encap_content_info"]["content"].parsed
    if not isinstance(tst_info, tsp.TSTInfo):
        raise ValueError("the timestamp token holds no TSTInfo")
    imprint = tst_info["message_imprint"]
    time = _aware(tst_info["gen_time"].native)
    matches = _digest_matches(
        imprint["hash_algorithm"]["algorithm"].native, signature, imprint["hashed_message"].native
    )
    authority = ""
    signer_infos = list(signed_data["signer_infos"])
    if signer_infos:
        certificates = _embedded_certificates(signed_data) + embedded
        tsa = _find_by_sid(signer_infos[0]["sid"], certificates)
        authority = tsa.subject.rfc4514_string() if tsa else ""
    return TimestampInfo("rfc3161", time, authority, matches)


def _countersignature(
    signer_info: cms.SignerInfo, signature: bytes, embedded: list[x509.Certificate]
) -> TimestampInfo:
    attributes = _attributes(signer_info["signed_attrs"])
    time, _source = _signing_time(attributes, None)
    matches = None
    if _MESSAGE_DIGEST in attributes:
        digests = list(attributes[_MESSAGE_DIGEST]["values"])
        algorithm = signer_info["digest_algorithm"]["algorithm"].native
        matches = _digest_matches(algorithm, signature, digests[0].native) if digests else None
    authority = _find_by_sid(signer_info["sid"], embedded)
    return TimestampInfo(
        "countersignature", time, authority.subject.rfc4514_string() if authority else "", matches
    )


def _digest_matches(algorithm: str, data: bytes, expected: bytes) -> bool | None:
    try:
        actual = hashlib.new(algorithm, data).digest()
    except (ValueError, TypeError):
        return None
    return hmac.compare_digest(actual, expected)
