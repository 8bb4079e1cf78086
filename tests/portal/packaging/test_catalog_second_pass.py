"""Real catalogs, second pass: members looked up by hash (unnamed entries, V2 twins),
certificate chains signed with SHA-1 (and refused with MD5), unsigned catalogs, nested
signatures, and the PE and cabinet hashes checked against osslsigncode."""

from __future__ import annotations

import datetime
import hashlib
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from asn1crypto import cms
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ed25519
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat
from cryptography.x509.oid import NameOID

from deviceupdate_devtools import builder
from portal.packaging.cabinet import read_cabinet, read_cabinet_signature
from portal.packaging.catalog import (
    NOT_SIGNED,
    SPC_CAB_DATA_OBJID,
    CatalogMember,
    MemberCheck,
    SpcIndirectDataContent,
    cabinet_digest,
    inspect_catalog,
    pe_image_digest,
    summarize_signature,
    verify_catalog,
)
from portal.packaging.errors import PackageError

Tool = Callable[[str], str]
EPOCH = builder.EPOCH
SIGNER = "CN=Device Update Test Publisher,O=Device Update Tests"
CA = "CN=Device Update Test CA,O=Device Update Tests"
SHA1_WARNING = "the catalog uses SHA-1; ask the vendor for a SHA-256 catalog"


@pytest.fixture(scope="module")
def sha1_ca() -> builder.Signer:
    """A Lync-era authority: its certificate and its publisher's are signed with SHA-1."""
    return builder.make_test_ca(common_name="Lync Era CA", signature_hash="sha1")


@pytest.fixture(scope="module")
def sha1_publisher(sha1_ca: builder.Signer) -> builder.Signer:
    return builder.make_publisher(sha1_ca, common_name="Lync Era Publisher", signature_hash="sha1")


def folder(directory: Path, files: dict[str, bytes]) -> dict[str, Path]:
    directory.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        (directory / name).write_bytes(data)
    return {name: directory / name for name in files}


def images() -> dict[str, bytes]:
    return {"CPE.nbt": builder.nbt_image("CPE.nbt", 3000), "CPE.xml": b"<DeviceUpdate/>"}


def refusal(
    catalog: bytes, paths: dict[str, Path], trusted: list[bytes], *, refuse_sha1: bool = False
) -> str:
    with pytest.raises(PackageError) as caught:
        verify_catalog(catalog, files=paths, trusted_publishers=trusted, refuse_sha1=refuse_sha1)
    inspection = inspect_catalog(
        catalog, files=paths, trusted_publishers=trusted, refuse_sha1=refuse_sha1
    )
    assert (inspection.accepted, inspection.reason) == (False, caught.value.message)
    return caught.value.message


def run(*command: str) -> str:
    completed = subprocess.run(command, capture_output=True, text=True, check=False)
    assert completed.returncode == 0, completed.stdout + completed.stderr
    return completed.stdout


def signer_files(directory: Path, signer: builder.Signer, name: str) -> tuple[str, str]:
    certs = directory / f"{name}.pem"
    certs.write_bytes(
        signer.certificate_pem + b"".join(c.public_bytes(Encoding.PEM) for c in signer.chain)
    )
    key = directory / f"{name}.key"
    key.write_bytes(signer.key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()))
    return str(certs), str(key)


# ----------------------------------------------------------- point 1: lookup by hash


def test_entries_without_a_name_are_matched_by_hash(
    tmp_path: Path, ca: builder.Signer, publisher: builder.Signer
) -> None:
    files = {**images(), "b.nbt": b"second image"}
    catalog = builder.build_catalog(files, signer=publisher, unnamed=["CPE.nbt", "b.nbt"])
    paths = folder(tmp_path, files)

    result = verify_catalog(catalog, files=paths, trusted_publishers=[ca.certificate_der])
    inspection = inspect_catalog(catalog, files=paths, trusted_publishers=[ca.certificate_der])

    nbt = hashlib.sha256(files["CPE.nbt"]).hexdigest()
    second = hashlib.sha256(b"second image").hexdigest()
    assert result.members == (
        CatalogMember(None, "sha256", nbt, "flat"),
        CatalogMember("CPE.xml", "sha256", hashlib.sha256(b"<DeviceUpdate/>").hexdigest()),
        CatalogMember(None, "sha256", second, "flat"),
    )
    assert inspection.matched == ("CPE.nbt", "CPE.xml", "b.nbt")
    assert inspection.checks == (
        MemberCheck("CPE.nbt", f"SHA256 {nbt}", "flat", "sha256", "matched"),
        MemberCheck("CPE.xml", "CPE.xml", "flat", "sha256", "matched"),
        MemberCheck("b.nbt", f"SHA256 {second}", "flat", "sha256", "matched"),
    )
    assert (inspection.unmatched_entries, inspection.warnings) == ((), ())


def test_an_unnamed_entry_matching_no_file_is_unlisted_and_reported_not_refused(
    tmp_path: Path, ca: builder.Signer, publisher: builder.Signer
) -> None:
    listed = {**images(), "old.nbt": b"an image this folder does not ship"}
    catalog = builder.build_catalog(listed, signer=publisher, unnamed=["old.nbt"])
    paths = folder(tmp_path, images())

    result = verify_catalog(catalog, files=paths, trusted_publishers=[ca.certificate_der])
    inspection = inspect_catalog(catalog, files=paths, trusted_publishers=[ca.certificate_der])

    label = f"SHA256 {hashlib.sha256(listed['old.nbt']).hexdigest()}"
    assert len(result.members) == 3
    assert (inspection.accepted, inspection.missing, inspection.unlisted) == (True, (), ())
    assert inspection.unmatched_entries == (label,)
    assert inspection.checks[-1] == MemberCheck(None, label, "flat", "sha256", "unlisted")
    assert inspection.warnings == (
        "1 unnamed catalog entries match no file (reported, not refused)",
    )


def test_a_file_whose_hash_no_entry_holds_is_refused(
    tmp_path: Path, ca: builder.Signer, publisher: builder.Signer
) -> None:
    catalog = builder.build_catalog(images(), signer=publisher, unnamed=["CPE.nbt"])
    paths = folder(tmp_path, {**images(), "CPE.nbt": b"another image"})

    message = refusal(catalog, paths, [ca.certificate_der])

    assert message == "CPE.nbt: the file is not listed in the security catalog"


def test_a_named_entry_must_match_the_file_of_its_name(
    tmp_path: Path, ca: builder.Signer, publisher: builder.Signer
) -> None:
    # b.nbt's bytes are listed (unnamed), but its named entry says a.nbt holds other bytes.
    listed = {"a.nbt": b"first", "b.nbt": b"second"}
    catalog = builder.build_catalog(listed, signer=publisher, unnamed=["b.nbt"])
    paths = folder(tmp_path, {"a.nbt": b"second", "b.nbt": b"second"})

    message = refusal(catalog, paths, [ca.certificate_der])

    assert message == "a.nbt: the file's hash does not match the security catalog"


def test_a_named_entry_without_its_file_is_missing(
    tmp_path: Path, ca: builder.Signer, publisher: builder.Signer
) -> None:
    catalog = builder.build_catalog(images(), signer=publisher, unnamed=["CPE.xml"])
    paths = folder(tmp_path, {"CPE.xml": b"<DeviceUpdate/>"})

    message = refusal(catalog, paths, [ca.certificate_der])

    assert message == (
        "CPE.nbt: the security catalog lists a file that is missing from the update folder"
    )


def test_a_v2_catalog_with_unnamed_entries_and_twins_is_accepted(
    tmp_path: Path, ca: builder.Signer, publisher: builder.Signer
) -> None:
    files = {**images(), "tool.exe": builder.pe_image(overlay=b"xyz")}
    catalog = builder.build_catalog(
        files,
        signer=publisher,
        member_kind={"tool.exe": "pe"},
        unnamed=["tool.exe", "CPE.nbt"],
        v2_companions=True,
    )
    paths = folder(tmp_path, files)

    inspection = inspect_catalog(catalog, files=paths, trusted_publishers=[ca.certificate_der])

    assert (inspection.accepted, inspection.catalog_version) == (True, 2)
    assert inspection.matched == ("CPE.nbt", "CPE.xml", "tool.exe")
    assert [c.file for c in inspection.companions] == ["CPE.nbt", "CPE.xml", "tool.exe"]
    assert inspection.unmatched_entries == ()


# ------------------------------------------------------------ point 2: SHA-1 chains


def test_a_chain_signed_with_sha1_verifies_with_the_sha1_warning(
    tmp_path: Path, sha1_ca: builder.Signer, sha1_publisher: builder.Signer
) -> None:
    files = images()
    catalog = builder.build_catalog(files, signer=sha1_publisher)  # a SHA-256 signature
    paths = folder(tmp_path, files)

    result = verify_catalog(catalog, files=paths, trusted_publishers=[sha1_ca.certificate_der])
    refused = refusal(catalog, paths, [sha1_ca.certificate_der], refuse_sha1=True)

    assert result.signer_subject == "CN=Lync Era Publisher,O=Device Update Tests"
    assert (result.digest_algorithm, result.warnings) == ("sha256", (SHA1_WARNING,))
    assert refused == "the catalog uses SHA-1, which the settings refuse"


def test_a_certificate_signed_with_md5_is_refused_naming_the_algorithm(
    tmp_path: Path, ca: builder.Signer
) -> None:
    md5 = builder.make_publisher(ca, common_name="MD5 Publisher")
    md5 = builder.Signer(
        builder.resign_certificate(md5.certificate, ca.key, "md5"), md5.key, md5.chain
    )
    catalog = builder.build_catalog(images(), signer=md5)

    message = refusal(catalog, folder(tmp_path, images()), [ca.certificate_der])

    assert message == (
        "certificate CN=MD5 Publisher,O=Device Update Tests is signed with MD5 (md5_rsa), "
        "which is refused"
    )


def test_a_forged_certificate_signature_is_named(tmp_path: Path, ca: builder.Signer) -> None:
    forger = builder.make_test_ca(common_name="Forger")
    signer = builder.make_publisher(ca, common_name="Forged Publisher")
    # Same issuer name and key identifier, but the bytes were signed by another key.
    forged = builder.resign_certificate(signer.certificate, forger.key, "sha1")
    catalog = builder.build_catalog(
        images(), signer=builder.Signer(forged, signer.key, signer.chain)
    )

    message = refusal(catalog, folder(tmp_path, images()), [ca.certificate_der])

    assert message == (
        "the signature of certificate CN=Forged Publisher,O=Device Update Tests by "
        f"{CA} is not valid"
    )


def test_a_certificate_invalid_at_signing_time_is_named_not_untrusted(
    tmp_path: Path, sha1_ca: builder.Signer
) -> None:
    late = builder.make_publisher(
        sha1_ca,
        common_name="Late Publisher",
        signature_hash="sha1",
        not_before=EPOCH + datetime.timedelta(days=1),
    )
    catalog = builder.build_catalog(images(), signer=late)

    message = refusal(catalog, folder(tmp_path, images()), [sha1_ca.certificate_der])

    assert message.startswith(
        "certificate CN=Late Publisher,O=Device Update Tests was not valid at the catalog's "
        "signing time 2024-01-01T00:00:00+00:00"
    )


def test_only_a_missing_trusted_issuer_does_not_chain(
    tmp_path: Path, sha1_publisher: builder.Signer, ca: builder.Signer
) -> None:
    catalog = builder.build_catalog(images(), signer=sha1_publisher)

    message = refusal(catalog, folder(tmp_path, images()), [ca.certificate_der])

    assert message == (
        "the catalog's signer does not chain to a trusted publisher "
        "(CN=Lync Era Publisher,O=Device Update Tests)"
    )


# ------------------------------------------------------------- point 3: unsigned


def test_an_unsigned_catalog_says_so_and_is_refused(tmp_path: Path, ca: builder.Signer) -> None:
    catalog = builder.unsigned_catalog(builder.build_ctl(images()))
    paths = folder(tmp_path, images())

    message = refusal(catalog, paths, [ca.certificate_der])
    inspection = inspect_catalog(catalog, files=paths, trusted_publishers=[ca.certificate_der])

    assert message == NOT_SIGNED == "the catalog is not signed"
    assert inspection.unsigned is True
    assert inspection.matched == ("CPE.nbt", "CPE.xml")


# ----------------------------------------------------- point 4: how files are hashed


def test_an_unsigned_pe_image_is_hashed_zero_padded_to_8_bytes() -> None:
    image = builder.pe_image(overlay=b"abc")  # 1027 bytes

    padded = image + b"\0" * 5
    assert len(image) % 8 == 3
    assert pe_image_digest(image) == pe_image_digest(padded)
    assert pe_image_digest(image) != hashlib.sha256(image[:88] + image[92:]).hexdigest()


def test_a_cabinet_member_is_hashed_without_its_reserved_header_field() -> None:
    cabinet = builder.cabinet_file({"readme.txt": b"read me"})
    other_reserved = cabinet[:4] + b"\x01\x02\x03\x04" + cabinet[8:]

    assert cabinet_digest(cabinet) == hashlib.sha256(cabinet[:4] + cabinet[8:]).hexdigest()
    assert cabinet_digest(other_reserved) == cabinet_digest(cabinet)
    with pytest.raises(ValueError, match="no MSCF header"):
        cabinet_digest(b"PK\x03\x04 not a cabinet at all, but long enough to read" * 2)


def test_a_file_listed_as_a_cabinet_that_is_not_one_is_refused(
    tmp_path: Path, ca: builder.Signer, publisher: builder.Signer
) -> None:
    catalog = builder.build_catalog(
        {"docs.cab": builder.cabinet_file({"a": b"a"})}, signer=publisher, member_kind="cabinet"
    )
    paths = folder(tmp_path, {"docs.cab": b"not a cabinet" * 8})

    message = refusal(catalog, paths, [ca.certificate_der])

    assert message == (
        "docs.cab: the catalog lists the file as a cabinet, but it is not one (no MSCF header)"
    )


def test_osslsigncode_finds_pe_and_cabinet_members_in_the_catalog_by_the_same_hash(
    tmp_path: Path,
    sha1_ca: builder.Signer,
    sha1_publisher: builder.Signer,
    debian_tool: Tool,
) -> None:
    """osslsigncode computes each file's hash itself (its cabinet and PE code, not ours)
    and looks it up in the catalog: it finds the padded PE, the unsigned and the signed
    cabinet, and a SHA-1 chain it verifies."""
    osslsigncode = debian_tool("osslsigncode")
    certs, key = signer_files(tmp_path, sha1_publisher, "publisher")
    ca_file = tmp_path / "ca.pem"
    ca_file.write_bytes(sha1_ca.certificate_pem)
    unsigned_cab = tmp_path / "docs.cab"
    unsigned_cab.write_bytes(builder.cabinet_file({"readme.txt": b"read me"}))
    signed_cab = tmp_path / "signed.cab"
    run(osslsigncode, "sign", "-h", "sha1", "-certs", certs, "-key", key, "-time", "1704067200",
        "-in", str(unsigned_cab), "-out", str(signed_cab))  # fmt: skip
    image = tmp_path / "tool.exe"
    image.write_bytes(builder.pe_image(b"\x31\xc0\xc3", overlay=b"abc"))
    files = {p.name: p.read_bytes() for p in (unsigned_cab, signed_cab, image)}
    catalog = tmp_path / "CPE.cat"
    catalog.write_bytes(
        builder.build_catalog(
            files,
            signer=sha1_publisher,
            member_kind={"docs.cab": "cabinet", "signed.cab": "cabinet", "tool.exe": "pe"},
            unnamed=["signed.cab"],
        )
    )

    for path in (unsigned_cab, signed_cab, image):
        output = run(osslsigncode, "verify", "-in", str(path), "-catalog", str(catalog),
                     "-CAfile", str(ca_file), "-time", "1704067200")  # fmt: skip
        digest = pe_image_digest(path) if path.suffix == ".exe" else cabinet_digest(path)
        assert f"Calculated message digest : {digest.upper()}" in output
        assert "File is signed in catalog" in output
    inspection = inspect_catalog(
        catalog.read_bytes(),
        files={p.name: p for p in (unsigned_cab, signed_cab, image)},
        trusted_publishers=[sha1_ca.certificate_der],
    )
    assert (inspection.accepted, inspection.warnings) == (True, (SHA1_WARNING,))
    assert [(c.file, c.kind) for c in inspection.checks] == [
        ("docs.cab", "cabinet"),
        ("signed.cab", "cabinet"),
        ("tool.exe", "pe"),
    ]


# ------------------------------------------------------------ point 5: nested signatures


def test_nested_signatures_are_each_reported_and_any_valid_one_is_used(
    tmp_path: Path, ca: builder.Signer, publisher: builder.Signer, sha1_publisher: builder.Signer
) -> None:
    files = images()
    catalog = builder.nest_signature(
        builder.build_catalog(files, signer=sha1_publisher, digest="sha1"),
        signer=publisher,
        digest="sha256",
    )
    paths = folder(tmp_path, files)

    result = verify_catalog(catalog, files=paths, trusted_publishers=[ca.certificate_der])
    inspection = inspect_catalog(catalog, files=paths, trusted_publishers=[ca.certificate_der])

    assert (result.signer_subject, result.signature_used) == (SIGNER, 1)
    assert [(s.signer.subject if s.signer else "", s.signature_digest, s.nested)
            for s in inspection.signatures] == [
        ("CN=Lync Era Publisher,O=Device Update Tests", "sha1", False),
        (SIGNER, "sha256", True),
    ]  # fmt: skip
    assert [c.subject for c in inspection.signatures[1].chain] == [SIGNER, CA]
    assert inspection.signature_used == 1
    # The catalog's members are SHA-1 hashes: the warning stays, whichever signer is used.
    assert inspection.warnings == (
        f"the catalog has 2 signatures; signature 2 (nested, {SIGNER}) was used",
        SHA1_WARNING,
    )


def test_when_no_signature_is_valid_each_reason_is_named(
    tmp_path: Path, ca: builder.Signer, publisher: builder.Signer, sha1_publisher: builder.Signer
) -> None:
    catalog = builder.nest_signature(
        builder.build_catalog(images(), signer=sha1_publisher), signer=publisher
    )

    other = refusal(
        catalog, folder(tmp_path, images()), [builder.make_test_ca(key_type="ec").certificate_der]
    )

    assert other == (
        "none of the catalog's 2 signatures is valid (signature 1: the catalog's signer does "
        "not chain to a trusted publisher (CN=Lync Era Publisher,O=Device Update Tests); "
        f"signature 2: the catalog's signer does not chain to a trusted publisher ({SIGNER}))"
    )


def test_a_nested_signature_over_another_trust_list_does_not_count(
    tmp_path: Path,
    ca: builder.Signer,
    publisher: builder.Signer,
    sha1_ca: builder.Signer,
    sha1_publisher: builder.Signer,
) -> None:
    files = images()
    other_list = builder.build_catalog({"evil.nbt": b"evil"}, signer=publisher)
    catalog = builder.nest_catalog(builder.build_catalog(files, signer=sha1_publisher), other_list)

    message = refusal(catalog, folder(tmp_path, files), [ca.certificate_der])

    assert message == (
        "none of the catalog's 2 signatures is valid (signature 1: the catalog's signer does "
        "not chain to a trusted publisher (CN=Lync Era Publisher,O=Device Update Tests); "
        "signature 2: the nested signature signs another trust list than the catalog's)"
    )


def test_osslsigncode_signatures_nested_in_one_catalog_verify_both_ways(
    tmp_path: Path,
    sha1_ca: builder.Signer,
    sha1_publisher: builder.Signer,
    debian_tool: Tool,
) -> None:
    """osslsigncode signs the same trust list with SHA-1 and with SHA-256 (it cannot nest
    catalog signatures itself: "Unsupported nesting"); the SHA-256 one is nested in the
    SHA-1 one, and osslsigncode then verifies both signatures of the result."""
    osslsigncode = debian_tool("osslsigncode")
    second = builder.make_publisher(sha1_ca, common_name="Second Publisher")
    files = images()
    unsigned = tmp_path / "unsigned.cat"
    unsigned.write_bytes(builder.unsigned_catalog(builder.build_ctl(files)))
    signed: dict[str, Path] = {}
    for digest, signer in (("sha1", sha1_publisher), ("sha256", second)):
        certs, key = signer_files(tmp_path, signer, digest)
        signed[digest] = tmp_path / f"{digest}.cat"
        run(osslsigncode, "sign", "-h", digest, "-certs", certs, "-key", key,
            "-time", "1704067200", "-in", str(unsigned), "-out", str(signed[digest]))  # fmt: skip
    nested = tmp_path / "CPE.cat"
    nested.write_bytes(
        builder.nest_catalog(signed["sha1"].read_bytes(), signed["sha256"].read_bytes())
    )
    ca_file = tmp_path / "ca.pem"
    ca_file.write_bytes(sha1_ca.certificate_pem)

    output = run(osslsigncode, "verify", "-in", str(nested), "-CAfile", str(ca_file),
                 "-time", "1704067200")  # fmt: skip
    paths = folder(tmp_path / "folder", files)
    accepted = inspect_catalog(
        nested.read_bytes(), files=paths, trusted_publishers=[sha1_ca.certificate_der]
    )
    strict = inspect_catalog(
        nested.read_bytes(),
        files=paths,
        trusted_publishers=[sha1_ca.certificate_der],
        refuse_sha1=True,
    )

    assert "Number of verified signatures: 2" in output
    assert [s.signature_digest for s in accepted.signatures] == ["sha1", "sha256"]
    assert (accepted.accepted, accepted.signature_used) == (True, 1)
    # The SHA-256 signature has no SHA-1 below its root: the strict setting accepts it.
    assert (strict.accepted, strict.reason, strict.signature_used) == (True, "", 1)


def test_a_cabinet_another_tool_signed_in_2017_carries_the_hash_we_compute() -> None:
    """gcab's signed test cabinet (see data/SOURCES.md): its signature's digest was
    computed by the tool that signed it, with SHA-1, over the signed-cabinet layout."""
    path = Path(__file__).parent / "data" / "gcab-test-signed.cab"
    signature = read_cabinet_signature(read_cabinet(path))
    assert signature is not None
    content = cms.ContentInfo.load(signature)["content"]["encap_content_info"]["content"]
    indirect = content.parse(SpcIndirectDataContent)
    algorithm = indirect["message_digest"]["digest_algorithm"]["algorithm"].native
    signed_digest = indirect["message_digest"]["digest"].native.hex()

    assert (algorithm, indirect["data"]["type"].dotted) == ("sha1", SPC_CAB_DATA_OBJID)
    assert (
        cabinet_digest(path, "sha1") == signed_digest == "1b61dba14d36350d609afd35a21afad0cd72849d"
    )
    summary = summarize_signature(signature)
    assert summary.signer is not None
    assert summary.signer.subject == "O=Linux Vendor Firmware Project,CN=LVFS CA"


def test_a_certificate_signed_with_an_unknown_algorithm_is_refused_naming_it(
    tmp_path: Path, publisher: builder.Signer
) -> None:
    key = ed25519.Ed25519PrivateKey.generate()
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Edwards CA")])
    edwards = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(EPOCH - datetime.timedelta(days=1))
        .not_valid_after(EPOCH + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, None)
    )
    signer_certificate = (
        x509.CertificateBuilder()
        .subject_name(publisher.certificate.subject)
        .issuer_name(name)
        .public_key(publisher.key.public_key())
        .serial_number(2)
        .not_valid_before(EPOCH - datetime.timedelta(days=1))
        .not_valid_after(EPOCH + datetime.timedelta(days=1))
        .sign(key, None)
    )
    signer = builder.Signer(signer_certificate, publisher.key, (edwards,))
    catalog = builder.build_catalog(images(), signer=signer)

    message = refusal(catalog, folder(tmp_path, images()), [edwards.public_bytes(Encoding.DER)])

    assert message == (
        f"certificate {SIGNER} is signed with ed25519, an algorithm that is not supported"
    )


def test_more_than_16_signatures_are_refused(
    tmp_path: Path, ca: builder.Signer, publisher: builder.Signer
) -> None:
    catalog = builder.build_catalog(images(), signer=publisher)
    for _ in range(16):
        catalog = builder.nest_signature(catalog, signer=publisher)

    message = refusal(catalog, folder(tmp_path, images()), [ca.certificate_der])

    assert message == "the catalog has 17 signatures, more than the 16 accepted"


@pytest.mark.parametrize("unnamed", [[], ["docs.cab"]], ids=["named", "unnamed"])
def test_a_cabinet_hashed_by_the_cabinet_interface_under_the_flat_files_type_matches(
    tmp_path: Path, ca: builder.Signer, publisher: builder.Signer, unnamed: list[str]
) -> None:
    """Windows' cabinet subject interface writes SPC_CAB_DATA, the flat files' type, with
    the cabinet's own hash: such an entry matches its cabinet, named or not."""
    cabinet = builder.cabinet_file({"readme.txt": b"read me"})
    files = {**images(), "docs.cab": cabinet}
    catalog = builder.build_catalog(
        files, signer=publisher, member_kind={"docs.cab": "cabinet-as-cab-data"}, unnamed=unnamed
    )
    paths = folder(tmp_path, files)

    result = verify_catalog(catalog, files=paths, trusted_publishers=[ca.certificate_der])
    inspection = inspect_catalog(catalog, files=paths, trusted_publishers=[ca.certificate_der])

    digest = cabinet_digest(cabinet)
    assert digest != hashlib.sha256(cabinet).hexdigest()
    assert CatalogMember(None if unnamed else "docs.cab", "sha256", digest, "flat") in (
        result.members
    )
    assert inspection.matched == ("CPE.nbt", "CPE.xml", "docs.cab")
    assert (inspection.accepted, inspection.unmatched_entries) == (True, ())


def test_a_flat_entry_whose_hash_is_neither_the_files_nor_its_cabinet_hash_is_refused(
    tmp_path: Path, ca: builder.Signer, publisher: builder.Signer
) -> None:
    listed = {**images(), "docs.cab": builder.cabinet_file({"readme.txt": b"read me"})}
    catalog = builder.build_catalog(
        listed, signer=publisher, member_kind={"docs.cab": "cabinet-as-cab-data"}
    )
    shipped = {**images(), "docs.cab": builder.cabinet_file({"readme.txt": b"changed"})}
    paths = folder(tmp_path, shipped)

    message = refusal(catalog, paths, [ca.certificate_der])

    assert message == "docs.cab: the file's hash does not match the security catalog"
