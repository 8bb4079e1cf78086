"""Verification of Microsoft security catalogs (``.cat``): signature, chain, member hashes.

A catalog is a PKCS #7 ``SignedData`` whose content is a certificate trust list (CTL).
The CTL structure is declared in ``asn1`` with asn1crypto's classes; ``cryptography`` checks
the signatures. Validity is judged at the catalog's signing time because packages
outlive their certificates.

Parsing is lazy: only what verification needs is decoded, so the attributes real
catalogs carry (publisher information, timestamps, member information) pass untouched.
``verify_catalog`` refuses at the first failure; ``inspect_catalog`` runs the same
steps, goes on after a failure to report everything it can, and reaches the same
verdict. A catalog is valid when any one of its signatures (nested ones included)
verifies and chains to a trusted publisher; one without a signer is "not signed".
``summarize_signature`` describes any Authenticode signature, a catalog's or a signed
cabinet's.

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
    SPC_CABINET_SIP_OBJID,
    SPC_INDIRECT_DATA_OBJID,
    SPC_INDIVIDUAL_SP_KEY_PURPOSE_OBJID,
    SPC_NESTED_SIGNATURE_OBJID,
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
from portal.packaging.catalog.chain import (
    HASH_ALGORITHMS,
    _check_chain,
    _load_certificate,
    _try_load_certificate,
    certificate_signature_digest,
)
from portal.packaging.catalog.digests import cabinet_digest, pe_image_digest
from portal.packaging.catalog.members import (
    CatalogCompanion,
    CatalogMember,
    MemberCheck,
    _Companion,
    _compare_members,
    _Comparison,
    _members,
    escaped_name,
)
from portal.packaging.catalog.signature import (
    _INVALID_CATALOG,
    _check_signature,
    _embedded_certificates,
    _load_signed_data,
    _parse,
    _ParsedCatalog,
    _Signature,
    _signatures,
    _signer_certificate,
)
from portal.packaging.catalog.summary import (
    SignatureSummary,
    TimestampInfo,
    _summarize,
    summarize_signature,
)
from portal.packaging.errors import PackageError

NOT_SIGNED = "the catalog is not signed"

# What other modules import from ``portal.packaging.catalog``.
__all__ = [
    "CAT_NAMEVALUE_OBJID",
    "HASH_ALGORITHMS",
    "SPC_CAB_DATA_OBJID",
    "SPC_INDIRECT_DATA_OBJID",
    "SPC_INDIVIDUAL_SP_KEY_PURPOSE_OBJID",
    "SPC_CABINET_SIP_OBJID",
    "SPC_NESTED_SIGNATURE_OBJID",
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
    "MemberCheck",
    "NOT_SIGNED",
    "cabinet_digest",
    "escaped_name",
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
    signature_used: int = 0  # which signature (0: the first signer; then nested ones) verified


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
    signatures: tuple[SignatureSummary, ...] = ()  # every signature, nested ones after the first
    signature_used: int | None = None  # the index in ``signatures`` the verdict relies on
    # Per file and per entry: matched, mismatched, missing or unlisted, with the hash kind.
    checks: tuple[MemberCheck, ...] = ()
    unmatched_entries: tuple[str, ...] = ()  # unnamed entries no file matched: reported only

    @property
    def unsigned(self) -> bool:
        return self.signature is not None and self.signature.unsigned


@dataclass
class _Findings:
    """What the steps found; ``error`` is the first refusal, in the order verify meets it."""

    error: PackageError | None = None
    parsed: _ParsedCatalog | None = None
    summary: SignatureSummary | None = None  # of an unsigned catalog or of non-catalog data
    summaries: list[SignatureSummary] = field(default_factory=list)  # one per signature
    signature_used: int | None = None
    sha1_signature: bool = False
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
        signature_used=found.signature_used or 0,
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
    if comparison.unmatched_entries:
        found.warnings.append(
            f"{len(comparison.unmatched_entries)} unnamed catalog entries match no file "
            "(reported, not refused)"
        )
    summaries = found.summaries
    used = found.signature_used
    signature = found.summary
    if summaries:
        signature = summaries[used if used is not None and used < len(summaries) else 0]
    return CatalogInspection(
        signature=signature,
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
        signatures=tuple(summaries),
        signature_used=used,
        checks=tuple(comparison.checks),
        unmatched_entries=tuple(comparison.unmatched_entries),
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
    trusted_for_display = [c for c in map(_try_load_certificate, trusted_publishers) if c]
    try:
        with _decoding(_INVALID_CATALOG):
            signatures = _signatures(signed_data)
    except PackageError as error:
        found.fail(error)
        return found
    for signature in signatures:
        with contextlib.suppress(PackageError):
            found.summaries.append(
                _summarize(
                    signature.signed_data,
                    trusted=trusted_for_display,
                    ctl=parsed.ctl,
                    invalid=_INVALID_CATALOG,
                    warnings=found.warnings,
                    signer_info=signature.signer_info,
                    extra_certificates=_embedded_certificates(signed_data)
                    if signature.nested
                    else (),
                    nested=signature.nested,
                )
            )
    if not signatures:
        with contextlib.suppress(PackageError):
            found.summary = _summarize(
                signed_data, trusted=[], ctl=parsed.ctl, invalid=_INVALID_CATALOG, warnings=[]
            )
        found.fail(PackageError(NOT_SIGNED))
        if not thorough:
            return found
    else:
        try:
            trusted = [_load_certificate(data) for data in trusted_publishers]
            _choose_signature(found, parsed, signatures, trusted, refuse_sha1)
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
        found.warnings.extend(_sha1_policy(found.sha1_signature, found.members, refuse_sha1))
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


@dataclass(frozen=True)
class _Judged:
    signer: x509.Certificate
    signing_time: datetime.datetime
    source: str
    sha1: bool  # SHA-1 in the signature or anywhere in the chain below its trust anchor


def _judge(
    parsed: _ParsedCatalog, signature: _Signature, trusted: list[x509.Certificate]
) -> _Judged:
    """Check one signature and its chain; a refusal says what failed."""
    with _decoding(_INVALID_CATALOG):
        signer = _signer_certificate(signature, parsed.signed_data)
        signing_time, source = _check_signature(parsed, signature, signer)
        embedded = _embedded_certificates(signature.signed_data)
        if signature.nested:
            embedded += _embedded_certificates(parsed.signed_data)
        signer_info = signature.signer_info
        digest = signer_info["digest_algorithm"]["algorithm"].native
    chain = _check_chain(signer, embedded=embedded, trusted=trusted, at=signing_time)
    if chain[-1].subject == chain[-1].issuer and len(chain) > 1:
        chain = chain[:-1]  # a self-signed trust anchor's own signature is not relied upon
    digests = {digest, *(certificate_signature_digest(c) for c in chain)}
    return _Judged(signer, signing_time, source, "sha1" in digests)


def _choose_signature(
    found: _Findings,
    parsed: _ParsedCatalog,
    signatures: list[_Signature],
    trusted: list[x509.Certificate],
    refuse_sha1: bool,
) -> None:
    """Accept the catalog on any one valid signature that chains to a trusted publisher:
    the first without SHA-1 when there is one, else the first. Refuse with the reason the
    first signature failed, naming each signature's when there are several."""
    if not trusted:
        raise PackageError("no trusted publisher certificate is configured")
    valid: list[tuple[int, _Judged]] = []
    reasons: list[str] = []
    for index, signature in enumerate(signatures):
        try:
            valid.append((index, _judge(parsed, signature, trusted)))
        except PackageError as error:
            reasons.append(f"signature {index + 1}: {error.message}")
    if not valid:
        if len(signatures) == 1:
            raise PackageError(reasons[0].split(": ", 1)[1])
        raise PackageError(
            f"none of the catalog's {len(signatures)} signatures is valid ({'; '.join(reasons)})"
        )
    index, judged = next(((i, j) for i, j in valid if not j.sha1), valid[0])
    found.signature_used = index
    found.signer = judged.signer
    found.signing_time = judged.signing_time
    found.signing_time_source = judged.source
    found.sha1_signature = judged.sha1
    if len(signatures) > 1:
        kind = "nested, " if signatures[index].nested else ""
        found.warnings.append(
            f"the catalog has {len(signatures)} signatures; signature {index + 1} "
            f"({kind}{judged.signer.subject.rfc4514_string()}) was used"
        )
    if refuse_sha1 and judged.sha1:
        raise PackageError("the catalog uses SHA-1, which the settings refuse")


def _sha1_policy(sha1_signature: bool, members: list[CatalogMember], refuse: bool) -> list[str]:
    """SHA-1 in the signature, its chain or a member hash: a warning, or a refusal by the
    settings. makecat's SHA-1 twins of V2 members are not members: nothing relies on them.
    """
    if not sha1_signature and all(m.digest_algorithm != "sha1" for m in members):
        return []
    if refuse:
        raise PackageError("the catalog uses SHA-1, which the settings refuse")
    return ["the catalog uses SHA-1; ask the vendor for a SHA-256 catalog"]
