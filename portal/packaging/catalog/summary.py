"""Any Authenticode signature described, unjudged: signer and chain certificates,
signing time, timestamps and SpcSpOpusInfo, as a ``SignatureSummary`` through
``summarize_signature``."""

from __future__ import annotations

import contextlib
import datetime
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from asn1crypto import cms, tsp
from cryptography import x509
from cryptography.hazmat.primitives import hashes

from portal.packaging.catalog.asn1 import (
    _DECODING_ERRORS,
    _MESSAGE_DIGEST,
    ID_AA_TIME_STAMP,
    PKCS9_COUNTERSIGNATURE,
    SPC_RFC3161_OBJID,
    SPC_SP_OPUS_INFO_OBJID,
    SZOID_CTL,
    CertificateTrustList,
    SpcLink,
    SpcSpOpusInfo,
    SpcString,
    _decoding,
    _short,
)
from portal.packaging.catalog.chain import (
    _CHAIN_DEPTH,
    _find_issuer,
    _try_load_certificate,
    certificate_signature_digest,
)
from portal.packaging.catalog.signature import (
    _INVALID_SIGNATURE,
    _attributes,
    _aware,
    _digest_matches,
    _embedded_certificates,
    _find_by_sid,
    _load_signed_data,
    _signing_time,
    _trust_list,
)

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
