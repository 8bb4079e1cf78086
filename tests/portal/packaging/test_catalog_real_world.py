"""Catalogs as Windows' makecat/signtool and osslsigncode write them: publisher information,
timestamps, member kinds and name encodings, version-2 SHA-1 twins, and their inspection."""

from __future__ import annotations

import dataclasses
import datetime
import hashlib
import struct
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from asn1crypto import cms, core
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat

from deviceupdate_devtools import builder
from portal.packaging.catalog import (
    SPC_INDIRECT_DATA_OBJID,
    SZOID_CTL,
    CatalogCompanion,
    CatalogMember,
    CertificateTrustList,
    MemberCheck,
    SpcIndirectDataContent,
    SpcLink,
    SpcSpOpusInfo,
    SpcString,
    TimestampInfo,
    TrustedSubject,
    TrustedSubjects,
    inspect_catalog,
    pe_image_digest,
    summarize_signature,
    verify_catalog,
)
from portal.packaging.errors import PackageError

UTC = datetime.UTC
Tool = Callable[[str], str]
SIGNER = "CN=Device Update Test Publisher,O=Device Update Tests"
CA = "CN=Device Update Test CA,O=Device Update Tests"
TSA = "CN=Device Update Test TSA,O=Device Update Tests"
EPOCH = builder.EPOCH
NO_FOLDER = "no update folder was given: the member files were not compared"


@pytest.fixture(scope="module")
def tsa(ca: builder.Signer) -> builder.Signer:
    return builder.make_timestamp_authority(ca)


def tiny_pe(payload: bytes = b"\xc3", *, pe32_plus: bool = False) -> bytes:
    """A minimal PE image (1024 bytes): headers and one .text section holding ``payload``."""
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
    assert len(optional) == optional_size
    section = struct.pack(
        "<8sIIIIIIHHI", b".text", len(payload), 0x1000, 0x200, 0x200, 0, 0, 0, 0, 0x60000020
    )
    headers = bytes(dos) + b"PE\0\0" + coff + optional + section
    return headers.ljust(0x200, b"\0") + payload.ljust(0x200, b"\0")


def with_certificate_table(image: bytes, blob: bytes, *, checksum: int = 0x1234ABCD) -> bytes:
    """``image`` as signtool leaves it: padded, a certificate table appended, the data
    directory pointing at it and the checksum recomputed (here: any value)."""
    padded = image + b"\0" * (-len(image) % 8)
    table = struct.pack("<IHH", 8 + len(blob), 0x0200, 0x0002) + blob
    table += b"\0" * (-len(table) % 8)
    signed = bytearray(padded + table)
    optional = 64 + 24
    struct.pack_into("<I", signed, optional + 64, checksum)
    struct.pack_into("<II", signed, optional + 96 + 4 * 8, len(padded), len(table))
    return bytes(signed)


def write_folder(directory: Path, files: dict[str, bytes]) -> dict[str, Path]:
    directory.mkdir(parents=True, exist_ok=True)
    paths = {}
    for name, data in files.items():
        (directory / name).write_bytes(data)
        paths[name] = directory / name
    return paths


def images() -> dict[str, bytes]:
    return {"CPE.nbt": builder.nbt_image("CPE.nbt", 3000), "CPE.xml": b"<DeviceUpdate/>"}


def sha1(data: bytes) -> str:
    return hashlib.sha1(data, usedforsecurity=False).hexdigest()


def refusal_message(catalog: bytes, paths: dict[str, Path], trusted: list[bytes]) -> str:
    with pytest.raises(PackageError) as caught:
        verify_catalog(catalog, files=paths, trusted_publishers=trusted, catalog_name="CPE.cat")
    return caught.value.message


# ----------------------------------------------------------------- signer attributes


def test_publisher_information_and_statement_type_are_accepted_and_reported(
    tmp_path: Path, ca: builder.Signer, publisher: builder.Signer
) -> None:
    files = images()
    catalog = builder.build_catalog(
        files,
        signer=publisher,
        opus_info=("Device Update Firmware", "https://vendor.example/updates"),
        statement_type=True,
    )
    paths = write_folder(tmp_path, files)

    result = verify_catalog(catalog, files=paths, trusted_publishers=[ca.certificate_der])
    signature = inspect_catalog(catalog, trusted_publishers=[ca.certificate_der]).signature

    assert result.signer_subject == SIGNER
    assert signature is not None
    assert (signature.program_name, signature.program_url) == (
        "Device Update Firmware",
        "https://vendor.example/updates",
    )


@pytest.mark.parametrize(
    ("opus", "expected"),
    [
        (
            SpcSpOpusInfo(
                {
                    "program_name": SpcString(name="ascii", value="Ascii Program"),
                    "more_info": SpcLink(
                        name="file", value=SpcString(name="unicode", value="\\\\share\\info")
                    ),
                }
            ),
            ("Ascii Program", "\\\\share\\info"),
        ),
        (("", ""), ("", "")),
    ],
    ids=["ascii-name-and-file-link", "empty"],
)
def test_every_form_of_publisher_information_is_read(
    ca: builder.Signer,
    publisher: builder.Signer,
    opus: SpcSpOpusInfo | tuple[str, str],
    expected: tuple[str, str],
) -> None:
    catalog = builder.build_catalog(images(), signer=publisher, opus_info=opus)

    inspection = inspect_catalog(catalog, trusted_publishers=[ca.certificate_der])

    assert inspection.signature is not None
    assert (inspection.signature.program_name, inspection.signature.program_url) == expected
    assert (inspection.accepted, inspection.warnings) == (True, (NO_FOLDER,))


@pytest.mark.parametrize(
    "oid", ["1.3.6.1.4.1.311.3.3.1", "1.2.840.113549.1.9.16.2.14"], ids=["microsoft", "standard"]
)
def test_an_rfc3161_timestamp_is_accepted_and_reported(
    tmp_path: Path, ca: builder.Signer, publisher: builder.Signer, tsa: builder.Signer, oid: str
) -> None:
    files = images()
    stamped_at = EPOCH + datetime.timedelta(minutes=5)
    catalog = builder.build_catalog(
        files, signer=publisher, timestamp=tsa, timestamp_oid=oid, timestamp_time=stamped_at
    )
    paths = write_folder(tmp_path, files)

    result = verify_catalog(catalog, files=paths, trusted_publishers=[ca.certificate_der])
    inspection = inspect_catalog(catalog, files=paths, trusted_publishers=[ca.certificate_der])

    assert (result.signing_time, result.signing_time_source, result.warnings) == (
        EPOCH,
        "signingTime",
        (),
    )
    assert inspection.signature is not None
    assert inspection.signature.timestamps == (TimestampInfo("rfc3161", stamped_at, TSA, True),)
    assert inspection.warnings == ()


def test_a_legacy_countersignature_is_tolerated_and_reported(
    tmp_path: Path, ca: builder.Signer, publisher: builder.Signer, tsa: builder.Signer
) -> None:
    files = images()
    stamped_at = EPOCH + datetime.timedelta(hours=1)
    catalog = builder.build_catalog(
        files, signer=publisher, countersignature=tsa, timestamp_time=stamped_at
    )
    paths = write_folder(tmp_path, files)

    result = verify_catalog(catalog, files=paths, trusted_publishers=[ca.certificate_der])
    signature = summarize_signature(catalog)

    assert result.signer_subject == SIGNER
    assert signature.timestamps == (TimestampInfo("countersignature", stamped_at, TSA, True),)


def test_a_timestamp_made_for_another_signature_is_a_warning_not_a_refusal(
    tmp_path: Path, ca: builder.Signer, publisher: builder.Signer
) -> None:
    # An RSA timestamp signer keeps both tokens the same length, so one replaces the other
    # in the unsigned (unsigned: the catalog's signature still holds) attributes.
    files = images()
    first = builder.build_catalog(files, signer=publisher, timestamp=publisher)
    second = builder.build_catalog(
        {**files, "CPE.nbt": b"other"}, signer=publisher, timestamp=publisher
    )

    def token(catalog: bytes) -> bytes:
        signer_info = cms.ContentInfo.load(catalog)["content"]["signer_infos"][0]
        return bytes(signer_info["unsigned_attrs"][0]["values"][0].dump())

    catalog = first.replace(token(first), token(second))
    inspection = inspect_catalog(
        catalog, files=write_folder(tmp_path, files), trusted_publishers=[ca.certificate_der]
    )

    assert (inspection.accepted, inspection.warnings) == (
        True,
        ("the signature's timestamp was made for another signature",),
    )
    assert inspection.signature is not None
    assert inspection.signature.timestamps == (TimestampInfo("rfc3161", EPOCH, SIGNER, False),)


# --------------------------------------------------------------------- member kinds


def test_members_of_every_kind_are_verified(
    tmp_path: Path, ca: builder.Signer, publisher: builder.Signer
) -> None:
    inner = builder.cabinet_file({"readme.txt": b"read me"})
    files = {**images(), "docs.cab": inner, "tool.exe": tiny_pe()}
    catalog = builder.build_catalog(
        files, signer=publisher, member_kind={"docs.cab": "cabinet", "tool.exe": "pe"}
    )

    result = verify_catalog(
        catalog, files=write_folder(tmp_path, files), trusted_publishers=[ca.certificate_der]
    )

    assert result.members == (
        CatalogMember("CPE.nbt", "sha256", hashlib.sha256(files["CPE.nbt"]).hexdigest(), "flat"),
        CatalogMember("CPE.xml", "sha256", hashlib.sha256(files["CPE.xml"]).hexdigest(), "flat"),
        CatalogMember(
            "docs.cab", "sha256", hashlib.sha256(b"MSCF" + inner[8:]).hexdigest(), "cabinet"
        ),
        CatalogMember("tool.exe", "sha256", pe_image_digest(files["tool.exe"]), "pe"),
    )


def test_a_pe_member_is_hashed_without_its_own_signature(
    tmp_path: Path, ca: builder.Signer, publisher: builder.Signer
) -> None:
    image = tiny_pe(b"\x90\xc3")
    signed = with_certificate_table(image, b"an embedded Authenticode signature")
    catalog = builder.build_catalog({"tool.exe": image}, signer=publisher, member_kind="pe")

    inspection = inspect_catalog(
        catalog,
        files=write_folder(tmp_path, {"tool.exe": signed}),
        trusted_publishers=[ca.certificate_der],
    )

    assert pe_image_digest(signed) == pe_image_digest(image)
    assert hashlib.sha256(signed).hexdigest() != hashlib.sha256(image).hexdigest()
    assert (inspection.accepted, inspection.matched) == (True, ("tool.exe",))


@pytest.mark.parametrize("pe32_plus", [False, True], ids=["pe32", "pe32+"])
def test_the_pe_hash_is_the_one_osslsigncode_signs(
    tmp_path: Path, publisher: builder.Signer, need_tool: Tool, pe32_plus: bool
) -> None:
    osslsigncode = need_tool("osslsigncode")
    image = tmp_path / "tool.exe"
    image.write_bytes(tiny_pe(b"\x31\xc0\xc3", pe32_plus=pe32_plus))
    certs, key = signer_files(tmp_path, publisher)
    signed = tmp_path / "signed.exe"
    run(osslsigncode, "sign", "-h", "sha256", "-certs", certs, "-key", key, "-time", "1704067200",
        "-n", "Program", "-in", str(image), "-out", str(signed))  # fmt: skip
    run(osslsigncode, "extract-signature", "-in", str(signed), "-out", str(tmp_path / "sig.der"))
    signature = (tmp_path / "sig.der").read_bytes()

    content = cms.ContentInfo.load(signature)["content"]["encap_content_info"]["content"]
    signed_digest = content.parse(SpcIndirectDataContent)["message_digest"]["digest"].native

    assert signed_digest.hex() == pe_image_digest(image) == pe_image_digest(signed)
    assert summarize_signature(signature).program_name == "Program"


def test_a_file_listed_as_a_pe_image_that_is_not_one_is_refused(
    tmp_path: Path, ca: builder.Signer, publisher: builder.Signer
) -> None:
    catalog = builder.build_catalog({"tool.exe": tiny_pe()}, signer=publisher, member_kind="pe")
    paths = write_folder(tmp_path, {"tool.exe": b"MZ but nothing else" * 4})

    message = refusal_message(catalog, paths, [ca.certificate_der])
    inspection = inspect_catalog(catalog, files=paths, trusted_publishers=[ca.certificate_der])

    assert message == (
        "tool.exe: the catalog lists the file as a PE image, but it is not one (no PE header)"
    )
    assert (inspection.mismatched, inspection.reason) == (("tool.exe",), message)


def test_a_member_hashed_in_a_way_windows_tools_do_not_write_is_refused(
    tmp_path: Path, ca: builder.Signer, publisher: builder.Signer
) -> None:
    files = images()
    # SPC_CAB_DATA (...2.1.25) becomes SPC_SIPINFO (...2.1.30): same length, other meaning.
    cab_data = core.ObjectIdentifier("1.3.6.1.4.1.311.2.1.25").dump()
    sip_info = core.ObjectIdentifier("1.3.6.1.4.1.311.2.1.30").dump()
    ctl = CertificateTrustList.load(builder.build_ctl(files).dump().replace(cab_data, sip_info))
    catalog = builder.sign_ctl(ctl, signer=publisher)

    message = refusal_message(catalog, write_folder(tmp_path, files), [ca.certificate_der])

    assert message == (
        "CPE.nbt: the catalog hashes the file as 1.3.6.1.4.1.311.2.1.30, which is not supported"
    )


# -------------------------------------------------------------------- member names


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-bare", "8bit"])
def test_member_names_are_read_in_every_encoding_tools_write(
    tmp_path: Path, ca: builder.Signer, publisher: builder.Signer, encoding: str
) -> None:
    files = {"Prüfung.nbt": b"checked", "a": b"one letter", "CPE.xml": b"<x/>"}
    catalog = builder.build_catalog(files, signer=publisher, name_encoding=encoding)

    result = verify_catalog(
        catalog, files=write_folder(tmp_path, files), trusted_publishers=[ca.certificate_der]
    )

    assert [member.name for member in result.members] == ["CPE.xml", "Prüfung.nbt", "a"]


@pytest.mark.parametrize(
    ("name", "raw"),
    [("Prüfung.nbt", "Pr\\xfcfung.nbt"), ("café.bin", "caf\\xe9.bin")],
    ids=["odd-length", "even-length"],
)
def test_a_name_in_a_legacy_code_page_is_refused(
    tmp_path: Path, ca: builder.Signer, publisher: builder.Signer, name: str, raw: str
) -> None:
    files = {name: b"data"}
    catalog = builder.build_catalog(files, signer=publisher, name_encoding="latin-1")

    message = refusal_message(catalog, write_folder(tmp_path, files), [ca.certificate_der])

    assert message == (
        f"the catalog has a member whose name is neither UTF-16 nor UTF-8 text ({raw})"
    )


# ------------------------------------------------------------------ version 2 twins


@pytest.mark.parametrize("identifiers", ["hex", "raw"])
def test_version_2_sha1_twins_pair_with_their_files(
    tmp_path: Path, ca: builder.Signer, publisher: builder.Signer, identifiers: str
) -> None:
    files = {**images(), "tool.exe": tiny_pe()}
    catalog = builder.build_catalog(
        files,
        signer=publisher,
        member_kind={"tool.exe": "pe"},
        v2_companions=True,
        identifier_encoding=identifiers,
    )
    paths = write_folder(tmp_path, files)

    result = verify_catalog(catalog, files=paths, trusted_publishers=[ca.certificate_der])
    inspection = inspect_catalog(catalog, files=paths, trusted_publishers=[ca.certificate_der])

    assert (result.digest_algorithm, result.warnings) == ("sha256", ())
    assert [member.name for member in result.members] == ["CPE.nbt", "CPE.xml", "tool.exe"]
    assert (inspection.catalog_version, inspection.member_digests) == (2, ("sha1", "sha256"))
    assert inspection.companions == (
        CatalogCompanion(sha1(files["CPE.nbt"]), "CPE.nbt"),
        CatalogCompanion(sha1(files["CPE.xml"]), "CPE.xml"),
        CatalogCompanion(pe_image_digest(files["tool.exe"], "sha1"), "tool.exe"),
    )
    assert (inspection.accepted, inspection.missing, inspection.warnings) == (True, (), ())


def test_a_sha1_twin_matching_no_file_is_reported_not_refused(
    tmp_path: Path, ca: builder.Signer, publisher: builder.Signer
) -> None:
    files = images()
    ctl = builder.build_ctl(files, v2_companions=True)
    gone = hashlib.sha1(b"a file that is not there", usedforsecurity=False)
    ctl["trusted_subjects"] = TrustedSubjects(
        [*ctl["trusted_subjects"], TrustedSubject({"identifier": gone.digest()})]
    )
    catalog = builder.sign_ctl(ctl, signer=publisher)
    paths = write_folder(tmp_path, files)

    result = verify_catalog(catalog, files=paths, trusted_publishers=[ca.certificate_der])
    inspection = inspect_catalog(catalog, files=paths, trusted_publishers=[ca.certificate_der])

    assert [member.name for member in result.members] == ["CPE.nbt", "CPE.xml"]
    assert (inspection.accepted, inspection.missing) == (True, ())
    assert inspection.unmatched_entries == (f"SHA-1 {gone.hexdigest()}",)
    assert inspection.checks[-1] == MemberCheck(
        None, f"SHA-1 {gone.hexdigest()}", "", "sha1", "unlisted"
    )
    assert inspection.warnings == (
        "1 unnamed catalog entries match no file (reported, not refused)",
    )
    assert inspection.companions[-1] == CatalogCompanion(gone.hexdigest(), None)
    assert inspection.matched == ("CPE.nbt", "CPE.xml")


# ---------------------------------------------------------------------- inspection


def test_inspection_lists_matched_mismatched_missing_and_unlisted_files(
    tmp_path: Path, ca: builder.Signer, publisher: builder.Signer
) -> None:
    listed = {"CPE.xml": b"<x/>", "a.nbt": b"a", "b.nbt": b"b", "c.nbt": b"c"}
    catalog = builder.build_catalog(listed, signer=publisher)
    folder = {"CPE.xml": b"<x/>", "a.nbt": b"a", "b.nbt": b"tampered", "d.txt": b"extra"}
    paths = write_folder(tmp_path, {**folder, "CPE.cat": catalog})

    inspection = inspect_catalog(
        catalog, files=paths, trusted_publishers=[ca.certificate_der], catalog_name="CPE.cat"
    )

    assert (
        inspection.matched,
        inspection.mismatched,
        inspection.missing,
        inspection.unlisted,
    ) == (("CPE.xml", "a.nbt"), ("b.nbt",), ("c.nbt",), ("d.txt",))
    assert (inspection.accepted, inspection.reason) == (
        False,
        "b.nbt: the file's hash does not match the security catalog",
    )
    assert inspection.reason == refusal_message(catalog, paths, [ca.certificate_der])


def test_inspection_reports_the_chain_algorithms_and_member_format(
    ca: builder.Signer, publisher: builder.Signer
) -> None:
    catalog = builder.build_catalog(images(), signer=publisher, digest="sha1")

    inspection = inspect_catalog(catalog, trusted_publishers=[ca.certificate_der])

    signature = inspection.signature
    assert signature is not None
    assert signature.signer is not None
    assert [(c.subject, c.issuer) for c in signature.chain] == [(SIGNER, CA), (CA, CA)]
    assert signature.signer.sha256 == hashlib.sha256(publisher.certificate_der).hexdigest()
    assert signature.signer.serial == format(publisher.certificate.serial_number, "x")
    assert (signature.signer.not_before, signature.signer.not_after) == (
        publisher.certificate.not_valid_before_utc,
        publisher.certificate.not_valid_after_utc,
    )
    assert (signature.signature_digest, signature.signature_scheme, signature.content_type) == (
        "sha1",
        "rsassa_pkcs1v15",
        SZOID_CTL,
    )
    assert (signature.signing_time, signature.signing_time_source) == (EPOCH, "signingTime")
    assert (inspection.catalog_version, inspection.member_digests) == (1, ("sha1",))
    assert inspection.warnings == (
        "the catalog uses SHA-1; ask the vendor for a SHA-256 catalog",
        NO_FOLDER,
    )


def test_the_chain_goes_on_through_the_trusted_publishers_given(
    ca: builder.Signer, publisher: builder.Signer
) -> None:
    # A signature that does not embed its issuer: only the trusted certificate completes it.
    bare = dataclasses.replace(publisher, chain=())
    catalog = builder.build_catalog(images(), signer=bare, signing_time=None)

    trusted = summarize_signature(catalog, trusted_publishers=[ca.certificate_pem])
    alone = summarize_signature(catalog)

    assert [c.subject for c in trusted.chain] == [SIGNER, CA]
    assert [c.subject for c in alone.chain] == [SIGNER]
    assert (alone.signing_time, alone.signing_time_source) == (EPOCH, "thisUpdate")


def test_a_lone_catalog_is_judged_on_its_signature_and_chain(
    ca: builder.Signer, publisher: builder.Signer
) -> None:
    catalog = builder.build_catalog(images(), signer=publisher, v2_companions=True)
    other = builder.make_test_ca(common_name="Other CA", key_type="ec")

    accepted = inspect_catalog(catalog, trusted_publishers=[ca.certificate_der])
    refused = inspect_catalog(catalog, trusted_publishers=[other.certificate_der])

    assert (accepted.accepted, accepted.reason, accepted.warnings) == (True, "", (NO_FOLDER,))
    assert (accepted.matched, accepted.missing, accepted.unlisted) == ((), (), ())
    assert [companion.file for companion in accepted.companions] == [None, None]
    assert (refused.accepted, refused.reason) == (
        False,
        f"the catalog's signer does not chain to a trusted publisher ({SIGNER})",
    )
    assert [member.name for member in refused.members] == ["CPE.nbt", "CPE.xml"]


def test_an_unsigned_catalog_is_refused_and_described(ca: builder.Signer) -> None:
    catalog = builder.unsigned_catalog(builder.build_ctl(images()))

    inspection = inspect_catalog(catalog, trusted_publishers=[ca.certificate_der])

    assert inspection.reason == "the catalog is not signed"
    assert inspection.signature is not None
    assert (inspection.signature.signer, inspection.signature.chain) == (None, ())
    assert (inspection.unsigned, inspection.signatures, inspection.signature_used) == (
        True,
        (),
        None,
    )
    assert [member.name for member in inspection.members] == ["CPE.nbt", "CPE.xml"]


Case = tuple[bytes, dict[str, bytes], list[bytes], bool]


@pytest.fixture(scope="module")
def refusal_cases(ca: builder.Signer, publisher: builder.Signer) -> dict[str, Case]:
    """Catalog, folder files, trusted publishers and refuse_sha1, by refusal."""
    files = images()
    good = builder.build_catalog(files, signer=publisher)
    trusted = [ca.certificate_der]
    signature = cms.ContentInfo.load(good)["content"]["signer_infos"][0]["signature"].native
    position = good.index(signature) + 10
    forged_signature = good[:position] + bytes([good[position] ^ 1]) + good[position + 1 :]
    digest = hashlib.sha256(files["CPE.nbt"]).digest()
    position = good.index(digest) + 3
    forged_list = good[:position] + bytes([good[position] ^ 1]) + good[position + 1 :]
    other = builder.make_test_ca(common_name="Other CA", key_type="ec")
    expired = builder.make_publisher(
        ca,
        key_type="ec",
        not_before=EPOCH - datetime.timedelta(days=10),
        not_after=EPOCH - datetime.timedelta(days=1),
    )
    return {
        "garbage": (b"\x30\x03\x02\x01", files, trusted, False),
        "not-signed": (bytes.fromhex("300d06092a864886f70d010701a000"), files, trusted, False),
        "trailing-data": (good + b"\0\0", files, trusted, False),
        "unsigned": (builder.unsigned_catalog(builder.build_ctl(files)), files, trusted, False),
        "signature": (forged_signature, files, trusted, False),
        "trust-list": (forged_list, files, trusted, False),
        "no-publisher": (good, files, [], False),
        "untrusted": (good, files, [other.certificate_der], False),
        "unreadable-publisher": (good, files, [b"not a certificate"], False),
        "expired": (builder.build_catalog(files, signer=expired), files, trusted, False),
        "tampered": (good, {**files, "CPE.nbt": b"tampered"}, trusted, False),
        "missing": (good, {"CPE.xml": files["CPE.xml"]}, trusted, False),
        "unlisted": (good, {**files, "extra.txt": b"x"}, trusted, False),
        "sha1": (
            builder.build_catalog(files, signer=publisher, digest="sha1"),
            files,
            trusted,
            True,
        ),
        "legacy-name": (
            builder.build_catalog({"café.bin": b"x"}, signer=publisher, name_encoding="latin-1"),
            {"café.bin": b"x"},
            trusted,
            False,
        ),
        "not-a-pe": (
            builder.build_catalog({"tool.exe": tiny_pe()}, signer=publisher, member_kind="pe"),
            {"tool.exe": b"not a PE image"},
            trusted,
            False,
        ),
    }


REFUSALS = [
    "garbage",
    "not-signed",
    "trailing-data",
    "unsigned",
    "signature",
    "trust-list",
    "no-publisher",
    "untrusted",
    "unreadable-publisher",
    "expired",
    "tampered",
    "missing",
    "unlisted",
    "sha1",
    "legacy-name",
    "not-a-pe",
]


@pytest.mark.parametrize("case", REFUSALS)
def test_inspection_gives_the_reason_verification_refuses_with(
    tmp_path: Path, refusal_cases: dict[str, Case], case: str
) -> None:
    catalog, files, trusted, refuse_sha1 = refusal_cases[case]
    paths = write_folder(tmp_path / "folder", files)
    options = {
        "files": paths,
        "trusted_publishers": trusted,
        "catalog_name": "CPE.cat",
        "refuse_sha1": refuse_sha1,
    }

    with pytest.raises(PackageError) as caught:
        verify_catalog(catalog, **options)  # type: ignore[arg-type]
    inspection = inspect_catalog(catalog, **options)  # type: ignore[arg-type]

    assert (inspection.accepted, inspection.reason) == (False, caught.value.message)
    assert "\n" not in inspection.reason


# ------------------------------------------------------------ signatures of cabinets


@pytest.mark.parametrize("wrap", [False, True], ids=["pkcs7-v1.5", "cms-octet-string"])
def test_an_authenticode_signature_of_a_cabinet_is_summarized(
    ca: builder.Signer, publisher: builder.Signer, wrap: bool
) -> None:
    indirect = SpcIndirectDataContent(
        {
            "data": {"type": "1.3.6.1.4.1.311.2.1.25"},
            "message_digest": {
                "digest_algorithm": {"algorithm": "sha256"},
                "digest": hashlib.sha256(b"cabinet").digest(),
            },
        }
    )
    signature = builder.sign_content(
        SPC_INDIRECT_DATA_OBJID,
        indirect,
        signer=publisher,
        wrap=wrap,
        opus_info=("Cabinet", "https://vendor.example"),
        statement_type=True,
    )

    summary = summarize_signature(signature, trusted_publishers=[ca.certificate_der])

    assert summary.signer is not None
    assert (summary.signer.subject, summary.content_type) == (SIGNER, SPC_INDIRECT_DATA_OBJID)
    assert (summary.program_name, summary.program_url) == ("Cabinet", "https://vendor.example")
    assert (summary.signing_time, summary.signing_time_source) == (EPOCH, "signingTime")


def test_signed_data_that_is_no_catalog_is_refused_but_its_signer_shown(
    ca: builder.Signer, publisher: builder.Signer
) -> None:
    indirect = SpcIndirectDataContent(
        {
            "data": {"type": "1.3.6.1.4.1.311.2.1.25"},
            "message_digest": {
                "digest_algorithm": {"algorithm": "sha256"},
                "digest": hashlib.sha256(b"cabinet").digest(),
            },
        }
    )
    signature = builder.sign_content(SPC_INDIRECT_DATA_OBJID, indirect, signer=publisher)

    inspection = inspect_catalog(signature, trusted_publishers=[ca.certificate_der])

    assert inspection.reason == "the catalog's signed content is not a certificate trust list"
    assert inspection.signature is not None
    assert inspection.signature.signer is not None
    assert inspection.signature.signer.subject == SIGNER
    assert (inspection.catalog_version, inspection.members) == (0, ())


@pytest.mark.parametrize(
    ("der", "message"),
    [
        (b"garbage", "the signature is not valid PKCS #7 signed data (Insufficient data"),
        (b"", "the signature is not valid PKCS #7 signed data (Insufficient data"),
        (bytes.fromhex("300d06092a864886f70d010701a000"), "the signature is not PKCS #7 signed"),
    ],
    ids=["garbage", "empty", "pkcs7-data"],
)
def test_a_signature_that_is_not_signed_data_is_refused_in_one_line(
    der: bytes, message: str
) -> None:
    with pytest.raises(PackageError) as caught:
        summarize_signature(der)

    assert caught.value.message.startswith(message)
    assert "\n" not in caught.value.message


def test_osslsigncode_signs_a_cabinet_whose_signature_is_summarized(
    tmp_path: Path, publisher: builder.Signer, need_tool: Tool
) -> None:
    osslsigncode = need_tool("osslsigncode")
    cabinet = builder.build_package(
        [builder.build_update(signer=publisher)], path=tmp_path / "plain.cab"
    )
    certs, key = signer_files(tmp_path, publisher)
    signed = tmp_path / "signed.cab"
    run(osslsigncode, "sign", "-h", "sha256", "-n", "Cabinet Program", "-i",
        "https://example.org/cab", "-certs", certs, "-key", key, "-time", "1704067200",
        "-in", str(cabinet), "-out", str(signed))  # fmt: skip
    run(osslsigncode, "extract-signature", "-in", str(signed), "-out", str(tmp_path / "sig.der"))

    summary = summarize_signature((tmp_path / "sig.der").read_bytes())

    assert summary.signer is not None
    assert summary.signer.subject == SIGNER
    assert (summary.program_name, summary.program_url) == (
        "Cabinet Program",
        "https://example.org/cab",
    )
    assert (summary.content_type, summary.signing_time) == (SPC_INDIRECT_DATA_OBJID, EPOCH)


# -------------------------------------------------------------------- osslsigncode


def signer_files(directory: Path, signer: builder.Signer) -> tuple[str, str]:
    certs = directory / "signer.pem"
    certs.write_bytes(
        signer.certificate_pem + b"".join(c.public_bytes(Encoding.PEM) for c in signer.chain)
    )
    key = directory / "signer.key"
    key.write_bytes(signer.key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()))
    return str(certs), str(key)


def run(*command: str) -> str:
    completed = subprocess.run(command, capture_output=True, text=True, check=False)
    assert completed.returncode == 0, completed.stdout + completed.stderr
    return completed.stdout


def test_a_catalog_osslsigncode_signs_is_verified_and_inspected(
    tmp_path: Path, ca: builder.Signer, publisher: builder.Signer, need_tool: Tool
) -> None:
    osslsigncode = need_tool("osslsigncode")
    files = {**images(), "tool.exe": tiny_pe()}
    unsigned = tmp_path / "unsigned.cat"
    unsigned.write_bytes(
        builder.unsigned_catalog(
            builder.build_ctl(files, member_kind={"tool.exe": "pe"}, v2_companions=True)
        )
    )
    certs, key = signer_files(tmp_path, publisher)
    signed = tmp_path / "CPE.cat"
    # -time: osslsigncode writes the signing time; the test publisher is valid in 2024.
    run(osslsigncode, "sign", "-h", "sha256", "-n", "Program", "-i", "https://example.org",
        "-certs", certs, "-key", key, "-time", "1704067200",
        "-in", str(unsigned), "-out", str(signed))  # fmt: skip
    catalog = signed.read_bytes()
    paths = write_folder(tmp_path / "folder", files)

    result = verify_catalog(catalog, files=paths, trusted_publishers=[ca.certificate_der])
    inspection = inspect_catalog(catalog, files=paths, trusted_publishers=[ca.certificate_der])

    assert (result.signer_subject, result.signing_time) == (SIGNER, EPOCH)
    assert inspection.signature is not None
    assert (inspection.signature.program_name, inspection.signature.program_url) == (
        "Program",
        "https://example.org",
    )
    assert (inspection.accepted, inspection.matched) == (True, ("CPE.nbt", "CPE.xml", "tool.exe"))
