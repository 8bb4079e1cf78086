"""Reading cabinet headers: every refusal is decided before anything is decompressed."""

from __future__ import annotations

import struct
from collections.abc import Callable
from pathlib import Path

import pytest

from portal.packaging import builder
from portal.packaging.cabinet import (
    DEFAULT_MAX_MEMBER_SIZE,
    DEFAULT_MAX_MEMBERS,
    DEFAULT_MAX_TOTAL_SIZE,
    CabinetMember,
    Compression,
    extract_cabinet,
    read_cabinet,
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


def test_latin1_name_without_utf_flag_is_decoded_as_cabextract_does(
    raw_cabinet: RawCabinet,
) -> None:
    listing = read_cabinet(raw_cabinet([(b"caf\xe9.txt", b"x")], attribs=0))

    assert [m.name for m in listing.members] == ["café.txt"]


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
    [{"flags": 0x0001}, {"flags": 0x0002}, {"cabinet_index": 1}],
    ids=["previous-cabinet", "next-cabinet", "not-first-in-set"],
)
def test_split_cabinet_sets_are_refused(raw_cabinet: RawCabinet, options: dict[str, int]) -> None:
    assert refusal(raw_cabinet(**options)).message == (
        "the cabinet is part of a split cabinet set (it continues in another file); "
        "split sets are not supported, rebuild the package as one cabinet"
    )


def test_member_continued_from_another_cabinet_is_refused(raw_cabinet: RawCabinet) -> None:
    error = refusal(raw_cabinet(folder_indexes={0: 0xFFFD}))

    assert error.member == "a.txt"
    assert error.message == (
        "a.txt: member continues in another cabinet of a split set; split sets are not supported"
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
        (b"bell\x07.txt", "'bell\\x07.txt'", "member name contains a control character"),
        (b"new\nline.txt", "'new\\nline.txt'", "member name contains a control character"),
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


def test_block_continuing_in_next_cabinet_is_refused(raw_cabinet: RawCabinet) -> None:
    error = refusal(raw_cabinet(blocks=[(b"hello", 0)], sizes={0: 0}))

    assert error.message == "folder 0 continues in another cabinet; split sets are not supported"
