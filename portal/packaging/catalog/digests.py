"""The digests a catalog member is compared by: a flat hash of the file, the
Authenticode PE image digest and the cabinet SIP digest, each read in one pass."""

from __future__ import annotations

import hashlib
import io
import struct
from collections.abc import Mapping
from pathlib import Path
from typing import IO, Any

_MEMBER_DIGESTS = frozenset({"sha1", "sha256"})
_READ_CHUNK = 1 << 20
_PE_ALIGNMENT = 8  # signing tools zero-pad an unsigned image to this before hashing it


# ---------------------------------------------------------------------------- hashing


def pe_image_digest(source: bytes | Path, algorithm: str = "sha256") -> str:
    """The Authenticode hash of a PE image (lower-case hexadecimal): the file without
    its checksum field, its certificate-table directory entry and its certificate table;
    an image without a certificate table is zero-padded to a multiple of 8 bytes first,
    as Windows' signing tools hash it.

    Raises ValueError, saying why, when ``source`` is not a PE image.
    """
    if isinstance(source, Path):
        with open(source, "rb") as handle:
            return _pe_digests(handle, [algorithm])[algorithm]
    return _pe_digests(io.BytesIO(source), [algorithm])[algorithm]


def cabinet_digest(source: bytes | Path, algorithm: str = "sha256") -> str:
    """The cabinet subject interface's hash of a cabinet (lower-case hexadecimal).

    An unsigned cabinet is hashed without its reserved header field (bytes 4 to 8); a
    signed one also without the set index, the reserve sizes and the signature record
    (bytes 34 to 56) and without the signature after the cabinet's data.

    Raises ValueError, saying why, when ``source`` is not a cabinet.
    """
    if isinstance(source, Path):
        with open(source, "rb") as handle:
            return _cabinet_digests(handle, [algorithm])[algorithm]
    return _cabinet_digests(io.BytesIO(source), [algorithm])[algorithm]


class _FileHasher:
    """File digests by name, kind ("flat", "pe" or "cabinet") and algorithm, each file read
    once per kind; SHA-1 rides along when SHA-1 twins need pairing."""

    def __init__(
        self, files: Mapping[str, Path], known_sha256: Mapping[str, str], *, with_sha1: bool
    ):
        self._files = files
        self._known = known_sha256
        self._with_sha1 = with_sha1
        self._cache: dict[tuple[str, str, str], str] = {}
        self._refused: dict[tuple[str, str], ValueError] = {}

    def digest(self, name: str, kind: str, algorithm: str) -> str:
        if kind == "flat" and algorithm == "sha256" and name in self._known:
            return self._known[name].lower()
        cached = self._cache.get((name, kind, algorithm))
        if cached is not None:
            return cached
        if (name, kind) in self._refused:
            raise self._refused[(name, kind)]
        algorithms = {algorithm} | ({"sha1"} if self._with_sha1 else set())
        reader = {"pe": _pe_digests, "cabinet": _cabinet_digests}.get(kind, _flat_digests)
        with open(self._files[name], "rb") as handle:
            try:
                digests = reader(handle, algorithms)
            except ValueError as error:
                self._refused[(name, kind)] = error
                raise
        for each, value in digests.items():
            self._cache[(name, kind, each)] = value
        return digests[algorithm]


def _hash_ranges(
    handle: IO[bytes], algorithms: set[str] | list[str], ranges: list[tuple[int, int]]
) -> dict[str, Any]:
    """Hash the (start, end) byte ranges of ``handle`` in order."""
    digests = {name: hashlib.new(name) for name in algorithms}
    for start, end in ranges:
        handle.seek(start)
        remaining = end - start
        while remaining > 0:
            chunk = handle.read(min(remaining, _READ_CHUNK))
            if not chunk:
                break
            for digest in digests.values():
                digest.update(chunk)
            remaining -= len(chunk)
    return digests


def _flat_digests(handle: IO[bytes], algorithms: set[str] | list[str]) -> dict[str, str]:
    digests = {name: hashlib.new(name) for name in algorithms}
    while chunk := handle.read(_READ_CHUNK):
        for digest in digests.values():
            digest.update(chunk)
    return {name: digest.hexdigest() for name, digest in digests.items()}


def _pe_digests(handle: IO[bytes], algorithms: set[str] | list[str]) -> dict[str, str]:
    handle.seek(0, io.SEEK_END)
    size = handle.tell()
    skips = _pe_skipped_ranges(handle, size)
    ranges = []
    position = 0
    for start, length in [*skips, (size, 0)]:
        ranges.append((position, start))
        position = start + length
    digests = _hash_ranges(handle, algorithms, ranges)
    if len(skips) == 2 and size % _PE_ALIGNMENT:  # no certificate table: an unsigned image
        padding = b"\0" * (_PE_ALIGNMENT - size % _PE_ALIGNMENT)
        for digest in digests.values():
            digest.update(padding)
    return {name: digest.hexdigest() for name, digest in digests.items()}


# MS-CAB CFHEADER: signature "MSCF", reserved1 at 4, cbCabinet at 8, coffFiles at 16, flags at
# 30, the reserve sizes at 36 when flags has RESERVE_PRESENT; an Authenticode signature's
# record sits in a 20-byte header reserve, its offset at 44 and its length at 48.
_CAB_FLAG_RESERVE_PRESENT = 0x0004
_CAB_SIGNATURE_RESERVE = 20


def _cabinet_digests(handle: IO[bytes], algorithms: set[str] | list[str]) -> dict[str, str]:
    handle.seek(0, io.SEEK_END)
    size = handle.tell()
    handle.seek(0)
    header = handle.read(60)
    if len(header) < 36 or header[:4] != b"MSCF":
        raise ValueError("no MSCF header")
    (flags,) = struct.unpack_from("<H", header, 30)
    signature_at = 0
    if flags & _CAB_FLAG_RESERVE_PRESENT and len(header) >= 60:
        (reserve,) = struct.unpack_from("<H", header, 36)
        if reserve == _CAB_SIGNATURE_RESERVE:
            signature_at, signature_size = struct.unpack_from("<II", header, 44)
            if signature_at and (signature_at > size or signature_size == 0):
                raise ValueError("the cabinet's signature lies outside the file")
    ranges = [(0, 4), (8, 34), (56, signature_at)] if signature_at else [(0, 4), (8, size)]
    digests = _hash_ranges(handle, algorithms, ranges)
    return {name: digest.hexdigest() for name, digest in digests.items()}


def _pe_skipped_ranges(handle: IO[bytes], size: int) -> list[tuple[int, int]]:
    """(start, length) of what Authenticode leaves out of a PE image's hash, in order."""

    def read(offset: int, length: int) -> bytes:
        handle.seek(offset)
        data = handle.read(length)
        if len(data) != length:
            raise ValueError("the file ends inside its PE headers")
        return data

    if size < 64 or read(0, 2) != b"MZ":
        raise ValueError("no MZ header")
    (pe_offset,) = struct.unpack("<I", read(0x3C, 4))
    if pe_offset + 24 > size or read(pe_offset, 4) != b"PE\0\0":
        raise ValueError("no PE header")
    (optional_size,) = struct.unpack("<H", read(pe_offset + 20, 2))
    optional = pe_offset + 24
    (magic,) = struct.unpack("<H", read(optional, 2))
    if magic == 0x10B:  # PE32
        count_at, directory_at = 92, 96
    elif magic == 0x20B:  # PE32+
        count_at, directory_at = 108, 112
    else:
        raise ValueError(f"unknown optional header magic {magic:#x}")
    entry = optional + directory_at + 4 * 8  # the certificate table is data directory 4
    if optional_size < directory_at + 5 * 8:
        raise ValueError("the PE header has no certificate table entry")
    (count,) = struct.unpack("<I", read(optional + count_at, 4))
    if count < 5:
        raise ValueError("the PE header has no certificate table entry")
    address, length = struct.unpack("<II", read(entry, 8))
    skips = [(optional + 64, 4), (entry, 8)]  # the checksum, the directory entry
    if length:
        if address < optional + optional_size or address + length > size:
            raise ValueError("the certificate table lies outside the file")
        skips.append((address, length))
    return skips
