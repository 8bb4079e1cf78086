"""Verification of Microsoft security catalogs (``.cat``): signature, chain, member hashes.

A catalog is a PKCS #7 ``SignedData`` whose content is a certificate trust list (CTL).
The CTL structure is declared below with asn1crypto's classes; ``cryptography`` checks
the signatures. Validity is judged at the catalog's signing time because packages
outlive their certificates.

Parsing is lazy: only what verification needs is decoded, so the attributes real
catalogs carry (publisher information, timestamps, member information) pass untouched.
``verify_catalog`` refuses at the first failure; ``inspect_catalog`` runs the same
steps, goes on after a failure to report everything it can, and reaches the same
verdict. ``summarize_signature`` describes any Authenticode signature, a catalog's or
a signed cabinet's.
"""

from __future__ import annotations

import contextlib
import datetime
import hashlib
import hmac
import io
import string
import struct
import unicodedata
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from asn1crypto import algos, cms, core, tsp
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.serialization import Encoding

from portal.packaging.errors import PackageError

SZOID_CTL = "1.3.6.1.4.1.311.10.1"
SZOID_CATALOG_LIST = "1.3.6.1.4.1.311.12.1.1"
SZOID_CATALOG_LIST_MEMBER = "1.3.6.1.4.1.311.12.1.2"  # v1 catalogs (SHA-1 era)
SZOID_CATALOG_LIST_MEMBER2 = "1.3.6.1.4.1.311.12.1.3"  # v2 catalogs (SHA-256)
CAT_NAMEVALUE_OBJID = "1.3.6.1.4.1.311.12.2.1"
SPC_INDIRECT_DATA_OBJID = "1.3.6.1.4.1.311.2.1.4"
SPC_CAB_DATA_OBJID = "1.3.6.1.4.1.311.2.1.25"  # the indirect-data type for flat files
SPC_LINK_OBJID = "1.3.6.1.4.1.311.2.1.28"  # makecat's type for non-PE files: a flat hash
SPC_PE_IMAGE_DATA_OBJID = "1.3.6.1.4.1.311.2.1.15"  # the Authenticode hash of a PE image
SPC_SP_OPUS_INFO_OBJID = "1.3.6.1.4.1.311.2.1.12"
SPC_STATEMENT_TYPE_OBJID = "1.3.6.1.4.1.311.2.1.11"
SPC_INDIVIDUAL_SP_KEY_PURPOSE_OBJID = "1.3.6.1.4.1.311.2.1.21"
SPC_RFC3161_OBJID = "1.3.6.1.4.1.311.3.3.1"  # Microsoft's RFC 3161 timestamp attribute
ID_AA_TIME_STAMP = "1.2.840.113549.1.9.16.2.14"  # the standard one (RFC 3161)
PKCS9_COUNTERSIGNATURE = "1.2.840.113549.1.9.6"  # legacy Authenticode timestamps
_CONTENT_TYPE = "1.2.840.113549.1.9.3"
_MESSAGE_DIGEST = "1.2.840.113549.1.9.4"
_SIGNING_TIME = "1.2.840.113549.1.9.5"

HASH_ALGORITHMS: dict[str, type[hashes.HashAlgorithm]] = {
    "sha1": hashes.SHA1,
    "sha256": hashes.SHA256,
    "sha384": hashes.SHA384,
    "sha512": hashes.SHA512,
}
# The indirect-data type of a member says how its file is hashed.
MEMBER_KINDS = {SPC_CAB_DATA_OBJID: "cab", SPC_LINK_OBJID: "link", SPC_PE_IMAGE_DATA_OBJID: "pe"}
_MEMBER_DIGESTS = frozenset({"sha1", "sha256"})
_CHAIN_DEPTH = 8
_READ_CHUNK = 1 << 20
_INVALID_CATALOG = "the catalog is not a valid security catalog"
_INVALID_SIGNATURE = "the signature is not valid PKCS #7 signed data"
# asn1crypto decodes on first access and reports malformed input with these.
_DECODING_ERRORS = (ValueError, TypeError, KeyError, IndexError, OverflowError)


# ---------------------------------------------------------------- ASN.1 declarations


class CatalogNameValue(core.Sequence):
    """CAT_NAMEVALUE: a tagged UTF-16LE value, e.g. tag "File" and the member's name."""

    _fields = [
        ("tag", core.BMPString),
        ("flags", core.Integer),
        ("value", core.OctetString),
    ]


class SpcAttributeTypeAndOptionalValue(core.Sequence):
    _fields = [
        ("type", core.ObjectIdentifier),
        ("value", core.Any, {"optional": True}),
    ]


class SpcIndirectDataContent(core.Sequence):
    _fields = [
        ("data", SpcAttributeTypeAndOptionalValue),
        ("message_digest", algos.DigestInfo),
    ]


class SpcString(core.Choice):
    _alternatives = [
        ("unicode", core.BMPString, {"implicit": 0}),
        ("ascii", core.IA5String, {"implicit": 1}),
    ]


class SpcSerializedObject(core.Sequence):
    _fields = [
        ("class_id", core.OctetString),
        ("serialized_data", core.OctetString),
    ]


class SpcLink(core.Choice):
    _alternatives = [
        ("url", core.IA5String, {"implicit": 0}),
        ("moniker", SpcSerializedObject, {"implicit": 1}),
        ("file", SpcString, {"explicit": 2}),
    ]


class SpcSpOpusInfo(core.Sequence):
    """The publisher's program name and information link, a signed attribute."""

    _fields = [
        ("program_name", SpcString, {"explicit": 0, "optional": True}),
        ("more_info", SpcLink, {"explicit": 1, "optional": True}),
    ]


class SpcStatementType(core.SequenceOf):
    _child_spec = core.ObjectIdentifier


class SpcPeImageData(core.Sequence):
    _fields = [
        ("flags", core.BitString, {"optional": True}),
        ("file", SpcLink, {"explicit": 0, "optional": True}),
    ]


class AttributeValues(core.SetOf):
    _child_spec = core.Any


class SubjectAttribute(core.Sequence):
    _fields = [
        ("type", core.ObjectIdentifier),
        ("values", AttributeValues),
    ]


class SubjectAttributes(core.SetOf):
    _child_spec = SubjectAttribute


class TrustedSubject(core.Sequence):
    _fields = [
        ("identifier", core.OctetString),
        ("attributes", SubjectAttributes, {"optional": True}),
    ]


class TrustedSubjects(core.SequenceOf):
    _child_spec = TrustedSubject


class SubjectUsage(core.SequenceOf):
    _child_spec = core.ObjectIdentifier


class CtlAlgorithm(core.Sequence):
    _fields = [
        ("algorithm", core.ObjectIdentifier),
        ("parameters", core.Any, {"optional": True}),
    ]


class CertificateTrustList(core.Sequence):
    """The CTL of a catalog (wincrypt.h CTL_INFO)."""

    _fields = [
        ("version", core.Integer, {"default": 0}),
        ("subject_usage", SubjectUsage),
        ("list_identifier", core.OctetString, {"optional": True}),
        ("sequence_number", core.Integer, {"optional": True}),
        ("this_update", asn1_x509.Time),
        ("next_update", asn1_x509.Time, {"optional": True}),
        ("subject_algorithm", CtlAlgorithm),
        ("trusted_subjects", TrustedSubjects, {"optional": True}),
        ("extensions", asn1_x509.Extensions, {"explicit": 0, "optional": True}),
    ]


# -------------------------------------------------------------------------- results


@dataclass(frozen=True)
class CatalogMember:
    name: str
    digest_algorithm: str
    digest: str  # lower-case hexadecimal
    kind: str = "cab"  # how the file is hashed: "cab" or "link" (whole file), "pe" (Authenticode)


@dataclass(frozen=True)
class CatalogCompanion:
    """An entry without indirect data (makecat's SHA-1 twin of a V2 member), by its SHA-1."""

    sha1: str  # lower-case hexadecimal
    file: str | None  # the update folder's file with that SHA-1; None when none (or no folder)


@dataclass(frozen=True)
class CatalogVerification:
    signer_subject: str
    signer_fingerprint: str  # SHA-256 of the signer certificate, lower-case hexadecimal
    signing_time: datetime.datetime
    signing_time_source: str  # "signingTime" or "thisUpdate"
    digest_algorithm: str  # the members' hash: "sha256", or "sha1" for older catalogs
    members: tuple[CatalogMember, ...]
    warnings: tuple[str, ...]


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


@dataclass(frozen=True)
class CatalogInspection:
    signature: SignatureSummary | None
    member_digests: tuple[str, ...]  # sorted distinct member hash algorithms
    catalog_version: int  # 1 or 2 (member format); 0 when the catalog cannot be read
    members: tuple[CatalogMember, ...]
    matched: tuple[str, ...]
    mismatched: tuple[str, ...]
    missing: tuple[str, ...]
    unlisted: tuple[str, ...]
    accepted: bool
    reason: str  # "" when accepted, else exactly the message verify_catalog raises
    warnings: tuple[str, ...]
    companions: tuple[CatalogCompanion, ...] = ()


@dataclass(frozen=True)
class _ParsedCatalog:
    signed_data: cms.SignedData
    ctl: CertificateTrustList
    ctl_octets: bytes
    version: int  # member format: 1 or 2


@dataclass(frozen=True)
class _Companion:
    sha1: str
    name: str | None

    @property
    def label(self) -> str:
        return self.name or f"SHA-1 {self.sha1}"


@dataclass
class _Comparison:
    matched: list[str] = field(default_factory=list)
    mismatched: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    unlisted: list[str] = field(default_factory=list)
    companions: list[CatalogCompanion] = field(default_factory=list)
    error: PackageError | None = None


@dataclass
class _Findings:
    """What the steps found; ``error`` is the first refusal, in the order verify meets it."""

    error: PackageError | None = None
    parsed: _ParsedCatalog | None = None
    summary: SignatureSummary | None = None
    signer: x509.Certificate | None = None
    signing_time: datetime.datetime | None = None
    signing_time_source: str = ""
    members: list[CatalogMember] = field(default_factory=list)
    companions: list[_Companion] = field(default_factory=list)
    comparison: _Comparison | None = None
    warnings: list[str] = field(default_factory=list)

    def fail(self, error: PackageError) -> None:
        if self.error is None:
            self.error = error


# ------------------------------------------------------------------------- verifying


def verify_catalog(
    catalog: bytes,
    *,
    files: Mapping[str, Path],
    trusted_publishers: Sequence[bytes],
    catalog_name: str | None = None,
    refuse_sha1: bool = False,
    known_sha256: Mapping[str, str] | None = None,
) -> CatalogVerification:
    """Verify a catalog against the files of its update folder; refuse on any failure.

    ``files`` maps each file name of the folder to its path (the catalog itself, named
    ``catalog_name``, is skipped). ``known_sha256`` saves re-hashing files whose SHA-256
    is already known from extraction.
    """
    found = _examine(
        catalog,
        files=files,
        trusted_publishers=trusted_publishers,
        catalog_name=catalog_name,
        refuse_sha1=refuse_sha1,
        known_sha256=known_sha256 or {},
        thorough=False,
    )
    if found.error is not None:
        raise found.error
    if found.signer is None or found.signing_time is None:  # unreachable: no error, both known
        raise PackageError("the catalog's signature could not be checked")
    members = found.members
    digest = "sha1" if any(m.digest_algorithm == "sha1" for m in members) else "sha256"
    return CatalogVerification(
        signer_subject=found.signer.subject.rfc4514_string(),
        signer_fingerprint=found.signer.fingerprint(hashes.SHA256()).hex(),
        signing_time=found.signing_time,
        signing_time_source=found.signing_time_source,
        digest_algorithm=digest,
        members=tuple(members),
        warnings=tuple(found.warnings),
    )


def inspect_catalog(
    catalog: bytes,
    *,
    files: Mapping[str, Path] | None = None,
    trusted_publishers: Sequence[bytes] = (),
    catalog_name: str | None = None,
    refuse_sha1: bool = False,
    known_sha256: Mapping[str, str] | None = None,
) -> CatalogInspection:
    """Everything the catalog says and the verdict ``verify_catalog`` would reach; never
    raises PackageError. Without ``files`` (a lone catalog) the verdict covers the
    signature, the chain and the member list only.
    """
    found = _examine(
        catalog,
        files=files,
        trusted_publishers=trusted_publishers,
        catalog_name=catalog_name,
        refuse_sha1=refuse_sha1,
        known_sha256=known_sha256 or {},
        thorough=True,
    )
    comparison = found.comparison or _Comparison()
    if files is None and found.parsed is not None:
        found.warnings.append("no update folder was given: the member files were not compared")
    digests = {member.digest_algorithm for member in found.members}
    if found.companions:
        digests.add("sha1")
    companions = comparison.companions or [
        CatalogCompanion(companion.sha1, None) for companion in found.companions
    ]
    return CatalogInspection(
        signature=found.summary,
        member_digests=tuple(sorted(digests)),
        catalog_version=found.parsed.version if found.parsed else 0,
        members=tuple(found.members),
        matched=tuple(comparison.matched),
        mismatched=tuple(comparison.mismatched),
        missing=tuple(comparison.missing),
        unlisted=tuple(comparison.unlisted),
        accepted=found.error is None,
        reason=found.error.message if found.error else "",
        warnings=tuple(found.warnings),
        companions=tuple(companions),
    )


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


def pe_image_digest(source: bytes | Path, algorithm: str = "sha256") -> str:
    """The Authenticode hash of a PE image (lower-case hexadecimal): the file without
    its checksum field, its certificate-table directory entry and its certificate table.

    Raises ValueError, saying why, when ``source`` is not a PE image.
    """
    if isinstance(source, Path):
        with open(source, "rb") as handle:
            return _pe_digests(handle, [algorithm])[algorithm]
    return _pe_digests(io.BytesIO(source), [algorithm])[algorithm]


# ----------------------------------------------------------------------- the steps


def _examine(
    catalog: bytes,
    *,
    files: Mapping[str, Path] | None,
    trusted_publishers: Sequence[bytes],
    catalog_name: str | None,
    refuse_sha1: bool,
    known_sha256: Mapping[str, str],
    thorough: bool,
) -> _Findings:
    """Run every check in order; stop at the first refusal unless ``thorough``."""
    found = _Findings()
    try:
        parsed = found.parsed = _parse(catalog)
    except PackageError as error:
        found.fail(error)
        if thorough:  # signed data that is no catalog still has a signer worth showing
            with contextlib.suppress(PackageError):
                signed = _load_signed_data(catalog, invalid=_INVALID_CATALOG, not_signed="")
                found.summary = _summarize(
                    signed, trusted=[], invalid=_INVALID_CATALOG, warnings=found.warnings
                )
        return found
    signed_data = parsed.signed_data
    with contextlib.suppress(PackageError):
        trusted_for_display = [c for c in map(_try_load_certificate, trusted_publishers) if c]
        found.summary = _summarize(
            signed_data,
            trusted=trusted_for_display,
            ctl=parsed.ctl,
            invalid=_INVALID_CATALOG,
            warnings=found.warnings,
        )
    signature_digest = ""
    try:
        with _decoding(_INVALID_CATALOG):
            signer_info = _single_signer(signed_data)
            signature_digest = signer_info["digest_algorithm"]["algorithm"].native
            signer = found.signer = _signer_certificate(signed_data, signer_info)
            signing_time, found.signing_time_source = _check_signature(parsed, signer_info, signer)
            found.signing_time = signing_time
        _check_chain(
            signer,
            embedded=_embedded_certificates(signed_data),
            trusted=[_load_certificate(data) for data in trusted_publishers],
            at=signing_time,
        )
    except PackageError as error:
        found.fail(error)
        if not thorough:
            return found
    try:
        found.members, found.companions = _members(parsed.ctl)
    except PackageError as error:
        found.fail(error)
        return found
    try:
        found.warnings.extend(_sha1_policy(signature_digest, found.members, refuse_sha1))
    except PackageError as error:
        found.fail(error)
        if not thorough:
            return found
    if files is not None:
        found.comparison = _compare_members(
            found.members,
            found.companions,
            files=files,
            catalog_name=catalog_name,
            known_sha256=known_sha256,
            stop_at_first=not thorough,
        )
        if found.comparison.error is not None:
            found.fail(found.comparison.error)
    return found


@contextlib.contextmanager
def _decoding(invalid: str) -> Iterator[None]:
    """Turn asn1crypto's lazy decoding errors into one short line."""
    try:
        yield
    except _DECODING_ERRORS as error:
        raise PackageError(f"{invalid} ({_short(error)})") from None


def _short(error: BaseException) -> str:
    lines = str(error).strip().splitlines()
    text = " ".join(lines[0].split()) if lines else type(error).__name__
    return text if len(text) <= 120 else text[:117] + "..."


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


def _single_signer(signed_data: cms.SignedData) -> cms.SignerInfo:
    signer_infos = signed_data["signer_infos"]
    if len(signer_infos) != 1:
        raise PackageError(f"the catalog has {len(signer_infos)} signers; exactly one is expected")
    return signer_infos[0]


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


def _signer_certificate(
    signed_data: cms.SignedData, signer_info: cms.SignerInfo
) -> x509.Certificate:
    found = _find_by_sid(signer_info["sid"], _embedded_certificates(signed_data))
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
    parsed: _ParsedCatalog, signer_info: cms.SignerInfo, signer: x509.Certificate
) -> tuple[datetime.datetime, str]:
    """Check the signed attributes and the signature; return the signing time and its source."""
    digest_name = signer_info["digest_algorithm"]["algorithm"].native
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
) -> None:
    """Require a path from the signer to a trusted publisher, every link valid at ``at``."""
    if not trusted:
        raise PackageError("no trusted publisher certificate is configured")
    _require_usage(signer, x509.KeyUsage, "digital_signature", "sign catalogs")
    trusted_der = {cert.public_bytes(Encoding.DER) for cert in trusted}
    current = signer
    for _ in range(_CHAIN_DEPTH):
        _require_valid_at(current, at)
        if current.public_bytes(Encoding.DER) in trusted_der:
            return
        issuer = _find_issuer(current, trusted) or _find_issuer(current, embedded)
        if issuer is None:
            raise PackageError(
                "the catalog's signer does not chain to a trusted publisher "
                f"({signer.subject.rfc4514_string()})"
            )
        current = issuer
    raise PackageError("the catalog's certificate chain is too long")


def _find_issuer(
    certificate: x509.Certificate, candidates: list[x509.Certificate]
) -> x509.Certificate | None:
    for candidate in candidates:
        if candidate.subject != certificate.issuer or candidate == certificate:
            continue
        if not _is_ca(candidate):
            continue
        try:
            certificate.verify_directly_issued_by(candidate)
        except (ValueError, TypeError, InvalidSignature):
            continue
        return candidate
    return None


def _is_ca(certificate: x509.Certificate) -> bool:
    try:
        constraints = certificate.extensions.get_extension_for_class(x509.BasicConstraints)
    except x509.ExtensionNotFound:
        return False
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
            f"the signer certificate may not {purpose} ({certificate.subject.rfc4514_string()})"
        )


def _require_valid_at(certificate: x509.Certificate, at: datetime.datetime) -> None:
    if not certificate.not_valid_before_utc <= at <= certificate.not_valid_after_utc:
        raise PackageError(
            f"certificate {certificate.subject.rfc4514_string()} was not valid at the catalog's "
            f"signing time {at.isoformat()} (valid {certificate.not_valid_before_utc.isoformat()}"
            f" to {certificate.not_valid_after_utc.isoformat()})"
        )


def _sha1_policy(signature_digest: str, members: list[CatalogMember], refuse: bool) -> list[str]:
    """SHA-1 in the signature or a member hash: a warning, or a refusal by the settings.

    makecat's SHA-1 twins of V2 members are not members: nothing relies on them.
    """
    if signature_digest != "sha1" and all(m.digest_algorithm != "sha1" for m in members):
        return []
    if refuse:
        raise PackageError("the catalog uses SHA-1, which the settings refuse")
    return ["the catalog uses SHA-1; ask the vendor for a SHA-256 catalog"]


# ------------------------------------------------------------------------- members


def _members(ctl: CertificateTrustList) -> tuple[list[CatalogMember], list[_Companion]]:
    members: list[CatalogMember] = []
    companions: list[_Companion] = []
    seen: set[str] = set()
    try:
        subjects = list(ctl["trusted_subjects"] or [])
    except _DECODING_ERRORS as error:
        raise PackageError(
            f"the catalog has a member that cannot be read ({_short(error)})"
        ) from None
    for subject in subjects:
        name_value: bytes | None = None
        indirect: tuple[str, str, bytes] | None = None  # data type, algorithm, digest
        try:
            identifier = subject["identifier"].native
            for attribute in subject["attributes"] or []:
                kind = attribute["type"].dotted
                for value in attribute["values"]:
                    if kind == CAT_NAMEVALUE_OBJID:
                        parsed_name = value.parse(CatalogNameValue)
                        if str(parsed_name["tag"].native).casefold() == "file":
                            name_value = parsed_name["value"].native
                    elif kind == SPC_INDIRECT_DATA_OBJID:
                        content = value.parse(SpcIndirectDataContent)
                        info = content["message_digest"]
                        indirect = (
                            content["data"]["type"].dotted,
                            info["digest_algorithm"]["algorithm"].native,
                            info["digest"].native,
                        )
        except _DECODING_ERRORS as error:
            raise PackageError(
                f"the catalog has a member that cannot be read ({_short(error)})"
            ) from None
        if indirect is None:
            # makecat writes V2 catalogs with a twin entry per file: its SHA-1 as the
            # identifier and no indirect data. It is paired with its file later.
            sha1 = _sha1_identifier(identifier)
            if sha1 is None:
                raise PackageError("the catalog has a member without a file name or hash")
            companion_name = None
            if name_value is not None:
                with contextlib.suppress(PackageError):
                    companion_name = _member_name(name_value)
            companions.append(_Companion(sha1, companion_name))
            continue
        if name_value is None:
            raise PackageError("the catalog has a member without a file name or hash")
        name = _member_name(name_value)
        data_type, algorithm, digest = indirect
        if algorithm not in _MEMBER_DIGESTS:
            raise PackageError(f"member hash algorithm {algorithm} is not accepted", member=name)
        if data_type not in MEMBER_KINDS:
            raise PackageError(
                f"the catalog hashes the file as {data_type}, which is not supported",
                member=name,
            )
        if name.casefold() in seen:
            raise PackageError("the catalog lists the member twice", member=name)
        seen.add(name.casefold())
        members.append(CatalogMember(name, algorithm, digest.hex(), MEMBER_KINDS[data_type]))
    return members, companions


def _member_name(raw: bytes) -> str:
    """A member's file name: UTF-16LE as makecat writes it (with or without its NUL), or
    8-bit text from other tools, read as UTF-8."""
    stripped = raw.rstrip(b"\0")
    if stripped and b"\0" not in stripped:
        with contextlib.suppress(UnicodeDecodeError):
            name = stripped.decode("utf-8")
            if _plain_name(name):
                return name
    # UTF-16LE: every character of the Latin range, and the terminator, has a zero high byte.
    if len(raw) % 2 == 0 and any(raw[index] == 0 for index in range(1, len(raw), 2)):
        with contextlib.suppress(UnicodeDecodeError):
            name = raw.decode("utf-16-le").rstrip("\0")
            if _plain_name(name):
                return name
    raise PackageError(
        f"the catalog has a member whose name is neither UTF-16 nor UTF-8 text ({raw[:32].hex()})"
    )


def _plain_name(name: str) -> bool:
    return bool(name) and all(
        unicodedata.category(character) not in ("Cc", "Cs", "Co", "Cn") for character in name
    )


def _sha1_identifier(identifier: bytes) -> str | None:
    """A SHA-1 written as an entry's identifier: 20 raw bytes, or upper-case hexadecimal
    in UTF-16LE (makecat's member tag)."""
    if len(identifier) == 20:
        return identifier.hex()
    try:
        text = identifier.decode("utf-16-le").rstrip("\0")
    except UnicodeDecodeError:
        return None
    if len(text) == 40 and all(character in string.hexdigits for character in text):
        return text.lower()
    return None


def _compare_members(
    members: list[CatalogMember],
    companions: list[_Companion],
    *,
    files: Mapping[str, Path],
    catalog_name: str | None,
    known_sha256: Mapping[str, str],
    stop_at_first: bool,
) -> _Comparison:
    """Every file a member with a matching hash, every member a file, every SHA-1 twin
    some file's SHA-1; ``error`` is the first failure in sorted file order."""
    result = _Comparison()

    def fail(error: PackageError) -> bool:
        if result.error is None:
            result.error = error
        return stop_at_first

    # Windows file names are case-insensitive; the cabinet reader already refused
    # members that differ only by case, so folding cannot merge two files.
    listed = {member.name.casefold(): member for member in members}
    skip = catalog_name.casefold() if catalog_name else None
    hasher = _FileHasher(files, known_sha256, with_sha1=bool(companions))
    present: dict[str, str] = {}
    for file_name in sorted(files):
        key = file_name.casefold()
        if key == skip:
            continue
        present[key] = file_name
        member = listed.get(key)
        if member is None:
            result.unlisted.append(file_name)
            if fail(
                PackageError("the file is not listed in the security catalog", member=file_name)
            ):
                return result
            continue
        try:
            actual = hasher.digest(file_name, member.kind, member.digest_algorithm)
        except ValueError as error:
            result.mismatched.append(file_name)
            message = f"the catalog lists the file as a PE image, but it is not one ({error})"
            if fail(PackageError(message, member=file_name)):
                return result
            continue
        if hmac.compare_digest(actual, member.digest):
            result.matched.append(file_name)
        else:
            result.mismatched.append(file_name)
            message = "the file's hash does not match the security catalog"
            if fail(PackageError(message, member=file_name)):
                return result
    for key, member in sorted(listed.items()):
        if key not in present:
            result.missing.append(member.name)
            message = "the security catalog lists a file that is missing from the update folder"
            if fail(PackageError(message, member=member.name)):
                return result
    if companions:
        by_sha1: dict[str, str] = {}
        for key, file_name in sorted(present.items(), reverse=True):
            member = listed.get(key)
            kinds = ["cab", "pe"] if member is not None and member.kind == "pe" else ["cab"]
            for kind in kinds:
                with contextlib.suppress(ValueError):
                    by_sha1[hasher.digest(file_name, kind, "sha1")] = file_name
        for companion in companions:
            paired = by_sha1.get(companion.sha1)
            result.companions.append(CatalogCompanion(companion.sha1, paired))
            if paired is None:
                result.missing.append(companion.label)
                message = (
                    f"the security catalog lists a file with SHA-1 {companion.sha1} that is "
                    "missing from the update folder"
                )
                if fail(PackageError(message, member=companion.name)):
                    return result
    return result


class _FileHasher:
    """File digests by name, kind ("pe" or a whole-file kind) and algorithm, each file read
    once per kind; SHA-1 rides along when SHA-1 twins need pairing."""

    def __init__(
        self, files: Mapping[str, Path], known_sha256: Mapping[str, str], *, with_sha1: bool
    ):
        self._files = files
        self._known = known_sha256
        self._with_sha1 = with_sha1
        self._cache: dict[tuple[str, str, str], str] = {}

    def digest(self, name: str, kind: str, algorithm: str) -> str:
        mode = "pe" if kind == "pe" else "flat"
        if mode == "flat" and algorithm == "sha256" and name in self._known:
            return self._known[name].lower()
        cached = self._cache.get((name, mode, algorithm))
        if cached is not None:
            return cached
        algorithms = {algorithm} | ({"sha1"} if self._with_sha1 else set())
        with open(self._files[name], "rb") as handle:
            digests = (
                _pe_digests(handle, algorithms)
                if mode == "pe"
                else _flat_digests(handle, algorithms)
            )
        for each, value in digests.items():
            self._cache[(name, mode, each)] = value
        return digests[algorithm]


def _flat_digests(handle: IO[bytes], algorithms: set[str] | list[str]) -> dict[str, str]:
    digests = {name: hashlib.new(name) for name in algorithms}
    while chunk := handle.read(_READ_CHUNK):
        for digest in digests.values():
            digest.update(chunk)
    return {name: digest.hexdigest() for name, digest in digests.items()}


def _pe_digests(handle: IO[bytes], algorithms: set[str] | list[str]) -> dict[str, str]:
    handle.seek(0, io.SEEK_END)
    size = handle.tell()
    skips = _pe_skipped_ranges(handle, size)
    digests = {name: hashlib.new(name) for name in algorithms}
    position = 0
    for start, length in [*skips, (size, 0)]:
        handle.seek(position)
        remaining = start - position
        while remaining > 0:
            chunk = handle.read(min(remaining, _READ_CHUNK))
            if not chunk:
                break
            for digest in digests.values():
                digest.update(chunk)
            remaining -= len(chunk)
        position = start + length
    return {name: digest.hexdigest() for name, digest in digests.items()}


def _pe_skipped_ranges(handle: IO[bytes], size: int) -> list[tuple[int, int]]:
    """(start, length) of what Authenticode leaves out of a PE image's hash, in order."""

    def read(offset: int, length: int) -> bytes:
        handle.seek(offset)
        data = handle.read(length)
        if len(data) != length:
            raise ValueError("the file ends inside its PE headers")
        return data

    if size < 64 or read(0, 2) != b"MZ":
        raise ValueError("no MZ header")
    (pe_offset,) = struct.unpack("<I", read(0x3C, 4))
    if pe_offset + 24 > size or read(pe_offset, 4) != b"PE\0\0":
        raise ValueError("no PE header")
    (optional_size,) = struct.unpack("<H", read(pe_offset + 20, 2))
    optional = pe_offset + 24
    (magic,) = struct.unpack("<H", read(optional, 2))
    if magic == 0x10B:  # PE32
        count_at, directory_at = 92, 96
    elif magic == 0x20B:  # PE32+
        count_at, directory_at = 108, 112
    else:
        raise ValueError(f"unknown optional header magic {magic:#x}")
    entry = optional + directory_at + 4 * 8  # the certificate table is data directory 4
    if optional_size < directory_at + 5 * 8:
        raise ValueError("the PE header has no certificate table entry")
    (count,) = struct.unpack("<I", read(optional + count_at, 4))
    if count < 5:
        raise ValueError("the PE header has no certificate table entry")
    address, length = struct.unpack("<II", read(entry, 8))
    skips = [(optional + 64, 4), (entry, 8)]  # the checksum, the directory entry
    if length:
        if address < optional + optional_size or address + length > size:
            raise ValueError("the certificate table lies outside the file")
        skips.append((address, length))
    return skips


# ----------------------------------------------------------------------- summaries


def _summarize(
    signed_data: cms.SignedData,
    *,
    trusted: list[x509.Certificate],
    invalid: str,
    warnings: list[str],
    ctl: CertificateTrustList | None = None,
) -> SignatureSummary:
    """The signer, chain, times and publisher information of a signature, unjudged."""
    with _decoding(invalid):
        content_type = signed_data["encap_content_info"]["content_type"].dotted
        if ctl is None and content_type == SZOID_CTL:
            with contextlib.suppress(*_DECODING_ERRORS):
                ctl = _trust_list(signed_data)
        signer_infos = list(signed_data["signer_infos"])
        embedded = _embedded_certificates(signed_data)
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
