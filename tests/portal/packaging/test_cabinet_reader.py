"""Reading cabinet headers: every refusal is decided before anything is decompressed."""

from __future__ import annotations

import errno
import os
import struct
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from deviceupdate_devtools import builder
from portal.packaging.cabinet import (
    DEFAULT_MAX_MEMBER_SIZE,
    DEFAULT_MAX_MEMBERS,
    DEFAULT_MAX_TOTAL_SIZE,
    LZX_NEEDS_CABEXTRACT,
    CabinetMember,
    Compression,
    extract_cabinet,
    lzx_support,
    read_cabinet,
    read_cabinet_signature,
)
from portal.packaging.errors import PackageError

RawCabinet = Callable[..., Path]
GIB = 1 << 30


def refusal(
    path: Path,
    *,
    max_member_size: int = DEFAULT_MAX_MEMBER_SIZE,
    max_total_size: int = DEFAULT_MAX_TOTAL_SIZE,
    max_members: int = DEFAULT_MAX_MEMBERS,
) -> PackageError:
    with pytest.raises(PackageError) as caught:
        read_cabinet(
            path,
            max_member_size=max_member_size,
            max_total_size=max_total_size,
            max_members=max_members,
        )
    return caught.value


def test_microsoft_cabinet_with_mszip_and_lzx_folders_is_listed(
    fixture_cab: Callable[[str], Path],
) -> None:
    listing = read_cabinet(fixture_cab("normal_2files_2folders.cab"))

    assert listing.members == (
        CabinetMember("mszip1.txt", 31, 0, 0, Compression.MSZIP),
        CabinetMember("mszip2.txt", 36, 0, 31, Compression.MSZIP),
        CabinetMember("lzx1.txt", 23, 1, 0, Compression.LZX),
        CabinetMember("lzx2.txt", 28, 1, 23, Compression.LZX),
    )
    assert [f.compression for f in listing.folders] == [Compression.MSZIP, Compression.LZX]
    assert listing.total_size == 118


def test_quantum_folder_is_refused_naming_the_member(fixture_cab: Callable[[str], Path]) -> None:
    error = refusal(fixture_cab("mszip_lzx_qtm.cab"))

    assert error.member == "qtm.txt"
    assert error.message == (
        "qtm.txt: member uses Quantum compression, which is not supported; "
        "rebuild the package with MSZIP or LZX"
    )


def test_quantum_folder_can_be_listed_but_never_extracted(
    fixture_cab: Callable[[str], Path], staging: Path
) -> None:
    path = fixture_cab("mszip_lzx_qtm.cab")
    listing = read_cabinet(path, refuse_unsupported=False)

    assert [(m.name, m.size, m.compression) for m in listing.members] == [
        ("mszip.txt", 57, Compression.MSZIP),
        ("lzx.txt", 187, Compression.LZX),
        ("qtm.txt", 59, Compression.QUANTUM),
    ]
    with pytest.raises(PackageError, match="Quantum compression") as caught:
        extract_cabinet(path, staging, listing)
    assert caught.value.member == "qtm.txt"
    assert list(staging.iterdir()) == []


def test_builder_cabinet_lists_normalised_names(tmp_path: Path, publisher: builder.Signer) -> None:
    update = builder.build_update(signer=publisher, images={"CPE.nbt": 70_000})
    path = builder.build_package([update], path=tmp_path / "UCUpdates.cab")

    listing = read_cabinet(path)

    folder = "UCPhone/Polycom/CX600/Rev-1/ENU/4.0.7577.4387/CPE"
    assert [(m.name, m.size) for m in listing.members] == [
        (f"{folder}/{name}", len(update.files[name])) for name in ("CPE.cat", "CPE.nbt", "CPE.xml")
    ]
    assert {m.compression for m in listing.members} == {Compression.MSZIP}
    assert listing.folders[0].block_count == 3


def test_backslashes_are_normalised(raw_cabinet: RawCabinet) -> None:
    listing = read_cabinet(raw_cabinet([(b"dir\\sub\\file.txt", b"x")]))

    assert [m.name for m in listing.members] == ["dir/sub/file.txt"]


def test_utf8_name_without_utf_flag_is_accepted(raw_cabinet: RawCabinet) -> None:
    listing = read_cabinet(raw_cabinet([("dir\\café.txt".encode(), b"x")], attribs=0))

    assert [m.name for m in listing.members] == ["dir/café.txt"]


@pytest.mark.parametrize(
    ("raw_name", "shown"),
    [
        (b"caf\xe9.txt", "caf\\xe9.txt"),
        (b"\x81\x40.nbt", "\\x81@.nbt"),
        (b"dir\\\xff", "dir\\\\xff"),
    ],
    ids=["latin-1", "shift-jis", "lone-byte"],
)
def test_name_in_a_legacy_code_page_is_refused(
    raw_cabinet: RawCabinet, raw_name: bytes, shown: str
) -> None:
    error = refusal(raw_cabinet([(raw_name, b"x")], attribs=0))

    # Escaped and readable, never a Python bytes literal.
    assert error.member == shown
    assert error.message == f"{shown}: the member name is not in UTF-8 or ASCII"


def test_name_flagged_utf8_but_invalid_is_refused(raw_cabinet: RawCabinet) -> None:
    error = refusal(raw_cabinet([(b"caf\xe9.txt", b"x")], attribs=0x80))

    assert error.message == "caf\\xe9.txt: member name is flagged UTF-8 but is not valid UTF-8"


def test_builder_writes_legacy_names_without_the_utf_flag(
    tmp_path: Path, publisher: builder.Signer
) -> None:
    update = builder.build_update(signer=publisher)
    folder = "UCPhone/Polycom/CX600/Rev-1/ENU/4.0.7577.4387/CPE"
    utf8 = builder.build_package(
        [update],
        path=tmp_path / "utf8.cab",
        extra_members={"notes/read.txt": b"r"},
        legacy_names={"notes/read.txt": "notes\\lisez-moi é.txt".encode()},
    )
    latin1 = builder.build_package(
        [update],
        path=tmp_path / "latin1.cab",
        extra_members={"notes/read.txt": b"r"},
        legacy_names={"notes/read.txt": b"notes\\lisez-moi \xe9.txt"},
    )

    assert [m.name for m in read_cabinet(utf8).members] == [
        *(f"{folder}/CPE.{kind}" for kind in ("cat", "nbt", "xml")),
        "notes/lisez-moi é.txt",
    ]
    assert refusal(latin1).message == (
        "notes\\lisez-moi \\xe9.txt: the member name is not in UTF-8 or ASCII"
    )


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "the file is not a Microsoft cabinet"),
        (b"PK\x03\x04 this is a zip file", "the file is not a Microsoft cabinet"),
        (b"MSCF\0\0\0\0", "the cabinet is truncated (incomplete header)"),
    ],
)
def test_non_cabinets_are_refused(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "upload.cab"
    path.write_bytes(content)

    assert refusal(path).message == message


def test_truncated_cabinet_is_refused(tmp_path: Path, publisher: builder.Signer) -> None:
    update = builder.build_update(signer=publisher)
    whole = builder.build_package([update], path=tmp_path / "whole.cab").read_bytes()
    cut = tmp_path / "cut.cab"
    cut.write_bytes(whole[: len(whole) // 2])

    assert refusal(cut).message == (
        f"the cabinet is truncated: its header declares {len(whole)} bytes, "
        f"the file has {len(whole) // 2}"
    )


def test_data_blocks_running_past_the_end_are_refused(
    tmp_path: Path, cabinet_bytes: Callable[..., bytes]
) -> None:
    raw = bytearray(cabinet_bytes([(b"a.txt", b"hello world")]))
    # Claim a larger compressed block than the file holds, keeping the total size honest.
    data_offset = struct.unpack_from("<I", raw, 36)[0]
    struct.pack_into("<H", raw, data_offset + 4, 500)
    path = tmp_path / "overrun.cab"
    path.write_bytes(bytes(raw))

    assert refusal(path).message == "the cabinet is truncated (data block of folder 0)"


def test_trailing_data_after_the_cabinet_is_refused(
    tmp_path: Path, cabinet_bytes: Callable[..., bytes]
) -> None:
    path = tmp_path / "trailing.cab"
    path.write_bytes(cabinet_bytes() + b"MSCF smuggled")

    assert refusal(path).message == "13 bytes of unexpected data after the cabinet"


@pytest.mark.parametrize(
    "options",
    [
        {"flags": 0x0001},
        {"flags": 0x0002},
        {"flags": 0x0001, "cabinet_index": 1},
        {"flags": 0x0002, "folder_indexes": {0: 0xFFFE}},
        {"flags": 0x0002, "blocks": [(b"hello", 0)], "sizes": {0: 0}},
    ],
    ids=[
        "previous-cabinet",
        "next-cabinet",
        "second-in-set",
        "member-continues-in-next",
        "block-continues-in-next",
    ],
)
def test_split_cabinet_sets_are_refused(raw_cabinet: RawCabinet, options: dict[str, int]) -> None:
    assert refusal(raw_cabinet(**options)).message == (
        "the cabinet is part of a split cabinet set (it continues in another file); "
        "split sets are not supported, rebuild the package as one cabinet"
    )


def test_set_number_without_a_linked_cabinet_is_corrupt(raw_cabinet: RawCabinet) -> None:
    assert refusal(raw_cabinet(cabinet_index=3)).message == (
        "the cabinet is corrupt (its header numbers it 3 in a cabinet set "
        "but it links to no other cabinet)"
    )


@pytest.mark.parametrize("folder_index", [0xFFFD, 0xFFFE, 0xFFFF])
def test_member_continued_in_another_cabinet_without_a_linked_cabinet_is_corrupt(
    raw_cabinet: RawCabinet, folder_index: int
) -> None:
    error = refusal(raw_cabinet(folder_indexes={0: folder_index}))

    assert error.member == "a.txt"
    assert error.message == (
        "a.txt: the cabinet is corrupt (member is marked as continued in another cabinet "
        "but the cabinet links to no other)"
    )


def test_unknown_compression_is_refused(raw_cabinet: RawCabinet) -> None:
    error = refusal(raw_cabinet(compression=7))

    assert error.message == "a.txt: folder 0 uses unknown compression type 7"


@pytest.mark.parametrize(
    ("raw_name", "member", "reason"),
    [
        (b"../etc/passwd", "../etc/passwd", "member name has a '..' path component"),
        (b"UCPhone\\..\\..\\x", "UCPhone/../../x", "member name has a '..' path component"),
        (b"/etc/passwd", "/etc/passwd", "member name is absolute"),
        (b"\\Windows\\win.ini", "/Windows/win.ini", "member name is absolute"),
        (b"C:\\boot.ini", "C:/boot.ini", "member name starts with a drive letter"),
        (b"c:relative.txt", "c:relative.txt", "member name starts with a drive letter"),
        (b"a//b.txt", "a//b.txt", "member name has an empty path component"),
        (b"a/b/", "a/b/", "member name has an empty path component"),
        (b"a/./b.txt", "a/./b.txt", "member name has a '.' path component"),
        (b"bell\x07.txt", "bell\\x07.txt", "member name contains a control character"),
        (b"new\nline.txt", "new\\nline.txt", "member name contains a control character"),
    ],
)
def test_hostile_member_names_are_refused(
    raw_cabinet: RawCabinet, raw_name: bytes, member: str, reason: str
) -> None:
    error = refusal(raw_cabinet([(raw_name, b"x")]))

    assert error.member == member
    assert error.message == f"{member}: {reason}"


def test_name_over_255_characters_is_refused(raw_cabinet: RawCabinet) -> None:
    name = "d/" + "n" * 254

    error = refusal(raw_cabinet([(name.encode(), b"x")]))

    assert error.member == name
    assert error.message == f"{name}: member name is longer than 255 characters (256)"


def test_name_of_exactly_255_characters_is_accepted(raw_cabinet: RawCabinet) -> None:
    name = "d/" + "n" * 253

    assert [m.name for m in read_cabinet(raw_cabinet([(name.encode(), b"x")])).members] == [name]


def test_unterminated_name_is_refused_as_too_long(raw_cabinet: RawCabinet) -> None:
    error = refusal(raw_cabinet([(b"x" * 2000, b"x")]))

    assert error.message.endswith("member name is longer than 255 characters")


def test_names_differing_only_by_case_are_refused(raw_cabinet: RawCabinet) -> None:
    error = refusal(raw_cabinet([(b"Dir/CPE.nbt", b"1"), (b"dir\\cpe.NBT", b"2")]))

    assert error.member == "dir/cpe.NBT"
    assert error.message == (
        "dir/cpe.NBT: two members have the same name apart from case (Dir/CPE.nbt)"
    )


def test_member_that_is_also_a_folder_is_refused(raw_cabinet: RawCabinet) -> None:
    error = refusal(raw_cabinet([(b"a/b", b"1"), (b"A/b/c", b"2")]))

    assert error.message == "a/b: member name is also used as a folder by A/b/c"


def test_more_than_10000_members_are_refused_from_the_header_alone(
    raw_cabinet: RawCabinet,
) -> None:
    # The header claims 10,001 members but the file holds one: the count alone refuses it.
    error = refusal(raw_cabinet(file_count=10_001))

    assert error.message == "the cabinet has 10001 members, more than the limit of 10000"


def test_member_limit_is_a_keyword(raw_cabinet: RawCabinet) -> None:
    path = raw_cabinet([(b"a", b"1"), (b"b", b"2"), (b"c", b"3")])

    assert refusal(path, max_members=2).message == (
        "the cabinet has 3 members, more than the limit of 2"
    )
    assert len(read_cabinet(path, max_members=3).members) == 3


def test_declared_member_size_over_one_gib_is_refused(raw_cabinet: RawCabinet) -> None:
    # A cabinet bomb: a few bytes that declare a 4 GiB member.
    error = refusal(raw_cabinet(sizes={0: 0xFFFFFFFF}))

    assert error.member == "a.txt"
    assert error.message == (
        f"a.txt: member declares {0xFFFFFFFF} bytes, more than the per-file limit of {GIB}"
    )


def test_declared_total_over_four_gib_is_refused(raw_cabinet: RawCabinet) -> None:
    members = [(f"m{i}.nbt".encode(), b"") for i in range(5)]

    error = refusal(raw_cabinet(members, sizes=dict.fromkeys(range(5), GIB)))

    assert error.member == "m4.nbt"
    assert error.message == (
        f"m4.nbt: the members declare more than the per-package limit of {4 * GIB} bytes in total"
    )


def test_size_limits_are_keywords(raw_cabinet: RawCabinet) -> None:
    path = raw_cabinet([(b"a", b"12345"), (b"b", b"67890")])

    assert refusal(path, max_member_size=4).message == (
        "a: member declares 5 bytes, more than the per-file limit of 4"
    )
    assert refusal(path, max_total_size=9).message == (
        "b: the members declare more than the per-package limit of 9 bytes in total"
    )
    assert read_cabinet(path, max_member_size=5, max_total_size=10).total_size == 10


def test_member_past_its_folder_data_is_refused(raw_cabinet: RawCabinet) -> None:
    error = refusal(raw_cabinet(sizes={0: 6}))

    assert error.message == (
        "a.txt: the cabinet is truncated or corrupt (member extends past its folder's data)"
    )


def test_block_continued_without_a_linked_cabinet_is_corrupt(raw_cabinet: RawCabinet) -> None:
    error = refusal(raw_cabinet(blocks=[(b"hel", 3), (b"lo", 0)], sizes={0: 3}))

    assert error.message == (
        "the cabinet is corrupt (data block 1 of folder 0 is marked as continued in another "
        "cabinet but the cabinet links to no other)"
    )


# ------------------------------------------------------------------ Authenticode signatures

Raw = Callable[..., bytes]
Reserve = Callable[..., bytes]
SHORT_DER = b"\x30\x03\x02\x01\x05"  # 5 bytes: padded with 3 zeros
ALIGNED_DER = b"\x30\x06\x02\x01\x01\x02\x01\x02"  # 8 bytes: no padding


def declared_size(raw: bytes) -> int:
    return int(struct.unpack_from("<I", raw, 8)[0])


def signed_raw(
    cabinet_bytes: Raw,
    signature_reserve: Reserve,
    trailer: bytes,
    *,
    offset_shift: int = 0,
    length: int | None = None,
) -> bytes:
    """A raw cabinet with ``trailer`` after it and a record pointing at it (or not quite)."""
    size = declared_size(cabinet_bytes(header_reserve=bytes(20)))
    record = signature_reserve(size + offset_shift, len(trailer) if length is None else length)
    return cabinet_bytes(header_reserve=record, trailer=trailer)


@pytest.mark.parametrize("der", [SHORT_DER, ALIGNED_DER], ids=["padded", "aligned"])
def test_signed_raw_cabinet_is_listed_with_its_signature(
    tmp_path: Path, cabinet_bytes: Raw, signature_reserve: Reserve, der: bytes
) -> None:
    padded = der + bytes(-len(der) % 8)
    path = tmp_path / "signed.cab"
    path.write_bytes(signed_raw(cabinet_bytes, signature_reserve, padded))

    listing = read_cabinet(path)

    assert listing.signature_offset == declared_size(path.read_bytes())
    assert listing.signature_size == len(der)
    assert listing.file_size == listing.signature_offset + len(padded)
    assert [m.name for m in listing.members] == ["a.txt"]
    assert read_cabinet_signature(listing) == der


def test_builder_signs_a_package_as_signtool_lays_it_out(
    tmp_path: Path, publisher: builder.Signer
) -> None:
    update = builder.build_update(signer=publisher, images={"CPE.nbt": 70_000})
    der = builder.build_catalog({"any.bin": b"any"}, signer=publisher)  # some DER PKCS #7
    plain = builder.build_package([update], path=tmp_path / "plain.cab")
    signed = builder.build_package([update], path=tmp_path / "signed.cab", signature=der)

    listing = read_cabinet(signed)
    raw = signed.read_bytes()

    assert listing.members == read_cabinet(plain).members
    assert raw[36:60] == (
        b"\x14\x00\x00\x00\x00\x00\x10\x00"
        + struct.pack("<II", listing.signature_offset, len(der) + (-len(der) % 8))
        + bytes(8)
    )
    assert listing.signature_offset == declared_size(raw) == len(plain.read_bytes()) + 24
    assert listing.signature_size == len(der)
    assert read_cabinet_signature(listing) == der


def test_unsigned_cabinet_has_no_signature(raw_cabinet: RawCabinet) -> None:
    listing = read_cabinet(raw_cabinet())

    assert (listing.signature_offset, listing.signature_size) == (None, 0)
    assert read_cabinet_signature(listing) is None


def test_reserve_kept_free_for_a_signature_is_an_unsigned_cabinet(
    raw_cabinet: RawCabinet, signature_reserve: Reserve
) -> None:
    listing = read_cabinet(raw_cabinet(header_reserve=signature_reserve(0, 0)))

    assert (listing.signature_offset, listing.signature_size) == (None, 0)
    assert [m.name for m in listing.members] == ["a.txt"]


def test_data_after_the_signature_is_refused(
    tmp_path: Path, cabinet_bytes: Raw, signature_reserve: Reserve
) -> None:
    raw = signed_raw(cabinet_bytes, signature_reserve, SHORT_DER + bytes(3), length=8)
    path = tmp_path / "extra.cab"
    path.write_bytes(raw + b"MSCF smuggled")

    assert refusal(path).message == "13 bytes of unexpected data after the cabinet's signature"


def test_signature_record_not_pointing_at_the_trailing_data_is_refused(
    tmp_path: Path, cabinet_bytes: Raw, signature_reserve: Reserve
) -> None:
    path = tmp_path / "elsewhere.cab"
    path.write_bytes(signed_raw(cabinet_bytes, signature_reserve, ALIGNED_DER, offset_shift=-8))

    assert refusal(path).message == "8 bytes of unexpected data after the cabinet"


def test_trailing_data_with_a_reserve_of_another_kind_is_refused(
    tmp_path: Path, cabinet_bytes: Raw
) -> None:
    path = tmp_path / "other-reserve.cab"
    path.write_bytes(cabinet_bytes(header_reserve=b"\x01" * 20, trailer=ALIGNED_DER))

    assert refusal(path).message == "8 bytes of unexpected data after the cabinet"


def test_signature_record_pointing_inside_the_cabinet_is_refused(
    raw_cabinet: RawCabinet, signature_reserve: Reserve
) -> None:
    path = raw_cabinet(header_reserve=signature_reserve(40, 8))

    assert refusal(path).message == (
        "the cabinet is corrupt (its signature record does not point after the cabinet)"
    )


def test_truncated_signature_is_refused(
    tmp_path: Path, cabinet_bytes: Raw, signature_reserve: Reserve
) -> None:
    raw = signed_raw(cabinet_bytes, signature_reserve, ALIGNED_DER)
    path = tmp_path / "cut-signature.cab"
    path.write_bytes(raw[:-3])

    assert refusal(path).message == (
        f"the cabinet is truncated: its signature ends at byte {len(raw)}, "
        f"the file has {len(raw) - 3}"
    )


@pytest.mark.parametrize(
    ("trailer", "message"),
    [
        (b"MSCF" + bytes(4), "the cabinet is corrupt (its signature is not DER-encoded)"),
        (b"\x30\x80" + bytes(6), "the cabinet is corrupt (its signature is not DER-encoded)"),
        (b"\x30\x10" + bytes(6), "the cabinet is corrupt (its signature is not DER-encoded)"),
        (SHORT_DER + b"\0\0\x01", "the cabinet is corrupt (unexpected bytes after its signature)"),
        (SHORT_DER + bytes(11), "the cabinet is corrupt (unexpected bytes after its signature)"),
    ],
    ids=["not-der", "indefinite-length", "longer-than-record", "non-zero-padding", "long-padding"],
)
def test_signature_that_is_not_a_padded_der_element_is_refused(
    tmp_path: Path, cabinet_bytes: Raw, signature_reserve: Reserve, trailer: bytes, message: str
) -> None:
    path = tmp_path / "bad-signature.cab"
    path.write_bytes(signed_raw(cabinet_bytes, signature_reserve, trailer))

    assert refusal(path).message == message


def test_signature_of_a_replaced_cabinet_is_refused(
    tmp_path: Path, publisher: builder.Signer
) -> None:
    update = builder.build_update(signer=publisher)
    der = builder.build_catalog({"any.bin": b"any"}, signer=publisher)
    path = builder.build_package([update], path=tmp_path / "signed.cab", signature=der)
    listing = read_cabinet(path)
    other = builder.build_package([update], path=tmp_path / "other.cab", signature=der[::-1])
    os.replace(other, path)

    with pytest.raises(PackageError) as caught:
        read_cabinet_signature(listing)

    assert caught.value.message == "the cabinet changed after it was read; read it again"


# ------------------------------------------------------------------- the file itself


def test_directory_given_as_a_cabinet_is_refused_in_one_line(tmp_path: Path) -> None:
    directory = tmp_path / "staging" / "package.cab"
    directory.mkdir(parents=True)

    assert refusal(directory).message == "cannot read the cabinet package.cab: is a directory"


def test_missing_cabinet_is_refused_in_one_line(tmp_path: Path) -> None:
    error = refusal(tmp_path / "staging" / "package.cab")

    assert error.message == "cannot read the cabinet package.cab: no such file"


def test_unreadable_cabinet_is_refused_in_one_line(
    raw_cabinet: RawCabinet, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = raw_cabinet()
    real_open = os.open

    def denied(name: object, *args: Any, **kwargs: Any) -> int:
        if name == path:
            raise PermissionError(errno.EACCES, "Permission denied", str(path))
        return real_open(name, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr("portal.packaging.cabinet.headers.os.open", denied)

    assert refusal(path).message == f"cannot read the cabinet {path.name}: permission denied"


def test_fifo_given_as_a_cabinet_is_refused_without_waiting(tmp_path: Path) -> None:
    fifo = tmp_path / "package.cab"
    os.mkfifo(fifo)

    assert refusal(fifo).message == "cannot read the cabinet package.cab: not a regular file"


# ---------------------------------------------------------------------------- LZX support


def test_lzx_support_is_none_with_cabextract(need_tool: Callable[[str], str]) -> None:
    need_tool("cabextract")

    assert lzx_support() is None


def test_lzx_support_says_what_is_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("portal.packaging.cabinet.cabextract.shutil.which", lambda _name: None)

    assert (
        lzx_support()
        == LZX_NEEDS_CABEXTRACT
        == (
            "LZX-compressed packages need the cabextract program (Debian package 'cabextract'), "
            "which is not installed"
        )
    )
