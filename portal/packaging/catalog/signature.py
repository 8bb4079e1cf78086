"""The signature side of a security catalog: loading PKCS #7 signed data and the trust
list it carries, finding its signatures (each signer and the signatures nested in them),
checking the signed attributes and the signature, building the chain to a trusted
publisher (each certificate's signature verified with its issuer's key and its own
algorithm, so SHA-1 chains verify and MD5 is refused) and validating it at the signing
time, and describing any Authenticode signature (signer and chain certificates, signing
time, timestamps and SpcSpOpusInfo) unjudged as a ``SignatureSummary`` through
``summarize_signature``.

The chain to a trusted publisher is ``catalog.chain``; the unjudged description of a
signature is ``catalog.summary``.
"""

from __future__ import annotations

import contextlib
import datetime
import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass

from asn1crypto import cms, core
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

from portal.packaging.catalog.asn1 import (
    _CONTENT_TYPE,
    _DECODING_ERRORS,
    _MESSAGE_DIGEST,
    _SIGNING_TIME,
    SPC_NESTED_SIGNATURE_OBJID,
    SZOID_CATALOG_LIST,
    SZOID_CATALOG_LIST_MEMBER,
    SZOID_CATALOG_LIST_MEMBER2,
    SZOID_CTL,
    CertificateTrustList,
    _decoding,
)
from portal.packaging.catalog.chain import HASH_ALGORITHMS, _try_load_certificate
from portal.packaging.errors import PackageError

_MAX_SIGNATURES = 16
_INVALID_CATALOG = "the catalog is not a valid security catalog"
_INVALID_SIGNATURE = "the signature is not valid PKCS #7 signed data"


@dataclass(frozen=True)
class _ParsedCatalog:
    signed_data: cms.SignedData
    ctl: CertificateTrustList
    ctl_octets: bytes
    version: int  # member format: 1 or 2


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


def _digest_matches(algorithm: str, data: bytes, expected: bytes) -> bool | None:
    try:
        actual = hashlib.new(algorithm, data).digest()
    except (ValueError, TypeError):
        return None
    return hmac.compare_digest(actual, expected)
