"""Extracting cabinets into a staging directory: exact bytes out, nothing left on refusal."""

from __future__ import annotations

import hashlib
import os
import resource
import subprocess
import zlib
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest

from deviceupdate_devtools import builder
from portal.packaging.cabinet import (
    LZX_NEEDS_CABEXTRACT,
    ExtractedMember,
    check_cabinet_data,
    extract_cabinet,
    read_cabinet,
)
from portal.packaging.errors import PackageError

RawCabinet = Callable[..., Path]
Tool = Callable[[str], str]
Mszip = Callable[..., list[tuple[bytes, int]]]


def files_under(directory: Path) -> dict[str, bytes]:
    return {
        path.relative_to(directory).as_posix(): path.read_bytes()
        for path in sorted(directory.rglob("*"))
        if path.is_file()
    }


def refused_extraction(path: Path, staging: Path) -> PackageError:
    listing = read_cabinet(path)
    with pytest.raises(PackageError) as caught:
        extract_cabinet(path, staging, listing)
    assert list(staging.iterdir()) == []
    return caught.value


@pytest.mark.parametrize("name", ["normal_2files_2folders.cab", "mszip_lzx_qtm.cab"])
def test_microsoft_cabinets_extract_like_cabextract(
    fixture_cab: Callable[[str], Path], staging: Path, name: str, need_tool: Tool
) -> None:
    cabextract = need_tool("cabextract")
    path = fixture_cab(name)
    listing = read_cabinet(path, refuse_unsupported=False)
    # The Quantum member is refused elsewhere; every other member must match libmspack.
    listing = replace(
        listing, members=tuple(m for m in listing.members if m.compression != "quantum")
    )

    extracted = extract_cabinet(path, staging, listing)

    assert len(extracted) == {"normal_2files_2folders.cab": 4, "mszip_lzx_qtm.cab": 2}[name]
    for member in extracted:
        expected = subprocess.run(
            [cabextract, "-q", "-p", "-F", member.name, str(path)],
            capture_output=True,
            check=True,
        ).stdout
        assert member.path.read_bytes() == expected
        assert member.sha256 == hashlib.sha256(expected).hexdigest()
        assert member.size == len(expected)
    assert sorted(files_under(staging)) == sorted(m.name for m in listing.members)


def test_microsoft_cabinet_members_have_known_content(
    fixture_cab: Callable[[str], Path], staging: Path, need_tool: Tool
) -> None:
    need_tool("cabextract")
    path = fixture_cab("normal_2files_2folders.cab")

    extracted = extract_cabinet(path, staging, read_cabinet(path))

    assert files_under(staging) == {
        "lzx1.txt": b"This is LZX compressed\n",
        "lzx2.txt": b"This is also LZX compressed\n",
        "mszip1.txt": b"This is compressed with MS-ZIP\n",
        "mszip2.txt": b"This also is compressed with MS-ZIP\n",
    }
    assert extracted[0] == ExtractedMember(
        "mszip1.txt",
        staging / "mszip1.txt",
        31,
        hashlib.sha256(b"This is compressed with MS-ZIP\n").hexdigest(),
    )


@pytest.mark.parametrize("compress", [True, False], ids=["mszip", "stored"])
def test_builder_package_extracts_byte_for_byte(
    tmp_path: Path, staging: Path, publisher: builder.Signer, compress: bool
) -> None:
    first = builder.build_update(signer=publisher, images={"CPE.nbt": 100_000, "boot.nbt": 0})
    second = builder.build_update(signer=publisher, model="CX3000", images={"CX.nbt": 5})
    path = builder.build_package([first, second], path=tmp_path / "p.cab", compress=compress)
    expected = {**first.members, **second.members}

    extracted = extract_cabinet(path, staging, read_cabinet(path))

    assert files_under(staging) == expected
    assert {m.name: (m.size, m.sha256) for m in extracted} == {
        name: (len(data), hashlib.sha256(data).hexdigest()) for name, data in expected.items()
    }


def test_mszip_blocks_that_refer_to_the_previous_block_are_decoded(
    raw_cabinet: RawCabinet, staging: Path, need_tool: Tool, mszip: Mszip
) -> None:
    text = b"".join(b"line %05d of a compressible image\n" % i for i in range(2000))
    chunks = [text[i : i + 32768] for i in range(0, len(text), 32768)]
    path = raw_cabinet([(b"img.nbt", text)], compression=1, blocks=mszip(chunks))

    extracted = extract_cabinet(path, staging, read_cabinet(path))

    assert (staging / "img.nbt").read_bytes() == text
    assert extracted[0].sha256 == hashlib.sha256(text).hexdigest()
    cabextract = need_tool("cabextract")
    reference = subprocess.run(
        [cabextract, "-q", "-p", str(path)], capture_output=True, check=True
    ).stdout
    assert reference == text


def test_members_spanning_blocks_and_empty_members_are_cut_exactly(
    raw_cabinet: RawCabinet, staging: Path
) -> None:
    members = [(b"a", b"A" * 10), (b"empty", b""), (b"b", b"B" * 25), (b"c", b"C" * 3)]
    path = raw_cabinet(members, block_size=7)

    extract_cabinet(path, staging, read_cabinet(path))

    assert files_under(staging) == {"a": b"A" * 10, "b": b"B" * 25, "c": b"CCC", "empty": b""}


def test_corrupt_block_checksum_is_refused_and_nothing_is_left(
    cabinet_bytes: Callable[..., bytes], tmp_path: Path, staging: Path
) -> None:
    raw = bytearray(
        cabinet_bytes(
            [(b"dir/first.nbt", b"1" * 40), (b"dir/second.nbt", b"2" * 40)], block_size=40
        )
    )
    raw[-5] ^= 0xFF  # inside the second block: the first member is already written by then
    path = tmp_path / "corrupt.cab"
    path.write_bytes(bytes(raw))

    error = refused_extraction(path, staging)

    assert error.message == (
        "dir/second.nbt: the cabinet is corrupt (checksum mismatch in data block 1 of folder 0)"
    )


def test_corrupt_deflate_data_without_checksum_is_refused(
    raw_cabinet: RawCabinet, staging: Path
) -> None:
    path = raw_cabinet(
        [(b"x.nbt", b"x" * 100)],
        compression=1,
        blocks=[(b"CK\xff\xff\xff\xff", 100)],
        checksums=False,
    )

    error = refused_extraction(path, staging)

    assert error.message == (
        "x.nbt: the cabinet is corrupt (cannot decompress data block 0 of folder 0)"
    )


def test_missing_mszip_signature_is_refused(raw_cabinet: RawCabinet, staging: Path) -> None:
    deflated = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    payload = b"XX" + deflated.compress(b"y" * 100) + deflated.flush()
    path = raw_cabinet([(b"y.nbt", b"y" * 100)], compression=1, blocks=[(payload, 100)])

    error = refused_extraction(path, staging)

    assert error.message == (
        "y.nbt: the cabinet is corrupt (bad MSZIP signature in data block 0 of folder 0)"
    )


def test_more_bytes_out_than_declared_is_refused(
    raw_cabinet: RawCabinet, staging: Path, mszip: Mszip
) -> None:
    # The block inflates to 30,000 bytes but declares 1,000, as does its only member.
    ((payload, _size),) = mszip([b"\0" * 30_000])
    path = raw_cabinet([(b"bomb.nbt", b"\0" * 1000)], compression=1, blocks=[(payload, 1000)])

    error = refused_extraction(path, staging)

    assert error.message == (
        "the cabinet is corrupt (more bytes out than data block 0 of folder 0 declares)"
    )


def test_fewer_bytes_out_than_declared_is_refused(
    raw_cabinet: RawCabinet, staging: Path, mszip: Mszip
) -> None:
    ((payload, _size),) = mszip([b"z" * 10])
    path = raw_cabinet([(b"z.nbt", b"z" * 20)], compression=1, blocks=[(payload, 20)])

    error = refused_extraction(path, staging)

    assert error.message == "z.nbt: the cabinet is corrupt (short data block 0 of folder 0)"


def test_lzx_without_cabextract_is_refused_clearly(
    fixture_cab: Callable[[str], Path], staging: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = fixture_cab("normal_2files_2folders.cab")
    listing = read_cabinet(path)
    monkeypatch.setattr("portal.packaging.cabinet.cabextract.shutil.which", lambda _name: None)

    with pytest.raises(PackageError) as caught:
        extract_cabinet(path, staging, listing)

    assert caught.value.message == f"lzx1.txt: {LZX_NEEDS_CABEXTRACT}"
    assert list(staging.iterdir()) == []


def test_corrupt_lzx_block_is_refused(
    fixture_cab: Callable[[str], Path], tmp_path: Path, staging: Path, need_tool: Tool
) -> None:
    need_tool("cabextract")
    raw = bytearray(fixture_cab("normal_2files_2folders.cab").read_bytes())
    raw[-3] ^= 0xFF  # the last bytes belong to the LZX folder's only data block
    path = tmp_path / "corrupt-lzx.cab"
    path.write_bytes(bytes(raw))

    error = refused_extraction(path, staging)

    assert error.member == "lzx1.txt"
    assert error.message == (
        "lzx1.txt: the cabinet is corrupt (cannot decompress folder 1; cabextract: checksum error)"
    )


def test_staging_directory_must_be_empty(raw_cabinet: RawCabinet, staging: Path) -> None:
    path = raw_cabinet()
    (staging / "left-over").write_bytes(b"")

    with pytest.raises(ValueError, match="is not empty"):
        extract_cabinet(path, staging, read_cabinet(path))

    assert [p.name for p in staging.iterdir()] == ["left-over"]


def test_cabinet_replaced_after_reading_is_refused(raw_cabinet: RawCabinet, staging: Path) -> None:
    path = raw_cabinet()
    listing = read_cabinet(path)
    replacement = raw_cabinet([(b"a.txt", b"HELLO")])
    os.replace(replacement, path)

    with pytest.raises(PackageError, match="the cabinet changed after it was read"):
        extract_cabinet(path, staging, listing)

    assert list(staging.iterdir()) == []


def test_ten_thousand_tiny_members_extract_with_few_open_files(
    raw_cabinet: RawCabinet, staging: Path
) -> None:
    members = [(f"d{i // 100}/f{i}.bin".encode(), bytes([i % 251])) for i in range(10_000)]
    path = raw_cabinet(members)  # all 10,000 members share the first data block
    listing = read_cabinet(path)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(soft, 128), hard))
    try:
        extracted = extract_cabinet(path, staging, listing)
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))

    assert len(extracted) == 10_000
    assert (staging / "d99" / "f9999.bin").read_bytes() == bytes([9999 % 251])


def test_overlapping_members_are_refused(raw_cabinet: RawCabinet) -> None:
    path = raw_cabinet([(b"a", b"12345"), (b"b", b"67890")], offsets={1: 3})

    with pytest.raises(PackageError) as caught:
        read_cabinet(path)

    assert caught.value.message == "b: the cabinet is corrupt (member overlaps the data of a)"


def test_corrupt_block_names_the_member_it_holds(
    raw_cabinet: RawCabinet, staging: Path, mszip: Mszip
) -> None:
    members = [(b"a", b"A" * 10), (b"b", b"B" * 25), (b"c", b"C" * 3)]
    data = b"".join(content for _name, content in members)
    blocks = mszip([data[i : i + 7] for i in range(0, len(data), 7)])
    # Blocks 1 ([7, 14): a and b) and 2 ([14, 21): b only) cannot be inflated.
    for broken in (1, 2):
        blocks_with_damage = list(blocks)
        blocks_with_damage[broken] = (b"CK\xff\xff\xff\xff", 7)
        path = raw_cabinet(members, compression=1, blocks=blocks_with_damage)

        error = refused_extraction(path, staging)

        assert error.message == (
            f"{'ab'[broken - 1]}: the cabinet is corrupt "
            f"(cannot decompress data block {broken} of folder 0)"
        )


# ------------------------------------------------------------------ checking without writing


def directory_state(directory: Path) -> list[str]:
    return sorted(str(path.relative_to(directory)) for path in directory.rglob("*"))


@pytest.mark.parametrize("name", ["normal_2files_2folders.cab", "mszip_lzx_qtm.cab"])
def test_microsoft_cabinets_pass_the_data_check(
    fixture_cab: Callable[[str], Path], tmp_path: Path, name: str, need_tool: Tool
) -> None:
    need_tool("cabextract")
    path = tmp_path / name
    path.write_bytes(fixture_cab(name).read_bytes())
    before = directory_state(tmp_path)

    check_cabinet_data(path, read_cabinet(path, refuse_unsupported=False))

    assert directory_state(tmp_path) == before


@pytest.mark.parametrize("compress", [True, False], ids=["mszip", "stored"])
def test_builder_package_passes_the_data_check(
    tmp_path: Path, publisher: builder.Signer, compress: bool
) -> None:
    update = builder.build_update(signer=publisher, images={"CPE.nbt": 100_000})
    path = builder.build_package([update], path=tmp_path / "p.cab", compress=compress)

    check_cabinet_data(path, read_cabinet(path))

    assert directory_state(tmp_path) == ["p.cab"]


def test_data_check_decodes_blocks_no_member_uses(
    cabinet_bytes: Callable[..., bytes], tmp_path: Path, staging: Path
) -> None:
    # The member holds the first block only; the folder's second block is damaged.
    raw = bytearray(cabinet_bytes([(b"a.txt", b"hello")], blocks=[(b"hello", 5), (b"world", 5)]))
    raw[-1] ^= 0xFF
    path = tmp_path / "damaged-tail.cab"
    path.write_bytes(bytes(raw))
    listing = read_cabinet(path)

    with pytest.raises(PackageError) as caught:
        check_cabinet_data(path, listing)

    assert caught.value.message == (
        "the cabinet is corrupt (checksum mismatch in data block 1 of folder 0)"
    )
    assert [m.name for m in extract_cabinet(path, staging, listing)] == ["a.txt"]


def test_data_check_names_the_member_of_a_corrupt_mszip_block(raw_cabinet: RawCabinet) -> None:
    path = raw_cabinet(
        [(b"dir/x.nbt", b"x" * 100)], compression=1, blocks=[(b"CK\xff\xff\xff\xff", 100)]
    )

    with pytest.raises(PackageError) as caught:
        check_cabinet_data(path, read_cabinet(path))

    assert caught.value.message == (
        "dir/x.nbt: the cabinet is corrupt (cannot decompress data block 0 of folder 0)"
    )


def test_data_check_refuses_a_corrupt_lzx_folder_naming_the_member(
    fixture_cab: Callable[[str], Path], tmp_path: Path, need_tool: Tool
) -> None:
    need_tool("cabextract")
    raw = bytearray(fixture_cab("normal_2files_2folders.cab").read_bytes())
    raw[-3] ^= 0xFF
    path = tmp_path / "corrupt-lzx.cab"
    path.write_bytes(bytes(raw))

    with pytest.raises(PackageError) as caught:
        check_cabinet_data(path, read_cabinet(path))

    assert caught.value.message == (
        "lzx1.txt: the cabinet is corrupt (cannot decompress folder 1; cabextract: checksum error)"
    )
    assert directory_state(tmp_path) == ["corrupt-lzx.cab"]


def test_data_check_skips_quantum_members(
    fixture_cab: Callable[[str], Path], tmp_path: Path, need_tool: Tool
) -> None:
    cabextract = need_tool("cabextract")
    source = fixture_cab("mszip_lzx_qtm.cab")
    (quantum,) = [f for f in read_cabinet(source, refuse_unsupported=False).folders if f.index == 2]
    raw = bytearray(source.read_bytes())
    raw[quantum.data_offset + 10] ^= 0xFF  # inside the Quantum folder's first block
    path = tmp_path / "corrupt-quantum.cab"
    path.write_bytes(bytes(raw))
    listing = read_cabinet(path, refuse_unsupported=False)

    check_cabinet_data(path, listing)

    tested = subprocess.run([cabextract, "-q", "-t", str(path)], capture_output=True, check=False)
    assert tested.returncode == 1  # the damage is real: libmspack's own Quantum test fails
    assert b"qtm.txt  failed" in tested.stdout
    assert [m.compression for m in listing.members][2] == "quantum"


def test_data_check_of_lzx_without_cabextract_is_refused(
    fixture_cab: Callable[[str], Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    path = fixture_cab("normal_2files_2folders.cab")
    listing = read_cabinet(path)
    monkeypatch.setattr("portal.packaging.cabinet.cabextract.shutil.which", lambda _name: None)

    with pytest.raises(PackageError) as caught:
        check_cabinet_data(path, listing)

    assert caught.value.message == f"lzx1.txt: {LZX_NEEDS_CABEXTRACT}"


def test_data_check_of_a_replaced_cabinet_is_refused(raw_cabinet: RawCabinet) -> None:
    path = raw_cabinet()
    listing = read_cabinet(path)
    os.replace(raw_cabinet([(b"a.txt", b"HELLO")]), path)

    with pytest.raises(PackageError) as caught:
        check_cabinet_data(path, listing)

    assert caught.value.message == "the cabinet changed after it was read; read it again"


# ------------------------------------------------- signed cabinets and names without UTF flag

KNOWN_CONTENT = {
    "lzx1.txt": b"This is LZX compressed\n",
    "lzx2.txt": b"This is also LZX compressed\n",
    "mszip1.txt": b"This is compressed with MS-ZIP\n",
    "mszip2.txt": b"This also is compressed with MS-ZIP\n",
}


def test_lzx_members_of_a_signed_cabinet_are_extracted_and_checked(
    fixture_cab: Callable[[str], Path],
    tmp_path: Path,
    staging: Path,
    publisher: builder.Signer,
    need_tool: Tool,
) -> None:
    need_tool("cabextract")
    der = builder.build_catalog({"any.bin": b"any"}, signer=publisher)
    path = tmp_path / "signed.cab"
    path.write_bytes(
        builder.add_cabinet_signature(fixture_cab("normal_2files_2folders.cab").read_bytes(), der)
    )
    listing = read_cabinet(path)

    check_cabinet_data(path, listing)
    extracted = extract_cabinet(path, staging, listing)

    assert listing.signature_size == len(der)
    assert files_under(staging) == KNOWN_CONTENT
    assert {m.name: m.sha256 for m in extracted} == {
        name: hashlib.sha256(data).hexdigest() for name, data in KNOWN_CONTENT.items()
    }


def test_cabinet_hidden_in_the_signature_is_never_extracted(
    fixture_cab: Callable[[str], Path],
    cabinet_bytes: Callable[..., bytes],
    tmp_path: Path,
    staging: Path,
    need_tool: Tool,
) -> None:
    cabextract = need_tool("cabextract")
    # A DER SEQUENCE holding an OCTET STRING that is a cabinet of the same member names:
    # cabextract searches whole files, so on the file itself it would extract these too.
    hidden = cabinet_bytes([(b"lzx1.txt", b"SMUGGLED LZX content!!\n"), (b"lzx2.txt", b"x")])
    octets = b"\x04\x81" + bytes([len(hidden)]) + hidden
    der = b"\x30\x81" + bytes([len(octets)]) + octets
    path = tmp_path / "smuggling.cab"
    path.write_bytes(
        builder.add_cabinet_signature(fixture_cab("normal_2files_2folders.cab").read_bytes(), der)
    )
    listed = subprocess.run([cabextract, "-l", str(path)], capture_output=True, check=True)
    assert listed.stdout.count(b"lzx1.txt") == 2  # the hidden cabinet is there for cabextract
    listing = read_cabinet(path)

    check_cabinet_data(path, listing)
    extract_cabinet(path, staging, listing)

    assert files_under(staging) == KNOWN_CONTENT
    assert directory_state(tmp_path) == [
        "smuggling.cab",
        "staging",
        *sorted(f"staging/{name}" for name in KNOWN_CONTENT),
    ]


def test_utf8_name_without_flag_in_an_lzx_folder_is_extracted(
    fixture_cab: Callable[[str], Path], tmp_path: Path, staging: Path, need_tool: Tool
) -> None:
    need_tool("cabextract")
    raw = builder.rename_cabinet_members(
        fixture_cab("normal_2files_2folders.cab").read_bytes(),
        {b"lzx1.txt": "dossier\\été 1.txt".encode()},
    )
    path = tmp_path / "utf8-names.cab"
    path.write_bytes(raw)
    listing = read_cabinet(path)

    check_cabinet_data(path, listing)
    extracted = extract_cabinet(path, staging, listing)

    assert [m.name for m in listing.members][2] == "dossier/été 1.txt"
    assert files_under(staging) == {
        **{name: data for name, data in KNOWN_CONTENT.items() if name != "lzx1.txt"},
        "dossier/été 1.txt": b"This is LZX compressed\n",
    }
    assert extracted[2].path == staging / "dossier" / "été 1.txt"


def test_corrupt_lzx_member_with_a_utf8_name_is_named(
    fixture_cab: Callable[[str], Path], tmp_path: Path, staging: Path, need_tool: Tool
) -> None:
    need_tool("cabextract")
    raw = bytearray(
        builder.rename_cabinet_members(
            fixture_cab("normal_2files_2folders.cab").read_bytes(),
            {b"lzx1.txt": "dossier\\été 1.txt".encode()},
        )
    )
    raw[-3] ^= 0xFF
    path = tmp_path / "utf8-corrupt.cab"
    path.write_bytes(bytes(raw))
    expected = (
        "dossier/été 1.txt: the cabinet is corrupt "
        "(cannot decompress folder 1; cabextract: checksum error)"
    )

    with pytest.raises(PackageError) as caught:
        check_cabinet_data(path, read_cabinet(path))
    assert caught.value.message == expected

    assert refused_extraction(path, staging).message == expected
