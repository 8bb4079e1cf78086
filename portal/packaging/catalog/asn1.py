"""The ASN.1 vocabulary of security catalogs and Authenticode signatures: the object
identifiers, the asn1crypto declarations of the certificate trust list (CTL) and of
Microsoft's SPC structures, and the helpers that turn asn1crypto's lazy decoding errors
into one short refusal line. It imports nothing else from the package.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from asn1crypto import algos, core
from asn1crypto import x509 as asn1_x509

from portal.packaging.errors import PackageError

SZOID_CTL = "1.3.6.1.4.1.311.10.1"
SZOID_CATALOG_LIST = "1.3.6.1.4.1.311.12.1.1"
SZOID_CATALOG_LIST_MEMBER = "1.3.6.1.4.1.311.12.1.2"  # v1 catalogs (SHA-1 era)
SZOID_CATALOG_LIST_MEMBER2 = "1.3.6.1.4.1.311.12.1.3"  # v2 catalogs (SHA-256)
CAT_NAMEVALUE_OBJID = "1.3.6.1.4.1.311.12.2.1"
SPC_INDIRECT_DATA_OBJID = "1.3.6.1.4.1.311.2.1.4"
SPC_CAB_DATA_OBJID = "1.3.6.1.4.1.311.2.1.25"  # the indirect-data type for flat files
# The cabinet subject interface's type: the cabinet hashed without its reserved header field.
SPC_CABINET_SIP_OBJID = "1.3.6.1.4.1.311.2.1.28"
SPC_PE_IMAGE_DATA_OBJID = "1.3.6.1.4.1.311.2.1.15"  # the Authenticode hash of a PE image
SPC_SP_OPUS_INFO_OBJID = "1.3.6.1.4.1.311.2.1.12"
SPC_STATEMENT_TYPE_OBJID = "1.3.6.1.4.1.311.2.1.11"
SPC_INDIVIDUAL_SP_KEY_PURPOSE_OBJID = "1.3.6.1.4.1.311.2.1.21"
SPC_NESTED_SIGNATURE_OBJID = "1.3.6.1.4.1.311.2.4.1"  # more signatures, unsigned attribute
SPC_RFC3161_OBJID = "1.3.6.1.4.1.311.3.3.1"  # Microsoft's RFC 3161 timestamp attribute
ID_AA_TIME_STAMP = "1.2.840.113549.1.9.16.2.14"  # the standard one (RFC 3161)
PKCS9_COUNTERSIGNATURE = "1.2.840.113549.1.9.6"  # legacy Authenticode timestamps
_CONTENT_TYPE = "1.2.840.113549.1.9.3"
_MESSAGE_DIGEST = "1.2.840.113549.1.9.4"
_SIGNING_TIME = "1.2.840.113549.1.9.5"
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


# -------------------------------------------------------------------- decoding errors


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
