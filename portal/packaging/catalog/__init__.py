"""Verification of Microsoft security catalogs (``.cat``): signature, chain, member hashes.

A catalog is a PKCS #7 ``SignedData`` whose content is a certificate trust list (CTL).
The CTL structure is declared in ``asn1`` with asn1crypto's classes; ``cryptography`` checks
the signatures. Validity is judged at the catalog's signing time because packages
outlive their certificates.

Parsing is lazy: only what verification needs is decoded, so the attributes real
catalogs carry (publisher information, timestamps, member information) pass untouched.
``verify_catalog`` refuses at the first failure; ``inspect_catalog`` runs the same
steps, goes on after a failure to report everything it can, and reaches the same
verdict. ``summarize_signature`` describes any Authenticode signature, a catalog's or
a signed cabinet's.

The package is split by subdomain: ``asn1`` holds the object identifiers and the ASN.1
declarations, ``signature`` the signature, the chain and the signature summary,
``members`` the member list, its comparison with the files and the PE hash. This module
runs the steps in order and re-exports the names the rest of the project imports.
"""

from __future__ import annotations

import contextlib
import datetime
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes

from portal.packaging.catalog.asn1 import (
    CAT_NAMEVALUE_OBJID,
    SPC_CAB_DATA_OBJID,
    SPC_INDIRECT_DATA_OBJID,
    SPC_INDIVIDUAL_SP_KEY_PURPOSE_OBJID,
    SPC_LINK_OBJID,
    SPC_PE_IMAGE_DATA_OBJID,
    SPC_RFC3161_OBJID,
    SPC_SP_OPUS_INFO_OBJID,
    SPC_STATEMENT_TYPE_OBJID,
    SZOID_CATALOG_LIST,
    SZOID_CATALOG_LIST_MEMBER,
    SZOID_CATALOG_LIST_MEMBER2,
    SZOID_CTL,
    CatalogNameValue,
    CertificateTrustList,
    SpcIndirectDataContent,
    SpcLink,
    SpcPeImageData,
    SpcSpOpusInfo,
    SpcStatementType,
    SpcString,
    TrustedSubject,
    TrustedSubjects,
    _decoding,
)
from portal.packaging.catalog.members import (
    CatalogCompanion,
    CatalogMember,
    _Companion,
    _compare_members,
    _Comparison,
    _members,
    pe_image_digest,
)
from portal.packaging.catalog.signature import (
    _INVALID_CATALOG,
    HASH_ALGORITHMS,
    SignatureSummary,
    TimestampInfo,
    _check_chain,
    _check_signature,
    _embedded_certificates,
    _load_certificate,
    _load_signed_data,
    _parse,
    _ParsedCatalog,
    _signer_certificate,
    _single_signer,
    _summarize,
    _try_load_certificate,
    summarize_signature,
)
from portal.packaging.errors import PackageError

# What other modules import from ``portal.packaging.catalog``.
__all__ = [
    "CAT_NAMEVALUE_OBJID",
    "HASH_ALGORITHMS",
    "SPC_CAB_DATA_OBJID",
    "SPC_INDIRECT_DATA_OBJID",
    "SPC_INDIVIDUAL_SP_KEY_PURPOSE_OBJID",
    "SPC_LINK_OBJID",
    "SPC_PE_IMAGE_DATA_OBJID",
    "SPC_RFC3161_OBJID",
    "SPC_SP_OPUS_INFO_OBJID",
    "SPC_STATEMENT_TYPE_OBJID",
    "SZOID_CATALOG_LIST",
    "SZOID_CATALOG_LIST_MEMBER",
    "SZOID_CATALOG_LIST_MEMBER2",
    "SZOID_CTL",
    "CatalogCompanion",
    "CatalogInspection",
    "CatalogMember",
    "CatalogNameValue",
    "CatalogVerification",
    "CertificateTrustList",
    "SignatureSummary",
    "SpcIndirectDataContent",
    "SpcLink",
    "SpcPeImageData",
    "SpcSpOpusInfo",
    "SpcStatementType",
    "SpcString",
    "TimestampInfo",
    "TrustedSubject",
    "TrustedSubjects",
    "inspect_catalog",
    "pe_image_digest",
    "summarize_signature",
    "verify_catalog",
]

# -------------------------------------------------------------------------- results


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


def _sha1_policy(signature_digest: str, members: list[CatalogMember], refuse: bool) -> list[str]:
    """SHA-1 in the signature or a member hash: a warning, or a refusal by the settings.

    makecat's SHA-1 twins of V2 members are not members: nothing relies on them.
    """
    if signature_digest != "sha1" and all(m.digest_algorithm != "sha1" for m in members):
        return []
    if refuse:
        raise PackageError("the catalog uses SHA-1, which the settings refuse")
    return ["the catalog uses SHA-1; ask the vendor for a SHA-256 catalog"]
