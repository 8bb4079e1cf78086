"""Builds real, signed device update packages for tests and demos.

Everything is made the way the import expects vendors to make it: a test certificate
authority, a publisher certificate, a security catalog with the exact Windows structure,
deterministic ``.nbt`` images, the description XML and a cabinet written by cabarchive.
"""

from __future__ import annotations

import datetime
import hashlib
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from xml.sax.saxutils import escape

from asn1crypto import algos, cms, core
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
    SPC_INDIRECT_DATA_OBJID,
    SZOID_CATALOG_LIST,
    SZOID_CATALOG_LIST_MEMBER,
    SZOID_CATALOG_LIST_MEMBER2,
    SZOID_CTL,
    CatalogNameValue,
    CertificateTrustList,
    SpcIndirectDataContent,
)

PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey

# A fixed instant keeps builds reproducible; certificates default to a wide window around it.
EPOCH = datetime.datetime(2024, 1, 1, tzinfo=datetime.UTC)
_CAB_MTIME = datetime.datetime(2024, 1, 1, 12, 0, 0, tzinfo=datetime.UTC)
# makecat's flags for the File name: authenticated attribute, name and data as text.
_NAMEVALUE_FLAGS = 0x10010001


class _CatalogContentInfo(core.Sequence):
    """PKCS #7 v1.5 ContentInfo typed for a trust list: asn1crypto's ``Any`` content
    cannot carry the explicit [0] tag when building, only when parsing."""

    _fields = [
        ("content_type", cms.ContentType),
        ("content", CertificateTrustList, {"explicit": 0}),
    ]


class _CatalogSignedData(core.Sequence):
    """``cms.SignedData`` with the catalog's content type fixed, for building only."""

    _fields = [
        ("version", cms.CMSVersion),
        ("digest_algorithms", cms.DigestAlgorithms),
        ("encap_content_info", _CatalogContentInfo),
        ("certificates", cms.CertificateSet, {"implicit": 0, "optional": True}),
        ("signer_infos", cms.SignerInfos),
    ]


class _CatalogFile(core.Sequence):
    """The outer ContentInfo of a catalog file, typed for building."""

    _fields = [
        ("content_type", cms.ContentType),
        ("content", _CatalogSignedData, {"explicit": 0}),
    ]


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
) -> Signer:
    """A certificate authority: self-signed, or an intermediate when ``issuer`` is given."""
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
    chain = (issuer.certificate, *issuer.chain) if issuer else ()
    return Signer(certificate, key, chain=chain)


def make_publisher(
    ca: Signer,
    *,
    common_name: str = "Device Update Test Publisher",
    not_before: datetime.datetime = EPOCH - datetime.timedelta(days=30),
    not_after: datetime.datetime = EPOCH + datetime.timedelta(days=730),
    key_type: str = "rsa",
) -> Signer:
    """A code-signing certificate issued by ``ca``, ready to sign catalogs."""
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
    return Signer(certificate, key, chain=(ca.certificate, *ca.chain))


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


def build_catalog(
    files: Mapping[str, bytes],
    *,
    signer: Signer,
    digest: str = "sha256",
    signing_time: datetime.datetime | None = EPOCH,
    this_update: datetime.datetime = EPOCH,
) -> bytes:
    """A DER security catalog listing ``files`` (name to content), signed by ``signer``.

    ``signing_time=None`` leaves out the signingTime attribute (then thisUpdate counts).
    """
    subjects = []
    for name in sorted(files):
        file_digest = hashlib.new(digest, files[name]).digest()
        name_value = CatalogNameValue(
            {
                "tag": "File",
                "flags": _NAMEVALUE_FLAGS,
                "value": (name + "\0").encode("utf-16-le"),
            }
        )
        indirect = SpcIndirectDataContent(
            {
                "data": {"type": SPC_CAB_DATA_OBJID},
                "message_digest": {
                    "digest_algorithm": {"algorithm": digest},
                    "digest": file_digest,
                },
            }
        )
        subjects.append(
            {
                "identifier": file_digest.hex().upper().encode("utf-16-le"),
                "attributes": [
                    {"type": CAT_NAMEVALUE_OBJID, "values": [name_value]},
                    {"type": SPC_INDIRECT_DATA_OBJID, "values": [indirect]},
                ],
            }
        )
    member_oid = SZOID_CATALOG_LIST_MEMBER if digest == "sha1" else SZOID_CATALOG_LIST_MEMBER2
    ctl = CertificateTrustList(
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
    return sign_ctl(ctl, signer=signer, digest=digest, signing_time=signing_time)


def sign_ctl(
    ctl: CertificateTrustList,
    *,
    signer: Signer,
    digest: str = "sha256",
    signing_time: datetime.datetime | None = EPOCH,
) -> bytes:
    """Wrap a trust list in PKCS #7 v1.5 SignedData the way Windows' signing tools do."""
    ctl.dump()  # fills in ctl.contents, the octets the message digest covers
    attributes = [
        cms.CMSAttribute({"type": "content_type", "values": [SZOID_CTL]}),
        cms.CMSAttribute(
            {"type": "message_digest", "values": [hashlib.new(digest, ctl.contents).digest()]}
        ),
    ]
    if signing_time is not None:
        attributes.append(
            cms.CMSAttribute(
                {"type": "signing_time", "values": [cms.Time({"utc_time": signing_time})]}
            )
        )
    # DER orders a SET OF by encoding; the signature covers the attributes as a SET.
    attributes.sort(key=lambda attribute: attribute.dump())
    signed_attrs = cms.CMSAttributes(attributes)
    to_sign = b"\x31" + signed_attrs.dump()[1:]
    algorithm = HASH_ALGORITHMS[digest]()
    if isinstance(signer.key, rsa.RSAPrivateKey):
        signature = signer.key.sign(to_sign, padding.PKCS1v15(), algorithm)
        signature_algorithm = "rsassa_pkcs1v15"
    else:
        signature = signer.key.sign(to_sign, ec.ECDSA(algorithm))
        signature_algorithm = f"{digest}_ecdsa"
    signer_certificate = asn1_x509.Certificate.load(signer.certificate_der)
    signer_info = cms.SignerInfo(
        {
            "version": "v1",
            "sid": cms.SignerIdentifier(
                {
                    "issuer_and_serial_number": {
                        "issuer": signer_certificate.issuer,
                        "serial_number": signer_certificate.serial_number,
                    }
                }
            ),
            "digest_algorithm": algos.DigestAlgorithm({"algorithm": digest}),
            "signed_attrs": signed_attrs,
            "signature_algorithm": algos.SignedDigestAlgorithm({"algorithm": signature_algorithm}),
            "signature": signature,
        }
    )
    certificates = [signer_certificate] + [
        asn1_x509.Certificate.load(cert.public_bytes(Encoding.DER)) for cert in signer.chain
    ]
    signed_data = _CatalogSignedData(
        {
            "version": "v1",
            "digest_algorithms": [algos.DigestAlgorithm({"algorithm": digest})],
            # PKCS #7 v1.5: the trust list itself sits in [0], not wrapped in an OCTET STRING.
            "encap_content_info": {"content_type": SZOID_CTL, "content": ctl},
            "certificates": certificates,
            "signer_infos": [signer_info],
        }
    )
    return bytes(_CatalogFile({"content_type": "signed_data", "content": signed_data}).dump())


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
) -> TestUpdate:
    """One signed update folder: images (name to size), description and catalog."""
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
        files, signer=signer, digest=digest, signing_time=signing_time
    )
    return TestUpdate(folder, files)


def build_package(
    updates: Sequence[TestUpdate],
    *,
    path: Path | str,
    compress: bool = True,
    extra_members: Mapping[str, bytes] | None = None,
) -> Path:
    """Write the updates (and any ``extra_members``) as one cabinet; MSZIP when compressing."""
    archive = CabArchive()
    members: dict[str, bytes] = {}
    for update in updates:
        members.update(update.members)
    members.update(extra_members or {})
    for name, data in members.items():
        # Windows tools write backslashes; the reader normalises them.
        archive[name.replace("/", "\\")] = CabFile(data, mtime=_CAB_MTIME)
    path = Path(path)
    path.write_bytes(archive.save(compress=compress))
    return path
