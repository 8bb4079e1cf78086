"""In-process decoding: ``extract_cabinet`` writes the members into an empty staging
directory, streaming and hashing as it goes; ``check_cabinet_data`` decodes the same data
without writing it. None and MSZIP folders are decoded here with ``zlib``; LZX members
go the ``cabextract`` path."""

from __future__ import annotations

import contextlib
import mmap
import tempfile
import zlib
from collections.abc import Iterator
from pathlib import Path

from portal.packaging.cabinet.cabextract import (
    _cabextract_input,
    _cabextract_program,
    _extract_with_cabextract,
    _test_with_cabextract,
)
from portal.packaging.cabinet.format import (
    _CFDATA,
    _DECODED_HERE,
    SUPPORTED_COMPRESSION,
    CabinetFolder,
    CabinetListing,
    CabinetMember,
    Compression,
    ExtractedMember,
    _unsupported,
)
from portal.packaging.cabinet.headers import _mapped
from portal.packaging.cabinet.staging import _empty_directory, _Sink, _Staging
from portal.packaging.errors import PackageError

# ------------------------------------------------------------------------- extracting


def extract_cabinet(
    path: Path | str,
    dest_dir: Path | str,
    listing: CabinetListing,
    *,
    cabextract_timeout: float = 600.0,
) -> list[ExtractedMember]:
    """Write every member of a listed cabinet into the empty ``dest_dir``, hashing as it goes.

    On any refusal ``dest_dir`` is left empty again.
    """
    path = Path(path)
    dest = Path(dest_dir)
    if any(dest.iterdir()):
        raise ValueError(f"staging directory {dest} is not empty")
    for member in listing.members:
        if member.compression not in SUPPORTED_COMPRESSION:
            raise _unsupported(member.name, member.compression)
    lzx = [m for m in listing.members if m.compression is Compression.LZX]
    program = _cabextract_program(lzx)
    try:
        with _Staging(dest, [m.name for m in listing.members]) as staging:
            extracted = _extract(path, staging, listing, program, cabextract_timeout)
    except BaseException:
        _empty_directory(dest)
        raise
    return [extracted[member.name] for member in listing.members]


def check_cabinet_data(
    path: Path | str, listing: CabinetListing, *, cabextract_timeout: float = 600.0
) -> None:
    """Decode all of a listed cabinet's data without writing any of it; refuse what is corrupt.

    Every block of every none and MSZIP folder is decoded here (checksums, sizes, deflate
    streams); LZX members are tested with ``cabextract -t``. Quantum members are skipped:
    they can be listed, never decoded.
    """
    path = Path(path)
    lzx = [m for m in listing.members if m.compression is Compression.LZX]
    program = _cabextract_program(lzx)
    by_folder = _members_by_folder(listing.members)
    with _mapped(path, listing) as data:
        for folder in listing.folders:
            if folder.compression in _DECODED_HERE:
                members = by_folder.get(folder.index, [])
                for _chunk in _folder_chunks(data, folder, listing.block_reserve, members):
                    pass
        if program is None:
            return

        def scratch() -> Path:
            return Path(tempfile.mkdtemp(prefix=".cabextract-", dir=path.parent))

        with _cabextract_input(path, data, listing, scratch) as source:
            _test_with_cabextract(program, source, lzx, cabextract_timeout, listing)


def _members_by_folder(members: tuple[CabinetMember, ...]) -> dict[int, list[CabinetMember]]:
    by_folder: dict[int, list[CabinetMember]] = {}
    for member in members:
        by_folder.setdefault(member.folder, []).append(member)
    return by_folder


def _extract(
    path: Path,
    staging: _Staging,
    listing: CabinetListing,
    program: str | None,
    timeout: float,
) -> dict[str, ExtractedMember]:
    extracted: dict[str, ExtractedMember] = {}
    by_folder = _members_by_folder(listing.members)
    with _mapped(path, listing) as data:
        for folder in listing.folders:
            members = by_folder.get(folder.index, [])
            if members and folder.compression in _DECODED_HERE:
                for sink in _decode_folder(data, folder, listing.block_reserve, members, staging):
                    extracted[sink.name] = sink.result
        if program is not None:
            lzx = [m for m in listing.members if m.compression is Compression.LZX]
            with _cabextract_input(path, data, listing, staging.private_directory) as source:
                for result in _extract_with_cabextract(
                    program, source, staging, lzx, timeout, listing
                ):
                    extracted[result.name] = result
    return extracted


def _decode_folder(
    data: mmap.mmap,
    folder: CabinetFolder,
    reserve: int,
    members: list[CabinetMember],
    staging: _Staging,
) -> list[_Sink]:
    """Decode one none/MSZIP folder block by block and hand each member its byte range.

    Members never overlap (``read_cabinet`` refuses that), so at most one file is open.
    """
    pending = sorted(members, key=lambda m: (m.offset, m.size))
    end = max(m.offset + m.size for m in pending)
    done: list[_Sink] = []
    current: _Sink | None = None
    position = 0
    opened = 0
    try:
        # Trailing blocks past the last member are never decoded: nothing would use them.
        blocks = _folder_chunks(data, folder, reserve, members) if end else iter(())
        for chunk in blocks:
            chunk_end = position + len(chunk)
            while True:
                if current is None:
                    if opened == len(pending) or pending[opened].offset >= chunk_end:
                        break
                    current = _Sink(staging, pending[opened])
                    opened += 1
                start = max(current.offset + current.written, position)
                stop = min(current.offset + current.size, chunk_end)
                if stop > start:
                    current.write(chunk[start - position : stop - position])
                if current.written < current.size:
                    break  # the member goes on in the next block
                current.close()
                done.append(current)
                current = None
            position = chunk_end
            if position >= end:
                break
        if current is not None:
            current.close()  # raises: the folder's data ended inside this member
        # Empty members sitting at the very end of the folder's data.
        for member in pending[opened:]:
            current = _Sink(staging, member)
            current.close()
            done.append(current)
            current = None
    finally:
        if current is not None:
            with contextlib.suppress(PackageError):
                current.close()
    return done


class _BadBlock(Exception):
    """A data block that does not decode; ``_folder_chunks`` names the member it holds."""

    def __init__(self, problem: str, start: int, length: int, *, names_member: bool = True):
        super().__init__(problem)
        self.problem = problem
        self.start = start  # the block's first byte in the folder's uncompressed data
        self.length = length  # the uncompressed size its header declares
        self.names_member = names_member


def _folder_chunks(
    data: mmap.mmap, folder: CabinetFolder, reserve: int, members: list[CabinetMember]
) -> Iterator[bytes]:
    """The folder's decoded blocks; a corrupt block is refused naming the member it holds."""
    try:
        yield from _decode_blocks(data, folder, reserve)
    except _BadBlock as bad:
        member = None
        if bad.names_member:
            member = next(
                (
                    m.name
                    for m in sorted(members, key=lambda m: m.offset)
                    if m.size
                    and m.offset < bad.start + bad.length
                    and bad.start < m.offset + m.size
                ),
                None,
            )
        raise PackageError(f"the cabinet is corrupt ({bad.problem})", member=member) from None


def _decode_blocks(data: mmap.mmap, folder: CabinetFolder, reserve: int) -> Iterator[bytes]:
    offset = folder.data_offset
    position = 0
    history = b""
    for number in range(folder.block_count):
        checksum, compressed, uncompressed = _CFDATA.unpack_from(data, offset)
        header = bytes(data[offset + 4 : offset + 8])
        offset += _CFDATA.size + reserve
        payload = data[offset : offset + compressed]
        offset += compressed
        where = f"data block {number} of folder {folder.index}"
        start = position
        position += uncompressed
        if checksum and _checksum(header, _checksum(payload, 0)) != checksum:
            raise _BadBlock(f"checksum mismatch in {where}", start, uncompressed)
        if folder.compression is Compression.NONE:
            yield payload
            continue
        if payload[:2] != b"CK":
            raise _BadBlock(f"bad MSZIP signature in {where}", start, uncompressed)
        # Each MSZIP block is a deflate stream primed with the previous block's output.
        inflater = (
            zlib.decompressobj(-zlib.MAX_WBITS, zdict=history)
            if history
            else zlib.decompressobj(-zlib.MAX_WBITS)
        )
        try:
            out = inflater.decompress(payload[2:], uncompressed)
            overflow = bool(inflater.unconsumed_tail) or bool(inflater.decompress(b"", 1))
        except zlib.error:
            raise _BadBlock(f"cannot decompress {where}", start, uncompressed) from None
        if overflow:
            # A bomb rather than damage: it concerns the block, whichever members it holds.
            raise _BadBlock(
                f"more bytes out than {where} declares", start, uncompressed, names_member=False
            )
        if len(out) != uncompressed:
            raise _BadBlock(f"short {where}", start, uncompressed)
        history = out
        yield out


def _checksum(data: bytes, seed: int) -> int:
    """The cabinet CFDATA checksum: XOR of little-endian 32-bit words, odd tail quirk.

    The words are XOR-folded as one big integer, halving its width each step, so a 32 KiB
    block costs a dozen big-integer operations instead of 8192 Python iterations.
    """
    words = len(data) // 4
    value = int.from_bytes(data[: words * 4], "little")
    width = words
    while width > 1:
        half = (width + 1) // 2
        shift = 32 * half
        value = (value >> shift) ^ (value & ((1 << shift) - 1))
        width = half
    tail = data[words * 4 :]
    extra = 0
    for byte in tail:  # the format reads the 1-3 tail bytes big-endian
        extra = (extra << 8) | byte
    return seed ^ value ^ extra
