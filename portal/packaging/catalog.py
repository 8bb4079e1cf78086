"""Verification of Microsoft security catalogs (``.cat``): signature, chain, member hashes.

A catalog is a PKCS #7 ``SignedData`` whose content is a certificate trust list (CTL).
The CTL structure is declared below with asn1crypto's classes; ``cryptography`` checks
the signatures. Validity is judged at the catalog's signing time because packages
outlive their certificates.
"""

from __future__ import annotations

import datetime
import hashlib
import hmac
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from asn1crypto import algos, cms, core
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

HASH_ALGORITHMS: dict[str, type[hashes.HashAlgorithm]] = {
    "sha1": hashes.SHA1,
    "sha256": hashes.SHA256,
    "sha384": hashes.SHA384,
    "sha512": hashes.SHA512,
}
_MEMBER_DIGESTS = frozenset({"sha1", "sha256"})
_CHAIN_DEPTH = 8
_READ_CHUNK = 1 << 20


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
class _ParsedCatalog:
    signed_data: cms.SignedData
    ctl: CertificateTrustList
    ctl_octets: bytes


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
    parsed = _parse(catalog)
    signer_info = _single_signer(parsed.signed_data)
    signer = _signer_certificate(parsed.signed_data, signer_info)
    signing_time, time_source = _check_signature(parsed, signer_info, signer)
    _check_chain(
        signer,
        embedded=_embedded_certificates(parsed.signed_data),
        trusted=[_load_certificate(data) for data in trusted_publishers],
        at=signing_time,
    )
    members = _members(parsed.ctl)

    warnings: list[str] = []
    signature_digest = signer_info["digest_algorithm"]["algorithm"].native
    if signature_digest == "sha1" or any(m.digest_algorithm == "sha1" for m in members):
        if refuse_sha1:
            raise PackageError("the catalog uses SHA-1, which the settings refuse")
        warnings.append("the catalog uses SHA-1; ask the vendor for a SHA-256 catalog")

    _check_members(
        members,
        files=files,
        catalog_name=catalog_name,
        known_sha256=known_sha256 or {},
    )
    digest = "sha1" if any(m.digest_algorithm == "sha1" for m in members) else "sha256"
    return CatalogVerification(
        signer_subject=signer.subject.rfc4514_string(),
        signer_fingerprint=signer.fingerprint(hashes.SHA256()).hex(),
        signing_time=signing_time,
        signing_time_source=time_source,
        digest_algorithm=digest,
        members=tuple(members),
        warnings=tuple(warnings),
    )


def _parse(catalog: bytes) -> _ParsedCatalog:
    try:
        info = cms.ContentInfo.load(catalog, strict=True)
        if info["content_type"].native != "signed_data":
            raise PackageError("the catalog is not PKCS #7 signed data")
        signed_data = info["content"]
        if signed_data["version"].native != "v1":
            # Only the PKCS #7 v1.5 form carries the trust list directly in [0].
            raise PackageError("the catalog is not in the PKCS #7 v1.5 form Windows writes")
        content_info = signed_data["encap_content_info"]
        if content_info["content_type"].dotted != SZOID_CTL:
            raise PackageError("the catalog's signed content is not a certificate trust list")
        content = content_info["content"]
        if not isinstance(content, core.Any) or content.contents is None:
            raise PackageError("the catalog has no certificate trust list")
        ctl = content.parse(CertificateTrustList)
        # asn1crypto parses lazily: reach every field now so malformed input fails here.
        ctl.native  # noqa: B018
        signed_data.native  # noqa: B018
        usage = [oid.dotted for oid in ctl["subject_usage"]]
    except (ValueError, TypeError, KeyError) as error:
        raise PackageError(f"the catalog is not a valid security catalog ({error})") from None
    if SZOID_CATALOG_LIST not in usage:
        raise PackageError("the certificate trust list is not a catalog list")
    if ctl["subject_algorithm"]["algorithm"].dotted not in (
        SZOID_CATALOG_LIST_MEMBER,
        SZOID_CATALOG_LIST_MEMBER2,
    ):
        raise PackageError("the catalog's member format is not one Windows writes")
    # The signed digest covers the trust list's content octets: DER without tag and length.
    return _ParsedCatalog(signed_data, ctl, ctl.contents)


def _single_signer(signed_data: cms.SignedData) -> cms.SignerInfo:
    signer_infos = signed_data["signer_infos"]
    if len(signer_infos) != 1:
        raise PackageError(f"the catalog has {len(signer_infos)} signers; exactly one is expected")
    return signer_infos[0]


def _embedded_certificates(signed_data: cms.SignedData) -> list[x509.Certificate]:
    certificates = []
    for choice in signed_data["certificates"] or []:
        if choice.name == "certificate":
            try:
                certificates.append(x509.load_der_x509_certificate(choice.chosen.dump()))
            except ValueError as error:
                raise PackageError(
                    f"the catalog holds an unreadable certificate ({error})"
                ) from None
    return certificates


def _signer_certificate(
    signed_data: cms.SignedData, signer_info: cms.SignerInfo
) -> x509.Certificate:
    sid = signer_info["sid"]
    for certificate in _embedded_certificates(signed_data):
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
            except x509.ExtensionNotFound:
                continue
            if identifier == sid.chosen.native:
                return certificate
    raise PackageError("the catalog does not contain its signer's certificate")


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
    attributes: dict[str, list[Any]] = {}
    for attribute in signed_attrs:
        name = attribute["type"].native
        if name in attributes:
            raise PackageError(f"the catalog's signed attribute {name} appears twice")
        attributes[name] = list(attribute["values"])
    content_types = attributes.get("content_type", [])
    if len(content_types) != 1 or content_types[0].dotted != SZOID_CTL:
        raise PackageError("the catalog's signed content type is not a certificate trust list")
    digests = attributes.get("message_digest", [])
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

    times = attributes.get("signing_time", [])
    if times:
        return _aware(times[0].native), "signingTime"
    return _aware(parsed.ctl["this_update"].native), "thisUpdate"


def _aware(value: object) -> datetime.datetime:
    if not isinstance(value, datetime.datetime) or value.tzinfo is None:
        raise PackageError("the catalog's signing time is not a valid time")
    return value


def _load_certificate(data: bytes) -> x509.Certificate:
    try:
        if data.lstrip().startswith(b"-----BEGIN"):
            return x509.load_pem_x509_certificate(data)
        return x509.load_der_x509_certificate(data)
    except ValueError as error:
        raise PackageError(f"a trusted publisher certificate cannot be read ({error})") from None


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


def _members(ctl: CertificateTrustList) -> list[CatalogMember]:
    members: list[CatalogMember] = []
    seen: set[str] = set()
    for subject in ctl["trusted_subjects"] or []:
        name: str | None = None
        digest: tuple[str, bytes] | None = None
        for attribute in subject["attributes"] or []:
            kind = attribute["type"].dotted
            for value in attribute["values"]:
                try:
                    if kind == CAT_NAMEVALUE_OBJID:
                        name_value = value.parse(CatalogNameValue)
                        if name_value["tag"].native == "File":
                            raw = name_value["value"].native
                            name = raw.decode("utf-16-le").rstrip("\0")
                    elif kind == SPC_INDIRECT_DATA_OBJID:
                        info = value.parse(SpcIndirectDataContent)["message_digest"]
                        digest = (
                            info["digest_algorithm"]["algorithm"].native,
                            info["digest"].native,
                        )
                except (ValueError, TypeError, UnicodeDecodeError) as error:
                    raise PackageError(
                        f"the catalog has a member that cannot be read ({error})"
                    ) from None
        if name is None or digest is None:
            raise PackageError("the catalog has a member without a file name or hash")
        algorithm, value_bytes = digest
        if algorithm not in _MEMBER_DIGESTS:
            raise PackageError(f"member hash algorithm {algorithm} is not accepted", member=name)
        if name.casefold() in seen:
            raise PackageError("the catalog lists the member twice", member=name)
        seen.add(name.casefold())
        members.append(CatalogMember(name, algorithm, value_bytes.hex()))
    return members


def _check_members(
    members: list[CatalogMember],
    *,
    files: Mapping[str, Path],
    catalog_name: str | None,
    known_sha256: Mapping[str, str],
) -> None:
    # Windows file names are case-insensitive; the cabinet reader already refused
    # members that differ only by case, so folding cannot merge two files.
    listed = {member.name.casefold(): member for member in members}
    skip = catalog_name.casefold() if catalog_name else None
    present: set[str] = set()
    for file_name in sorted(files):
        key = file_name.casefold()
        if key == skip:
            continue
        present.add(key)
        member = listed.get(key)
        if member is None:
            raise PackageError("the file is not listed in the security catalog", member=file_name)
        if member.digest_algorithm == "sha256" and file_name in known_sha256:
            actual = known_sha256[file_name].lower()
        else:
            actual = _hash_file(files[file_name], member.digest_algorithm)
        if not hmac.compare_digest(actual, member.digest):
            raise PackageError(
                "the file's hash does not match the security catalog", member=file_name
            )
    for key, member in sorted(listed.items()):
        if key not in present:
            raise PackageError(
                "the security catalog lists a file that is missing from the update folder",
                member=member.name,
            )


def _hash_file(path: Path, algorithm: str) -> str:
    digest = hashlib.new(algorithm)
    with open(path, "rb") as handle:
        while chunk := handle.read(_READ_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()
