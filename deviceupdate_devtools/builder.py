"""Builds real, signed device update packages for tests and demos.

Everything is made the way the import expects vendors to make it: a test certificate
authority, a publisher certificate, a security catalog with the exact Windows structure,
deterministic ``.nbt`` images, the description XML and a cabinet written by cabarchive.

Tooling (tests, the demo package, benchmarks): request-serving code never imports it.
"""

from __future__ import annotations

import datetime
import hashlib
import struct
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

from asn1crypto import algos, cms, core, tsp
from asn1crypto import x509 as asn1_x509
from cabarchive import CabArchive, CabFile
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from portal.packaging.catalog import (
    CAT_NAMEVALUE_OBJID,
    HASH_ALGORITHMS,
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
    cabinet_digest,
    pe_image_digest,
)

PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey

# A fixed instant keeps builds reproducible; certificates default to a wide window around it.
EPOCH = datetime.datetime(2024, 1, 1, tzinfo=datetime.UTC)
_CAB_MTIME = datetime.datetime(2024, 1, 1, 12, 0, 0, tzinfo=datetime.UTC)
# makecat's flags for the File name: authenticated attribute, name and data as text.
_NAMEVALUE_FLAGS = 0x10010001


@dataclass(frozen=True)
class Signer:
    """A certificate with its private key, and the chain to embed next to it."""

    certificate: x509.Certificate
    key: PrivateKey
    chain: tuple[x509.Certificate, ...] = ()

    @property
    def certificate_der(self) -> bytes:
        return self.certificate.public_bytes(Encoding.DER)

    @property
    def certificate_pem(self) -> bytes:
        return self.certificate.public_bytes(Encoding.PEM)


@dataclass(frozen=True)
class TestUpdate:
    """One update folder: its path in the cabinet and its files by name."""

    __test__ = False  # not a pytest test class despite the name

    folder: str
    files: dict[str, bytes] = field(default_factory=dict)

    @property
    def members(self) -> dict[str, bytes]:
        return {f"{self.folder}/{name}": data for name, data in self.files.items()}


def _new_key(key_type: str) -> PrivateKey:
    if key_type == "rsa":
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    if key_type == "ec":
        return ec.generate_private_key(ec.SECP256R1())
    raise ValueError(f"unknown key type {key_type}")


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Device Update Tests"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def make_test_ca(
    *,
    common_name: str = "Device Update Test CA",
    not_before: datetime.datetime = EPOCH - datetime.timedelta(days=365),
    not_after: datetime.datetime = EPOCH + datetime.timedelta(days=3650),
    key_type: str = "rsa",
    issuer: Signer | None = None,
    signature_hash: str = "sha256",
) -> Signer:
    """A certificate authority: self-signed, or an intermediate when ``issuer`` is given;
    ``signature_hash`` ("sha1" for Lync-era chains) is the hash its certificate is signed with."""
    key = _new_key(key_type)
    name = _name(common_name)
    signing_key = issuer.key if issuer else key
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer.certificate.subject if issuer else name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
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
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(signing_key, hashes.SHA256())
    )
    certificate = resign_certificate(certificate, signing_key, signature_hash)
    chain = (issuer.certificate, *issuer.chain) if issuer else ()
    return Signer(certificate, key, chain=chain)


def make_publisher(
    ca: Signer,
    *,
    common_name: str = "Device Update Test Publisher",
    not_before: datetime.datetime = EPOCH - datetime.timedelta(days=30),
    not_after: datetime.datetime = EPOCH + datetime.timedelta(days=730),
    key_type: str = "rsa",
    signature_hash: str = "sha256",
) -> Signer:
    """A code-signing certificate issued by ``ca`` (signed with ``signature_hash``), ready
    to sign catalogs."""
    key = _new_key(key_type)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name))
        .issuer_name(ca.certificate.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CODE_SIGNING]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.key.public_key()),
            critical=False,
        )
        .sign(ca.key, hashes.SHA256())
    )
    certificate = resign_certificate(certificate, ca.key, signature_hash)
    return Signer(certificate, key, chain=(ca.certificate, *ca.chain))


def resign_certificate(
    certificate: x509.Certificate, key: PrivateKey, digest: str
) -> x509.Certificate:
    """``certificate`` signed again with ``key`` over ``digest`` ("sha1", "md5", ...).

    cryptography's builder refuses SHA-1 and MD5, which Lync-era chains (and the refusal
    tests) need, so the to-be-signed part is re-labelled and re-signed with asn1crypto.
    """
    if digest == "sha256":
        return certificate
    parsed = asn1_x509.Certificate.load(certificate.public_bytes(Encoding.DER))
    rsa_key = isinstance(key, rsa.RSAPrivateKey)
    algorithm = algos.SignedDigestAlgorithm(
        {"algorithm": f"{digest}_rsa" if rsa_key else f"{digest}_ecdsa"}
    )
    tbs = asn1_x509.TbsCertificate.load(parsed["tbs_certificate"].dump())
    tbs["signature"] = algorithm
    to_sign = tbs.dump(force=True)
    if isinstance(key, rsa.RSAPrivateKey):
        signature = key.sign(to_sign, padding.PKCS1v15(), _legacy_hash(digest))
    else:
        signature = key.sign(to_sign, ec.ECDSA(_legacy_hash(digest)))
    resigned = asn1_x509.Certificate(
        {"tbs_certificate": tbs, "signature_algorithm": algorithm, "signature_value": signature}
    )
    return x509.load_der_x509_certificate(resigned.dump())


def _legacy_hash(digest: str) -> hashes.HashAlgorithm:
    return hashes.MD5() if digest == "md5" else HASH_ALGORITHMS[digest]()  # noqa: S303 - tests


def nbt_image(name: str, size: int) -> bytes:
    """Deterministic, incompressible bytes standing in for a software image."""
    return hashlib.shake_256(f"nbt:{name}".encode()).digest(size)


def description_xml(
    *,
    update_id: uuid.UUID | str,
    device_type: str,
    brand: str,
    model: str,
    revision: str,
    locale: str,
    update_type: str,
    version: str,
    images: Iterable[str],
    release_date: str | None = "2013-04-15",
    description: str | None = "Cumulative update",
) -> bytes:
    fields = [
        ("Id", str(update_id)),
        ("DeviceType", device_type),
        ("Brand", brand),
        ("Model", model),
        ("Revision", revision),
        ("Locale", locale),
        ("UpdateType", update_type),
        ("Version", version),
        ("ReleaseDate", release_date),
        ("Description", description),
    ]
    lines = ['<?xml version="1.0" encoding="utf-8"?>', "<DeviceUpdate>"]
    lines += [f"  <{tag}>{escape(value)}</{tag}>" for tag, value in fields if value is not None]
    lines.append("  <Images>")
    lines += [f"    <Image>{escape(image)}</Image>" for image in images]
    lines += ["  </Images>", "</DeviceUpdate>", ""]
    return "\n".join(lines).encode("utf-8")


def make_timestamp_authority(
    ca: Signer,
    *,
    common_name: str = "Device Update Test TSA",
    not_before: datetime.datetime = EPOCH - datetime.timedelta(days=365),
    not_after: datetime.datetime = EPOCH + datetime.timedelta(days=3650),
    key_type: str = "ec",
) -> Signer:
    """A timestamping certificate issued by ``ca`` (EC by default: quick to make)."""
    key = _new_key(key_type)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name))
        .issuer_name(ca.certificate.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.TIME_STAMPING]), critical=True)
        .sign(ca.key, hashes.SHA256())
    )
    return Signer(certificate, key, chain=(ca.certificate, *ca.chain))


def build_ctl(
    files: Mapping[str, bytes],
    *,
    digest: str = "sha256",
    this_update: datetime.datetime = EPOCH,
    member_kind: str | Mapping[str, str] = "flat",
    name_encoding: str = "utf-16",
    identifier_encoding: str = "hex",
    v2_companions: bool = False,
    unnamed: Iterable[str] = (),
) -> CertificateTrustList:
    """The trust list of a catalog listing ``files`` (name to content), as makecat writes it.

    ``member_kind`` ("flat", "pe", "cabinet" or "cabinet-as-cab-data", or a mapping by file
    name, "flat" when absent) is the indirect-data type: "flat" records the whole file's
    hash, "pe" the Authenticode hash of a PE image, "cabinet" the cabinet subject
    interface's hash under the spec's cabinet type, "cabinet-as-cab-data" the same hash
    under SPC_CAB_DATA, as Windows' cabinet subject interface writes it.
    ``unnamed`` lists files whose entry carries no File name (Windows looks them up by
    hash). ``name_encoding`` writes the File name as "utf-16" (with makecat's
    NUL), "utf-16-bare" (without it), "8bit" (UTF-8 bytes) or "latin-1" (8-bit, not UTF-8).
    ``identifier_encoding`` writes each entry's identifier as "hex" (upper-case, UTF-16LE)
    or "raw" (the digest bytes). ``v2_companions`` adds makecat's SHA-1 twin of every
    member of a SHA-256 catalog: its SHA-1 as identifier, no attributes.
    """
    if v2_companions and digest == "sha1":
        raise ValueError("SHA-1 twins belong to SHA-256 catalogs")
    subjects: list[dict[str, object]] = []
    unnamed = set(unnamed)
    for name in sorted(files):
        kind = member_kind if isinstance(member_kind, str) else member_kind.get(name, "flat")
        file_digest = _member_digest(files[name], kind, digest)
        name_value = CatalogNameValue(
            {"tag": "File", "flags": _NAMEVALUE_FLAGS, "value": _name_bytes(name, name_encoding)}
        )
        attributes: list[dict[str, object]] = [
            {"type": CAT_NAMEVALUE_OBJID, "values": [name_value]},
            {
                "type": SPC_INDIRECT_DATA_OBJID,
                "values": [_indirect_data(kind, digest, file_digest)],
            },
        ]
        if name in unnamed:
            attributes = attributes[1:]
        subjects.append(
            {"identifier": _identifier(file_digest, identifier_encoding), "attributes": attributes}
        )
        if v2_companions:
            sha1 = _member_digest(files[name], kind, "sha1")
            subjects.append({"identifier": _identifier(sha1, identifier_encoding)})
    member_oid = SZOID_CATALOG_LIST_MEMBER if digest == "sha1" else SZOID_CATALOG_LIST_MEMBER2
    return CertificateTrustList(
        {
            "subject_usage": [SZOID_CATALOG_LIST],
            # Windows uses a random GUID here; deriving it from the content keeps builds stable.
            "list_identifier": hashlib.md5(
                b"".join(sorted(files.values())), usedforsecurity=False
            ).digest(),
            "this_update": asn1_x509.Time({"utc_time": this_update}),
            "subject_algorithm": {"algorithm": member_oid},
            "trusted_subjects": subjects,
        }
    )


def _member_digest(data: bytes, kind: str, digest: str) -> bytes:
    if kind == "pe":
        return bytes.fromhex(pe_image_digest(data, digest))
    if kind in ("cabinet", "cabinet-as-cab-data"):
        return bytes.fromhex(cabinet_digest(data, digest))
    if kind == "flat":
        return hashlib.new(digest, data).digest()
    raise ValueError(f"unknown member kind {kind}")


def _name_bytes(name: str, encoding: str) -> bytes:
    encodings = {
        "utf-16": lambda: (name + "\0").encode("utf-16-le"),
        "utf-16-bare": lambda: name.encode("utf-16-le"),
        "8bit": lambda: name.encode("utf-8"),
        "latin-1": lambda: name.encode("latin-1"),
    }
    if encoding not in encodings:
        raise ValueError(f"unknown name encoding {encoding}")
    return encodings[encoding]()


def _identifier(digest: bytes, encoding: str) -> bytes:
    if encoding == "hex":
        return digest.hex().upper().encode("utf-16-le")
    if encoding == "raw":
        return digest
    raise ValueError(f"unknown identifier encoding {encoding}")


def _obsolete_link() -> SpcLink:
    # What makecat and signtool write where a link to the file once went.
    return SpcLink(name="file", value=SpcString(name="unicode", value="<<<Obsolete>>>"))


def _indirect_data(kind: str, digest: str, file_digest: bytes) -> SpcIndirectDataContent:
    data: dict[str, object] = {"type": SPC_CAB_DATA_OBJID}
    if kind == "cabinet":
        data = {"type": SPC_CABINET_SIP_OBJID, "value": _obsolete_link()}
    elif kind == "cabinet-as-cab-data":
        # What Windows' cabinet subject interface writes: the flat files' type, the
        # cabinet's own hash.
        data = {"type": SPC_CAB_DATA_OBJID, "value": _obsolete_link()}
    elif kind == "pe":
        image = SpcPeImageData({"flags": (), "file": _obsolete_link()})
        data = {"type": SPC_PE_IMAGE_DATA_OBJID, "value": image}
    return SpcIndirectDataContent(
        {
            "data": data,
            "message_digest": {"digest_algorithm": {"algorithm": digest}, "digest": file_digest},
        }
    )


def unsigned_catalog(ctl: CertificateTrustList) -> bytes:
    """A catalog as makecat leaves it before signing: SignedData without signers."""
    return _signed_data_file(
        version=1,
        digests=[],
        content_type=SZOID_CTL,
        content=ctl.dump(),
        wrap=False,
        certificates=[],
        signer_infos=cms.SignerInfos([]),
    )


def build_catalog(
    files: Mapping[str, bytes],
    *,
    signer: Signer,
    digest: str = "sha256",
    signing_time: datetime.datetime | None = EPOCH,
    this_update: datetime.datetime = EPOCH,
    member_kind: str | Mapping[str, str] = "flat",
    name_encoding: str = "utf-16",
    identifier_encoding: str = "hex",
    v2_companions: bool = False,
    unnamed: Iterable[str] = (),
    opus_info: tuple[str, str] | SpcSpOpusInfo | None = None,
    statement_type: bool = False,
    timestamp: Signer | None = None,
    timestamp_oid: str = SPC_RFC3161_OBJID,
    timestamp_time: datetime.datetime | None = None,
    countersignature: Signer | None = None,
) -> bytes:
    """A DER security catalog listing ``files`` (name to content), signed by ``signer``.

    ``signing_time=None`` leaves out the signingTime attribute (then thisUpdate counts).
    The trust list options are ``build_ctl``'s, the signature options ``sign_ctl``'s.
    """
    ctl = build_ctl(
        files,
        digest=digest,
        this_update=this_update,
        member_kind=member_kind,
        name_encoding=name_encoding,
        identifier_encoding=identifier_encoding,
        v2_companions=v2_companions,
        unnamed=unnamed,
    )
    return sign_ctl(
        ctl,
        signer=signer,
        digest=digest,
        signing_time=signing_time,
        opus_info=opus_info,
        statement_type=statement_type,
        timestamp=timestamp,
        timestamp_oid=timestamp_oid,
        timestamp_time=timestamp_time,
        countersignature=countersignature,
    )


def sign_ctl(
    ctl: CertificateTrustList,
    *,
    signer: Signer,
    digest: str = "sha256",
    signing_time: datetime.datetime | None = EPOCH,
    opus_info: tuple[str, str] | SpcSpOpusInfo | None = None,
    statement_type: bool = False,
    timestamp: Signer | None = None,
    timestamp_oid: str = SPC_RFC3161_OBJID,
    timestamp_time: datetime.datetime | None = None,
    countersignature: Signer | None = None,
) -> bytes:
    """Wrap a trust list in PKCS #7 v1.5 SignedData the way Windows' signing tools do.

    ``opus_info`` (program name, URL) adds SpcSpOpusInfo, ``statement_type`` the
    individual code-signing SpcStatementType; ``timestamp`` (a timestamping Signer) adds an
    RFC 3161 token under ``timestamp_oid`` made at ``timestamp_time`` (default: the
    signing time), ``countersignature`` a legacy Authenticode countersignature.
    """
    return sign_content(
        SZOID_CTL,
        ctl,
        signer=signer,
        digest=digest,
        signing_time=signing_time,
        opus_info=opus_info,
        statement_type=statement_type,
        timestamp=timestamp,
        timestamp_oid=timestamp_oid,
        timestamp_time=timestamp_time,
        countersignature=countersignature,
    )


def sign_content(
    content_type: str,
    content: core.Asn1Value,
    *,
    signer: Signer,
    digest: str = "sha256",
    wrap: bool = False,
    signing_time: datetime.datetime | None = EPOCH,
    opus_info: tuple[str, str] | SpcSpOpusInfo | None = None,
    statement_type: bool = False,
    timestamp: Signer | None = None,
    timestamp_oid: str = SPC_RFC3161_OBJID,
    timestamp_time: datetime.datetime | None = None,
    countersignature: Signer | None = None,
) -> bytes:
    """Authenticode-style SignedData over ``content`` (a trust list, or SpcIndirectData
    for a signed file), as DER.

    By default the content sits directly in [0] (PKCS #7 v1.5, as Windows writes) and the
    message digest covers its DER without tag and length; ``wrap`` puts it in an OCTET
    STRING (CMS), the digest then covering its whole DER.
    """
    content_der = content.dump()
    covered = content_der if wrap else core.Asn1Value.load(content_der).contents
    attributes = [
        cms.CMSAttribute({"type": "content_type", "values": [content_type]}),
        cms.CMSAttribute(
            {"type": "message_digest", "values": [hashlib.new(digest, covered).digest()]}
        ),
    ]
    if signing_time is not None:
        attributes.append(
            cms.CMSAttribute(
                {"type": "signing_time", "values": [cms.Time({"utc_time": signing_time})]}
            )
        )
    if opus_info is not None:
        attributes.append(
            cms.CMSAttribute({"type": SPC_SP_OPUS_INFO_OBJID, "values": [_opus(opus_info)]})
        )
    if statement_type:
        statement = SpcStatementType([SPC_INDIVIDUAL_SP_KEY_PURPOSE_OBJID])
        attributes.append(
            cms.CMSAttribute({"type": SPC_STATEMENT_TYPE_OBJID, "values": [statement]})
        )
    signer_info = _signer_info(signer, attributes, digest)
    signature = signer_info["signature"].native
    unsigned = []
    certificates = [signer.certificate, *signer.chain]
    if timestamp is not None:
        at = timestamp_time or signing_time or EPOCH
        token = _timestamp_token(signature, tsa=timestamp, digest=digest, at=at)
        unsigned.append(cms.CMSAttribute({"type": timestamp_oid, "values": [token]}))
    if countersignature is not None:
        at = timestamp_time or signing_time or EPOCH
        counter = _countersigner_info(signature, signer=countersignature, digest=digest, at=at)
        unsigned.append(cms.CMSAttribute({"type": "counter_signature", "values": [counter]}))
        # Legacy countersigners' certificates travel with the signature's own.
        certificates += [countersignature.certificate, *countersignature.chain]
    if unsigned:
        signer_info["unsigned_attrs"] = cms.CMSAttributes(unsigned)
    return _signed_data_file(
        version=3 if wrap else 1,
        digests=[digest],
        content_type=content_type,
        content=content_der,
        wrap=wrap,
        certificates=certificates,
        signer_infos=cms.SignerInfos([signer_info]),
    )


def nest_signature(
    catalog: bytes,
    *,
    signer: Signer,
    digest: str = "sha256",
    signing_time: datetime.datetime | None = EPOCH,
) -> bytes:
    """``catalog`` with one more signature over its trust list, nested in its first
    signer's unsigned attributes (``1.3.6.1.4.1.311.2.4.1``) as signtool ``/as`` does."""
    ctl = _catalog_trust_list(catalog)
    return nest_catalog(
        catalog, sign_ctl(ctl, signer=signer, digest=digest, signing_time=signing_time)
    )


def _catalog_trust_list(catalog: bytes) -> CertificateTrustList:
    """The trust list of a signed catalog, without the [0] tag it sits under."""
    content = cms.ContentInfo.load(catalog)["content"]["encap_content_info"]["content"]
    return CertificateTrustList.load(_der(0x30, content.parse(CertificateTrustList).contents))


def nest_catalog(catalog: bytes, other: bytes) -> bytes:
    """``catalog`` carrying ``other`` (a signed catalog, e.g. one osslsigncode signed, which
    cannot nest catalog signatures itself) as a nested signature of its first signer."""
    outer = cms.ContentInfo.load(catalog)["content"]
    ctl = _catalog_trust_list(catalog)
    nested = cms.ContentInfo.load(other)
    signer_infos = [cms.SignerInfo.load(info.dump()) for info in outer["signer_infos"]]
    first = signer_infos[0]
    unsigned = [cms.CMSAttribute.load(a.dump()) for a in first["unsigned_attrs"] or []]
    unsigned.append(cms.CMSAttribute({"type": SPC_NESTED_SIGNATURE_OBJID, "values": [nested]}))
    first["unsigned_attrs"] = cms.CMSAttributes(unsigned)
    certificates = [
        x509.load_der_x509_certificate(choice.chosen.dump())
        for choice in outer["certificates"] or []
    ]
    return _signed_data_file(
        version=1,
        digests=[algorithm["algorithm"].native for algorithm in outer["digest_algorithms"]],
        content_type=SZOID_CTL,
        content=ctl.dump(),
        wrap=False,
        certificates=certificates,
        signer_infos=cms.SignerInfos(signer_infos),
    )


def pe_image(payload: bytes = b"\xc3", *, pe32_plus: bool = False, overlay: bytes = b"") -> bytes:
    """A minimal PE image: headers and one .text section holding ``payload`` (1024 bytes),
    then ``overlay`` (bytes after the sections, as installers carry; any length)."""
    dos = bytearray(64)
    dos[:2] = b"MZ"
    struct.pack_into("<I", dos, 0x3C, 64)
    optional_size = 240 if pe32_plus else 224
    machine, characteristics = (0x8664, 0x0022) if pe32_plus else (0x14C, 0x0102)
    coff = struct.pack("<HHIIIHH", machine, 1, 0, 0, 0, optional_size, characteristics)
    if pe32_plus:  # magic, linker version, code sizes, entry point, code base, image base
        optional = struct.pack("<HBBIIIIIQ", 0x20B, 14, 0, 0x200, 0, 0, 0x1000, 0x1000, 1 << 32)
    else:  # PE32 adds the data base
        optional = struct.pack(
            "<HBBIIIIIII", 0x10B, 14, 0, 0x200, 0, 0, 0x1000, 0x1000, 0x2000, 0x400000
        )
    # alignments, versions, image and header sizes, checksum, subsystem, DLL characteristics
    optional += struct.pack(
        "<IIHHHHHHIIIIHH", 0x1000, 0x200, 6, 0, 0, 0, 6, 0, 0, 0x2000, 0x200, 0, 3, 0x8140
    )
    stack_heap = (0x100000, 0x1000, 0x100000, 0x1000)
    optional += struct.pack("<QQQQ" if pe32_plus else "<IIII", *stack_heap)
    optional += struct.pack("<II", 0, 16) + b"\0" * (16 * 8)  # loader flags, 16 directories
    section = struct.pack(
        "<8sIIIIIIHHI", b".text", len(payload), 0x1000, 0x200, 0x200, 0, 0, 0, 0, 0x60000020
    )
    headers = bytes(dos) + b"PE\0\0" + coff + optional + section
    return headers.ljust(0x200, b"\0") + payload.ljust(0x200, b"\0") + overlay


def cabinet_file(files: Mapping[str, bytes], *, compress: bool = True) -> bytes:
    """A small cabinet holding ``files``, as a member of an update folder."""
    archive = CabArchive()
    for name, data in files.items():
        archive[name] = CabFile(data, mtime=_CAB_MTIME)
    return bytes(archive.save(compress=compress))


def _opus(opus_info: tuple[str, str] | SpcSpOpusInfo) -> SpcSpOpusInfo:
    if isinstance(opus_info, SpcSpOpusInfo):
        opus = opus_info
    else:
        program_name, url = opus_info
        value: dict[str, object] = {}
        if program_name:
            value["program_name"] = SpcString(name="unicode", value=program_name)
        if url:
            value["more_info"] = SpcLink(name="url", value=url)
        # asn1crypto cannot encode an empty SEQUENCE it built, only one it parsed.
        opus = SpcSpOpusInfo(value) if value else SpcSpOpusInfo.load(b"\x30\x00")
    return opus


def _signer_info(signer: Signer, attributes: list[cms.CMSAttribute], digest: str) -> cms.SignerInfo:
    """A SignerInfo over ``attributes``, signed with the signer's key."""
    # DER orders a SET OF by encoding; the signature covers the attributes as a SET.
    attributes = sorted(attributes, key=lambda attribute: attribute.dump())
    signed_attrs = cms.CMSAttributes(attributes)
    to_sign = b"\x31" + signed_attrs.dump()[1:]
    algorithm = HASH_ALGORITHMS[digest]()
    if isinstance(signer.key, rsa.RSAPrivateKey):
        signature = signer.key.sign(to_sign, padding.PKCS1v15(), algorithm)
        signature_algorithm = "rsassa_pkcs1v15"
    else:
        signature = signer.key.sign(to_sign, ec.ECDSA(algorithm))
        signature_algorithm = f"{digest}_ecdsa"
    certificate = asn1_x509.Certificate.load(signer.certificate_der)
    return cms.SignerInfo(
        {
            "version": "v1",
            "sid": cms.SignerIdentifier(
                {
                    "issuer_and_serial_number": {
                        "issuer": certificate.issuer,
                        "serial_number": certificate.serial_number,
                    }
                }
            ),
            "digest_algorithm": algos.DigestAlgorithm({"algorithm": digest}),
            "signed_attrs": signed_attrs,
            "signature_algorithm": algos.SignedDigestAlgorithm({"algorithm": signature_algorithm}),
            "signature": signature,
        }
    )


def _timestamp_token(
    signature: bytes, *, tsa: Signer, digest: str, at: datetime.datetime
) -> cms.ContentInfo:
    """An RFC 3161 timestamp token over ``signature``, as a timestamping authority returns."""
    tst_info = tsp.TSTInfo(
        {
            "version": "v1",
            "policy": "2.5.29.32.0",
            "message_imprint": {
                "hash_algorithm": {"algorithm": digest},
                "hashed_message": hashlib.new(digest, signature).digest(),
            },
            # Always eight octets, so tokens over different signatures have one length.
            "serial_number": int.from_bytes(hashlib.sha256(signature).digest()[:8]) >> 2 | 1 << 61,
            "gen_time": at,
        }
    )
    tst_der = tst_info.dump()
    attributes = [
        cms.CMSAttribute({"type": "content_type", "values": ["tst_info"]}),
        cms.CMSAttribute(
            {"type": "message_digest", "values": [hashlib.new(digest, tst_der).digest()]}
        ),
        cms.CMSAttribute({"type": "signing_time", "values": [cms.Time({"utc_time": at})]}),
    ]
    token = _signed_data_file(
        version=3,
        digests=[digest],
        content_type="1.2.840.113549.1.9.16.1.4",  # id-ct-TSTInfo
        content=tst_der,
        wrap=True,
        certificates=[tsa.certificate, *tsa.chain],
        signer_infos=cms.SignerInfos([_signer_info(tsa, attributes, digest)]),
    )
    return cms.ContentInfo.load(token)


def _countersigner_info(
    signature: bytes, *, signer: Signer, digest: str, at: datetime.datetime
) -> cms.SignerInfo:
    """A PKCS #9 countersignature over ``signature``: pre-RFC 3161 Authenticode timestamps."""
    attributes = [
        cms.CMSAttribute({"type": "content_type", "values": ["data"]}),
        cms.CMSAttribute({"type": "signing_time", "values": [cms.Time({"utc_time": at})]}),
        cms.CMSAttribute(
            {"type": "message_digest", "values": [hashlib.new(digest, signature).digest()]}
        ),
    ]
    return _signer_info(signer, attributes, digest)


def _der(tag: int, contents: bytes) -> bytes:
    """One DER element with a definite length."""
    length = len(contents)
    if length < 0x80:
        return bytes([tag, length]) + contents
    size = (length.bit_length() + 7) // 8
    return bytes([tag, 0x80 | size]) + length.to_bytes(size, "big") + contents


def _signed_data_file(
    *,
    version: int,
    digests: Sequence[str],
    content_type: str,
    content: bytes,
    wrap: bool,
    certificates: Sequence[x509.Certificate],
    signer_infos: cms.SignerInfos,
) -> bytes:
    """ContentInfo(SignedData) as DER. Written element by element because asn1crypto
    cannot build an explicit [0] around content of any type, only parse one."""
    inner = core.OctetString(content).dump() if wrap else content
    encapsulated = _der(0x30, core.ObjectIdentifier(content_type).dump() + _der(0xA0, inner))
    unique: dict[bytes, None] = dict.fromkeys(c.public_bytes(Encoding.DER) for c in certificates)
    body = (
        core.Integer(version).dump()
        + cms.DigestAlgorithms([{"algorithm": name} for name in digests]).dump()
        + encapsulated
        + (_der(0xA0, b"".join(unique)) if unique else b"")
        + signer_infos.dump()
    )
    signed_data_oid = core.ObjectIdentifier("1.2.840.113549.1.7.2").dump()
    return _der(0x30, signed_data_oid + _der(0xA0, _der(0x30, body)))


def build_update(
    *,
    signer: Signer,
    device_type: str = "UCPhone",
    brand: str = "Polycom",
    model: str = "CX600",
    revision: str = "Rev-1",
    locale: str = "ENU",
    version: str = "4.0.7577.4387",
    update_type: str = "CPE",
    update_id: uuid.UUID | str = "2de8cbf6-8a1e-4bc0-9d9e-0b2b5a1c1f11",
    images: Mapping[str, int] | None = None,
    release_date: str | None = "2013-04-15",
    description: str | None = "Cumulative update",
    digest: str = "sha256",
    signing_time: datetime.datetime | None = EPOCH,
    **catalog_options: Any,
) -> TestUpdate:
    """One signed update folder: images (name to size), description and catalog.

    ``catalog_options`` go to ``build_catalog`` (member_kind, name_encoding, v2_companions,
    opus_info, statement_type, timestamp, ...).
    """
    images = dict(images) if images is not None else {f"{update_type}.nbt": 4096}
    folder = "/".join([device_type, brand, model, revision, locale, version, update_type])
    files = {name: nbt_image(f"{folder}/{name}", size) for name, size in images.items()}
    files[f"{update_type}.xml"] = description_xml(
        update_id=update_id,
        device_type=device_type,
        brand=brand,
        model=model,
        revision=revision,
        locale=locale,
        update_type=update_type,
        version=version,
        images=sorted(images),
        release_date=release_date,
        description=description,
    )
    files[f"{update_type}.cat"] = build_catalog(
        files, signer=signer, digest=digest, signing_time=signing_time, **catalog_options
    )
    return TestUpdate(folder, files)


def build_package(
    updates: Sequence[TestUpdate],
    *,
    path: Path | str,
    compress: bool = True,
    extra_members: Mapping[str, bytes] | None = None,
    signature: bytes | None = None,
    legacy_names: Mapping[str, bytes] | None = None,
) -> Path:
    """Write the updates (and any ``extra_members``) as one cabinet; MSZIP when compressing.

    ``signature`` (DER PKCS #7 bytes) is appended as an Authenticode signature laid out as
    signtool and osslsigncode do; ``legacy_names`` writes the named members' names as the
    given raw bytes, without the UTF flag, as tools using a legacy code page do.
    """
    archive = CabArchive()
    members: dict[str, bytes] = {}
    for update in updates:
        members.update(update.members)
    members.update(extra_members or {})
    for name, data in members.items():
        # Windows tools write backslashes; the reader normalises them.
        archive[name.replace("/", "\\")] = CabFile(data, mtime=_CAB_MTIME)
    cabinet = archive.save(compress=compress)
    if legacy_names:
        cabinet = rename_cabinet_members(
            cabinet,
            {name.replace("/", "\\").encode(): raw for name, raw in legacy_names.items()},
        )
    if signature is not None:
        cabinet = add_cabinet_signature(cabinet, signature)
    path = Path(path)
    path.write_bytes(cabinet)
    return path


# Editing a finished cabinet: cabarchive writes neither a header reserve nor a name without
# the UTF flag, so these helpers rewrite its output (or any one-file cabinet without a
# reserve). MS-CAB CFHEADER fields used: cbCabinet at 8, coffFiles at 16, cFolders at 26,
# cFiles at 28, flags at 30; the fixed header is 36 bytes and the CFFOLDER entries (8 bytes,
# starting with coffCabStart, the offset of the folder's data) follow it directly. A CFFILE
# entry is 16 bytes (attribs at 14) and its NUL-terminated name.
_CAB_HEADER_SIZE = 36
_CAB_FOLDER_SIZE = 8
_CAB_FILE_SIZE = 16
_CAB_FLAG_RESERVE_PRESENT = 0x0004
_CAB_ATTR_NAME_IS_UTF = 0x80
# The Authenticode record in the header reserve: marker, signature offset, padded length and
# 8 zero bytes, 20 bytes in all; the signature is zero-padded to a multiple of 8 bytes.
_CAB_SIGNATURE_MARKER = b"\0\0\x10\0"
_CAB_SIGNATURE_RESERVE = 20
_CAB_SIGNATURE_ALIGNMENT = 8


def _cab_get(data: bytes | bytearray, offset: int, size: int) -> int:
    return int.from_bytes(data[offset : offset + size], "little")


def _cab_put(data: bytearray, offset: int, size: int, value: int) -> None:
    data[offset : offset + size] = value.to_bytes(size, "little")


def _cab_plain(cabinet: bytes) -> None:
    """Refuse what these helpers cannot edit: a reserve or a split set changes the layout."""
    if cabinet[:4] != b"MSCF" or _cab_get(cabinet, 30, 2) != 0:
        raise ValueError("only a single cabinet without a header reserve can be edited")


def _cab_shift_data(cabinet: bytearray, folders_at: int, shift: int) -> None:
    """Move cbCabinet and every folder's data offset on by ``shift`` bytes."""
    _cab_put(cabinet, 8, 4, _cab_get(cabinet, 8, 4) + shift)
    for index in range(_cab_get(cabinet, 26, 2)):
        at = folders_at + index * _CAB_FOLDER_SIZE
        _cab_put(cabinet, at, 4, _cab_get(cabinet, at, 4) + shift)


def rename_cabinet_members(cabinet: bytes, names: Mapping[bytes, bytes]) -> bytes:
    """Give members new raw names (old raw name to new), clearing their UTF flag.

    The file table changes length, so the data offsets and the cabinet size move with it.
    """
    _cab_plain(cabinet)
    files_at = _cab_get(cabinet, 16, 4)
    position = files_at
    table = bytearray()
    renamed: set[bytes] = set()
    for _ in range(_cab_get(cabinet, 28, 2)):
        entry = bytearray(cabinet[position : position + _CAB_FILE_SIZE])
        end = cabinet.index(b"\0", position + _CAB_FILE_SIZE)
        name = cabinet[position + _CAB_FILE_SIZE : end]
        position = end + 1
        if name in names:
            renamed.add(name)
            name = names[name]
            entry[14] &= ~_CAB_ATTR_NAME_IS_UTF & 0xFF
        table += entry + name + b"\0"
    if missing := set(names) - renamed:
        raise ValueError(f"no member is named {sorted(missing)}")
    edited = bytearray(cabinet[:files_at]) + table + cabinet[position:]
    _cab_shift_data(edited, _CAB_HEADER_SIZE, len(table) - (position - files_at))
    return bytes(edited)


def add_cabinet_signature(cabinet: bytes, signature: bytes) -> bytes:
    """Append ``signature`` (DER PKCS #7) to a cabinet the way signtool and osslsigncode do.

    A header reserve goes in after the fixed header: its sizes (cbCFHeader 20, cbCFFolder
    and cbCFData 0), then the record pointing at the signature, which starts right after the
    cabinet's new declared end. Everything after the header moves on by 24 bytes.
    """
    _cab_plain(cabinet)
    shift = 4 + _CAB_SIGNATURE_RESERVE
    padded = signature + b"\0" * (-len(signature) % _CAB_SIGNATURE_ALIGNMENT)
    size = len(cabinet) + shift
    reserve = (
        _CAB_SIGNATURE_RESERVE.to_bytes(2, "little")
        + b"\0\0"  # no per-folder or per-block reserve
        + _CAB_SIGNATURE_MARKER
        + size.to_bytes(4, "little")
        + len(padded).to_bytes(4, "little")
        + b"\0" * 8
    )
    edited = bytearray(cabinet[:_CAB_HEADER_SIZE]) + reserve + cabinet[_CAB_HEADER_SIZE:]
    _cab_put(edited, 16, 4, _cab_get(edited, 16, 4) + shift)  # coffFiles
    _cab_put(edited, 30, 2, _CAB_FLAG_RESERVE_PRESENT)
    _cab_shift_data(edited, _CAB_HEADER_SIZE + shift, shift)
    return bytes(edited) + padded
