"""Fixtures for the package-reading tests: signers, staging directories, raw cabinets."""

from __future__ import annotations

import os
import shutil
import struct
import zlib
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest

FIXTURES = Path(__file__).resolve().parents[3].parent / "shared" / "fixtures" / "cab"
if not FIXTURES.is_dir():  # CI lays shared/ beside the clone, a session beside /work/main
    FIXTURES = Path("/work/shared/fixtures/cab")

RawCabinet = Callable[..., bytes]


def require_tool(name: str) -> str:
    """The path of an external program; skip without it unless services are required."""
    found = shutil.which(name)
    if found:
        return found
    reason = f"{name} is not installed (Debian package {name})"
    if os.environ.get("DEVICEUPDATE_TEST_SERVICES") == "required":
        pytest.fail(reason)
    pytest.skip(reason)


@pytest.fixture
def staging(tmp_path: Path) -> Path:
    directory = tmp_path / "staging"
    directory.mkdir()
    return directory


@pytest.fixture
def fixture_cab() -> Callable[[str], Path]:
    def find(name: str) -> Path:
        path = FIXTURES / name
        if not path.is_file():
            pytest.fail(f"missing shared fixture {path}")
        return path

    return find


def reference_checksum(data: bytes, seed: int = 0) -> int:
    """The CFDATA checksum written out word by word, independent of the reader's version."""
    checksum = seed
    whole = len(data) - len(data) % 4
    for index in range(0, whole, 4):
        checksum ^= struct.unpack_from("<I", data, index)[0]
    tail = 0
    for byte in data[whole:]:
        tail = (tail << 8) | byte
    return checksum ^ tail


def mszip_blocks(chunks: Sequence[bytes], *, chain: bool = True) -> list[tuple[bytes, int]]:
    """MSZIP blocks for ``chunks``; with ``chain`` each block may refer to the previous one."""
    blocks = []
    history = b""
    for chunk in chunks:
        if chain and history:
            compressor = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS, zdict=history)
        else:
            compressor = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
        blocks.append((b"CK" + compressor.compress(chunk) + compressor.flush(), len(chunk)))
        history = chunk
    return blocks


def build_raw_cabinet(
    members: Sequence[tuple[bytes, bytes]] = ((b"a.txt", b"hello"),),
    *,
    compression: int = 0,
    blocks: Sequence[tuple[bytes, int]] | None = None,
    sizes: dict[int, int] | None = None,
    offsets: dict[int, int] | None = None,
    flags: int = 0,
    cabinet_index: int = 0,
    file_count: int | None = None,
    folder_indexes: dict[int, int] | None = None,
    attribs: int = 0x80,
    checksums: bool = True,
    block_size: int = 32768,
    header_reserve: bytes | None = None,
    trailer: bytes = b"",
) -> bytes:
    """A one-folder cabinet written field by field, so each field can be made hostile.

    ``members`` are (raw name, content) pairs stored in order; ``blocks`` replaces the data
    blocks (payload, declared uncompressed size); ``sizes``, ``offsets`` and
    ``folder_indexes`` override a member's CFFILE fields by position. ``header_reserve``
    sets the reserve flag and writes those bytes as the header reserve (see
    ``signature_record``); ``trailer`` is appended after the cabinet's declared end.
    """
    data = b"".join(content for _name, content in members)
    if blocks is None:
        chunks = [data[i : i + block_size] for i in range(0, len(data), block_size)]
        blocks = [(chunk, len(chunk)) for chunk in chunks]
    file_table = b""
    position = 0
    for index, (name, content) in enumerate(members):
        size = (sizes or {}).get(index, len(content))
        offset = (offsets or {}).get(index, position)
        folder = (folder_indexes or {}).get(index, 0)
        file_table += struct.pack("<IIHHHH", size, offset, folder, 0x5821, 0x6000, attribs)
        file_table += name + b"\0"
        position += len(content)
    reserve = b""
    if header_reserve is not None:
        flags |= 0x0004
        reserve = struct.pack("<HBB", len(header_reserve), 0, 0) + header_reserve
    header_size = 36 + len(reserve)
    folder_size = 8
    files_offset = header_size + folder_size
    data_offset = files_offset + len(file_table)
    data_area = b""
    for payload, uncompressed in blocks:
        sizes_field = struct.pack("<HH", len(payload), uncompressed)
        checksum = reference_checksum(sizes_field, reference_checksum(payload)) if checksums else 0
        data_area += struct.pack("<I", checksum) + sizes_field + payload
    total = data_offset + len(data_area)
    header = struct.pack(
        "<4sIIIIIBBHHHHH",
        b"MSCF",
        0,
        total,
        0,
        files_offset,
        0,
        3,
        1,
        1,
        len(members) if file_count is None else file_count,
        flags,
        0x1234,
        cabinet_index,
    )
    folder_entry = struct.pack("<IHH", data_offset, len(blocks), compression)
    return header + reserve + folder_entry + file_table + data_area + trailer


def signature_record(offset: int, length: int, *, marker: bytes = b"\0\0\x10\0") -> bytes:
    """The 20-byte Authenticode header reserve signtool and osslsigncode write."""
    return marker + struct.pack("<II", offset, length) + bytes(8)


@pytest.fixture
def raw_cabinet(tmp_path: Path) -> Callable[..., Path]:
    """Write ``build_raw_cabinet(**kwargs)`` to a file and return its path."""
    counter = iter(range(1_000_000))

    def write(*args: object, **kwargs: object) -> Path:
        path = tmp_path / f"raw-{next(counter)}.cab"
        path.write_bytes(build_raw_cabinet(*args, **kwargs))  # type: ignore[arg-type]
        return path

    return write


@pytest.fixture
def cabinet_bytes() -> Callable[..., bytes]:
    """``build_raw_cabinet`` itself, for tests that edit the bytes before writing them."""
    return build_raw_cabinet


@pytest.fixture
def need_tool() -> Callable[[str], str]:
    """``require_tool``: the path of a program, or a skip (a failure when services are required)."""
    return require_tool


@pytest.fixture
def mszip() -> Callable[..., list[tuple[bytes, int]]]:
    """``mszip_blocks``: MSZIP data blocks for raw cabinets."""
    return mszip_blocks


@pytest.fixture
def signature_reserve() -> Callable[..., bytes]:
    """``signature_record``: an Authenticode header reserve for raw cabinets."""
    return signature_record
