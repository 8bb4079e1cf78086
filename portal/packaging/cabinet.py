"""Safe reading of Microsoft Cabinet files: every refusal is decided from the headers first.

``read_cabinet`` parses CFHEADER, CFFOLDER, CFFILE and the CFDATA block headers with
``struct`` and refuses anything the package contract forbids before a byte is decompressed.
``extract_cabinet`` then writes the members into an empty staging directory, streaming and
hashing as it goes; ``check_cabinet_data`` decodes the same data without writing it. None and
MSZIP folders are decoded here with ``zlib``; LZX folders are handed to Debian's
``cabextract`` (libmspack), because no maintained pure-Python LZX decoder exists (cabarchive
refuses LZX).

An Authenticode-signed cabinet (signtool, osslsigncode) keeps its PKCS #7 signature after
the cabinet's declared end, pointed at by a record in the header reserve;
``read_cabinet_signature`` returns it for the caller to describe.
"""

from __future__ import annotations

import contextlib
import enum
import errno
import hashlib
import itertools
import mmap
import os
import re
import shutil
import stat
import struct
import subprocess
import tempfile
import unicodedata
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from portal.packaging.errors import PackageError, escaped_name

DEFAULT_MAX_MEMBER_SIZE = 1 << 30
DEFAULT_MAX_TOTAL_SIZE = 4 << 30
DEFAULT_MAX_MEMBERS = 10_000
MAX_NAME_LENGTH = 255

# Cabinet format constants (MS-CAB).
_SIGNATURE = b"MSCF"
_CFHEADER = struct.Struct("<4sIIIIIBBHHHHH")
_CFHEADER_RESERVE = struct.Struct("<HBB")
_CFFOLDER = struct.Struct("<IHH")
_CFFILE = struct.Struct("<IIHHHH")
_CFDATA = struct.Struct("<IHH")
_FLAG_PREV_CABINET = 0x0001
_FLAG_NEXT_CABINET = 0x0002
_FLAG_RESERVE_PRESENT = 0x0004
_IFOLDER_CONTINUED_FROM_PREV = 0xFFFD  # 0xFFFD..0xFFFF all mean "spans another cabinet"
_ATTR_NAME_IS_UTF = 0x80
_MAX_BLOCK_UNCOMPRESSED = 32768
_MAX_BLOCK_COMPRESSED = 32768 + 6144
# A CFFILE name is at most 256 bytes with its NUL; reading further only serves to say
# "too long" for a hostile header, so stop at a small multiple of that.
_MAX_RAW_NAME_BYTES = 1024
_DRIVE_LETTER = re.compile(r"^[A-Za-z]:")
_COPY_CHUNK = 1 << 20
# The Authenticode record osslsigncode and signtool put at the start of a 20-byte header
# reserve: a marker, then the signature's file offset (the cabinet's declared size) and its
# length, then 8 zero bytes. The signature is DER PKCS #7 padded with zeros to 8 bytes.
_SIGNATURE_RECORD = struct.Struct("<4sII")
_SIGNATURE_MARKER = b"\0\0\x10\0"
_SIGNATURE_ALIGNMENT = 8
_OS_PROBLEMS = {
    errno.ENOENT: "no such file",
    errno.ENOTDIR: "no such file",
    errno.EISDIR: "is a directory",
    errno.EACCES: "permission denied",
    errno.EPERM: "permission denied",
}
# "  NAME  OK        MD5" or "  NAME  failed (REASON)": one line per member of ``cabextract -t``.
_CABEXTRACT_TEST_LINE = re.compile(
    r"^  (?P<name>.+)  (?:OK +[0-9a-f]{32}|failed \((?P<reason>.*)\))$"
)

LZX_NEEDS_CABEXTRACT = (
    "LZX-compressed packages need the cabextract program (Debian package 'cabextract'), "
    "which is not installed"
)


class Compression(enum.StrEnum):
    NONE = "none"
    MSZIP = "mszip"
    QUANTUM = "quantum"
    LZX = "lzx"


_COMPRESSION_TYPES = {
    0: Compression.NONE,
    1: Compression.MSZIP,
    2: Compression.QUANTUM,
    3: Compression.LZX,
}
SUPPORTED_COMPRESSION = frozenset({Compression.NONE, Compression.MSZIP, Compression.LZX})
_DECODED_HERE = frozenset({Compression.NONE, Compression.MSZIP})


@dataclass(frozen=True)
class CabinetFolder:
    index: int
    compression: Compression
    data_offset: int
    block_count: int
    uncompressed_size: int  # the sum of the CFDATA headers' uncompressed sizes


@dataclass(frozen=True)
class CabinetMember:
    name: str  # normalised: "/" separators, validated
    size: int  # as declared in the CFFILE header
    folder: int
    offset: int  # start within the folder's uncompressed data
    compression: Compression


@dataclass(frozen=True)
class CabinetListing:
    path: Path
    file_size: int
    file_identity: tuple[int, int, int]  # (st_dev, st_ino, st_mtime_ns) when read
    block_reserve: int
    folders: tuple[CabinetFolder, ...]
    members: tuple[CabinetMember, ...]
    # An Authenticode signature after the cabinet: where its DER starts (the cabinet's
    # declared size) and its DER length, without the zero padding the tools add.
    signature_offset: int | None = None
    signature_size: int = 0

    @property
    def total_size(self) -> int:
        return sum(member.size for member in self.members)


@dataclass(frozen=True)
class ExtractedMember:
    name: str
    path: Path
    size: int
    sha256: str


# --------------------------------------------------------------------------- reading


def read_cabinet(
    path: Path | str,
    *,
    max_member_size: int = DEFAULT_MAX_MEMBER_SIZE,
    max_total_size: int = DEFAULT_MAX_TOTAL_SIZE,
    max_members: int = DEFAULT_MAX_MEMBERS,
    refuse_unsupported: bool = True,
) -> CabinetListing:
    """List a cabinet from its headers alone, refusing anything the contract forbids.

    With ``refuse_unsupported=False`` a Quantum folder is listed instead of refused (so a
    caller can first say "no device update in the package"); ``extract_cabinet`` still
    refuses it before writing anything.
    """
    path = Path(path)
    descriptor = _open_cabinet(path)
    try:
        info = os.fstat(descriptor)
        if info.st_size < len(_SIGNATURE):
            raise PackageError("the file is not a Microsoft cabinet")
        with _map(path, descriptor) as data:
            return _parse(
                data,
                path=path,
                identity=(info.st_dev, info.st_ino, info.st_mtime_ns),
                max_member_size=max_member_size,
                max_total_size=max_total_size,
                max_members=max_members,
                refuse_unsupported=refuse_unsupported,
            )
    finally:
        os.close(descriptor)


def read_cabinet_signature(listing: CabinetListing) -> bytes | None:
    """The DER bytes of the cabinet's Authenticode signature, or None for an unsigned cabinet.

    The file must still be the one ``read_cabinet`` listed.
    """
    if listing.signature_offset is None:
        return None
    with _mapped(listing.path, listing) as data:
        start = listing.signature_offset
        return bytes(data[start : start + listing.signature_size])


def lzx_support() -> str | None:
    """None when LZX folders can be decoded here, else the one-line notice saying why not."""
    return None if shutil.which("cabextract") else LZX_NEEDS_CABEXTRACT


def _display_name(path: Path) -> str:
    """Only the file's own name goes into a refusal: staging folders are nobody's business."""
    name = path.name or str(path)
    return name if name.isprintable() else escaped_name(os.fsencode(name))


def _open_cabinet(path: Path) -> int:
    """Open a cabinet read-only; any problem becomes a one-line refusal naming the file."""
    try:
        # O_NONBLOCK: a FIFO given as a cabinet must not hang the import waiting for a writer.
        descriptor = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK)
    except OSError as error:
        raise _cannot_read(path, error) from None
    mode = os.fstat(descriptor).st_mode
    if not stat.S_ISREG(mode):
        os.close(descriptor)
        problem = "is a directory" if stat.S_ISDIR(mode) else "not a regular file"
        raise PackageError(f"cannot read the cabinet {_display_name(path)}: {problem}")
    return descriptor


def _cannot_read(path: Path, error: OSError) -> PackageError:
    problem = _OS_PROBLEMS.get(error.errno or 0) or (error.strerror or "input/output error")
    return PackageError(f"cannot read the cabinet {_display_name(path)}: {problem.lower()}")


@contextlib.contextmanager
def _map(path: Path, descriptor: int) -> Iterator[mmap.mmap]:
    try:
        data = mmap.mmap(descriptor, 0, access=mmap.ACCESS_READ)
    except OSError as error:
        raise _cannot_read(path, error) from None
    with data:
        yield data


@contextlib.contextmanager
def _mapped(path: Path, listing: CabinetListing) -> Iterator[mmap.mmap]:
    """Map the file ``listing`` describes, refusing it if it was replaced or changed since."""
    descriptor = _open_cabinet(path)
    try:
        info = os.fstat(descriptor)
        if (info.st_dev, info.st_ino, info.st_mtime_ns) != listing.file_identity or (
            info.st_size != listing.file_size
        ):
            raise PackageError("the cabinet changed after it was read; read it again")
        with _map(path, descriptor) as data:
            yield data
    finally:
        os.close(descriptor)


def _parse(
    data: mmap.mmap,
    *,
    path: Path,
    identity: tuple[int, int, int],
    max_member_size: int,
    max_total_size: int,
    max_members: int,
    refuse_unsupported: bool,
) -> CabinetListing:
    size = len(data)
    if data[: len(_SIGNATURE)] != _SIGNATURE:
        raise PackageError("the file is not a Microsoft cabinet")
    if size < _CFHEADER.size:
        raise PackageError("the cabinet is truncated (incomplete header)")
    (
        _sig,
        _reserved1,
        cabinet_size,
        _reserved2,
        files_offset,
        _reserved3,
        _version_minor,
        version_major,
        folder_count,
        file_count,
        flags,
        _set_id,
        cabinet_index,
    ) = _CFHEADER.unpack_from(data, 0)
    if version_major != 1:
        raise PackageError(f"cabinet format version {version_major} is not supported")
    if flags & (_FLAG_PREV_CABINET | _FLAG_NEXT_CABINET):
        raise PackageError(
            "the cabinet is part of a split cabinet set (it continues in another file); "
            "split sets are not supported, rebuild the package as one cabinet"
        )
    if cabinet_index != 0:
        raise PackageError(
            f"the cabinet is corrupt (its header numbers it {cabinet_index} in a cabinet set "
            "but it links to no other cabinet)"
        )
    if cabinet_size > size:
        raise PackageError(
            f"the cabinet is truncated: its header declares {cabinet_size} bytes, "
            f"the file has {size}"
        )

    offset = _CFHEADER.size
    folder_reserve = block_reserve = 0
    record: tuple[int, int] | None = None
    if flags & _FLAG_RESERVE_PRESENT:
        _need(size, offset, _CFHEADER_RESERVE.size, "header")
        header_reserve, folder_reserve, block_reserve = _CFHEADER_RESERVE.unpack_from(data, offset)
        offset += _CFHEADER_RESERVE.size
        _need(size, offset, header_reserve, "header")
        record = _signature_record(data, offset, header_reserve)
        offset += header_reserve
    signature_offset, signature_size = _locate_signature(data, size, cabinet_size, record)
    if file_count > max_members:
        raise PackageError(
            f"the cabinet has {file_count} members, more than the limit of {max_members}"
        )

    raw_folders: list[tuple[int, int, int]] = []
    for _ in range(folder_count):
        _need(size, offset, _CFFOLDER.size, "folder table")
        raw_folders.append(_CFFOLDER.unpack_from(data, offset))
        offset += _CFFOLDER.size + folder_reserve

    raw_members = _read_file_table(data, size, files_offset, file_count)
    _check_names_and_sizes(
        raw_members, max_member_size=max_member_size, max_total_size=max_total_size
    )
    folders: list[CabinetFolder] = []
    for index, (data_offset, block_count, type_compress) in enumerate(raw_folders):
        compression = _COMPRESSION_TYPES.get(type_compress & 0x000F)
        if compression is None:
            first = next((name for name, _s, _o, f in raw_members if f == index), None)
            raise PackageError(
                f"folder {index} uses unknown compression type {type_compress & 0x000F}",
                member=first,
            )
        uncompressed = _walk_blocks(
            data, size, data_offset, block_count, block_reserve, compression, index
        )
        folders.append(CabinetFolder(index, compression, data_offset, block_count, uncompressed))

    members = _place_members(raw_members, folders, refuse_unsupported=refuse_unsupported)
    return CabinetListing(
        path=path,
        file_size=size,
        file_identity=identity,
        block_reserve=block_reserve,
        folders=tuple(folders),
        members=tuple(members),
        signature_offset=signature_offset,
        signature_size=signature_size,
    )


def _signature_record(data: mmap.mmap, offset: int, length: int) -> tuple[int, int] | None:
    """(offset, length) from an Authenticode record in the header reserve, if there is one."""
    if length < _SIGNATURE_RECORD.size:
        return None
    marker, signature_offset, signature_length = _SIGNATURE_RECORD.unpack_from(data, offset)
    if marker != _SIGNATURE_MARKER or (signature_offset, signature_length) == (0, 0):
        return None  # space reserved for a signature, or a reserve used for something else
    return signature_offset, signature_length


def _locate_signature(
    data: mmap.mmap, size: int, cabinet_size: int, record: tuple[int, int] | None
) -> tuple[int | None, int]:
    """Accept bytes after the cabinet only if they are exactly its signature.

    cabextract searches the whole file for cabinets, so bytes after this one could smuggle
    in a second cabinet; no tool that makes packages leaves any other.
    Returns (signature offset, DER length), or (None, 0) for an unsigned cabinet.
    """
    if record is not None:
        start, length = record
        end = start + length
        if start == cabinet_size:
            if end > size:
                raise PackageError(
                    f"the cabinet is truncated: its signature ends at byte {end}, "
                    f"the file has {size}"
                )
            if end < size:
                raise PackageError(
                    f"{size - end} bytes of unexpected data after the cabinet's signature"
                )
            return start, _signature_der_size(data, start, length)
        if cabinet_size == size:
            raise PackageError(
                "the cabinet is corrupt (its signature record does not point after the cabinet)"
            )
    if cabinet_size < size:
        raise PackageError(f"{size - cabinet_size} bytes of unexpected data after the cabinet")
    return None, 0


def _signature_der_size(data: mmap.mmap, start: int, length: int) -> int:
    """The length of the DER element at ``start``, which zero padding must fill up to 8 bytes."""
    head = bytes(data[start : start + min(length, 6)])
    der = -1
    if len(head) >= 2 and head[0] == 0x30:  # a SEQUENCE, as every PKCS #7 ContentInfo is
        if head[1] < 0x80:
            der = 2 + head[1]
        elif 0x81 <= head[1] <= 0x84 and len(head) >= 2 + (head[1] & 0x7F):
            digits = head[1] & 0x7F
            der = 2 + digits + int.from_bytes(head[2 : 2 + digits], "big")
    if der < 0 or der > length:
        raise PackageError("the cabinet is corrupt (its signature is not DER-encoded)")
    # The padding's length first, so that a hostile record never makes this copy a large slice.
    padding = length - der
    if padding >= _SIGNATURE_ALIGNMENT or any(data[start + der : start + length]):
        raise PackageError("the cabinet is corrupt (unexpected bytes after its signature)")
    return der


def _need(size: int, offset: int, length: int, what: str) -> None:
    if offset + length > size:
        raise PackageError(f"the cabinet is truncated (incomplete {what})")


def _read_file_table(
    data: mmap.mmap, size: int, offset: int, count: int
) -> list[tuple[str, int, int, int]]:
    """Return (normalised name, size, folder offset, folder index) per CFFILE entry."""
    entries: list[tuple[str, int, int, int]] = []
    for _ in range(count):
        _need(size, offset, _CFFILE.size, "file table")
        file_size, folder_offset, folder_index, _date, _time, attribs = _CFFILE.unpack_from(
            data, offset
        )
        offset += _CFFILE.size
        end = data.find(b"\0", offset, min(size, offset + _MAX_RAW_NAME_BYTES))
        if end < 0:
            if offset + _MAX_RAW_NAME_BYTES <= size:
                prefix = escaped_name(bytes(data[offset : offset + 40]))
                raise PackageError(
                    f"member name is longer than {MAX_NAME_LENGTH} characters",
                    member=f"{prefix}…",
                )
            raise PackageError("the cabinet is truncated (incomplete file table)")
        raw_name = bytes(data[offset:end])
        offset = end + 1
        name = _normalise_name(raw_name, utf8=bool(attribs & _ATTR_NAME_IS_UTF))
        if folder_index >= _IFOLDER_CONTINUED_FROM_PREV:
            # Split sets were refused from the header flags; without them this is corruption.
            raise PackageError(
                "the cabinet is corrupt (member is marked as continued in another cabinet "
                "but the cabinet links to no other)",
                member=name,
            )
        entries.append((name, file_size, folder_offset, folder_index))
    return entries


def _normalise_name(raw: bytes, *, utf8: bool) -> str:
    """Decode, check and normalise one member name; the error names the member."""
    try:
        # Without the UTF flag a name should be ASCII, but some tools write UTF-8 without
        # setting it; a legacy code page cannot be told apart, so it is refused.
        name = raw.decode("utf-8")
    except UnicodeDecodeError:
        reason = (
            "member name is flagged UTF-8 but is not valid UTF-8"
            if utf8
            else "the member name is not in UTF-8 or ASCII"
        )
        raise PackageError(reason, member=escaped_name(raw)) from None
    if not name:
        raise PackageError("a member has an empty name")
    if any(unicodedata.category(char) == "Cc" for char in name):
        raise PackageError("member name contains a control character", member=escaped_name(raw))
    if len(name) > MAX_NAME_LENGTH:
        raise PackageError(
            f"member name is longer than {MAX_NAME_LENGTH} characters ({len(name)})",
            member=name,
        )
    name = name.replace("\\", "/")
    if name.startswith("/"):
        raise PackageError("member name is absolute", member=name)
    if _DRIVE_LETTER.match(name):
        raise PackageError("member name starts with a drive letter", member=name)
    for component in name.split("/"):
        if component == "":
            raise PackageError("member name has an empty path component", member=name)
        if component in (".", ".."):
            raise PackageError(f"member name has a '{component}' path component", member=name)
    return name


def _walk_blocks(
    data: mmap.mmap,
    size: int,
    offset: int,
    count: int,
    reserve: int,
    compression: Compression,
    folder: int,
) -> int:
    """Check that a folder's CFDATA blocks lie inside the file; return their declared size."""
    total = 0
    for number in range(count):
        _need(size, offset, _CFDATA.size + reserve, f"data block of folder {folder}")
        _checksum, compressed, uncompressed = _CFDATA.unpack_from(data, offset)
        offset += _CFDATA.size + reserve + compressed
        if offset > size:
            raise PackageError(f"the cabinet is truncated (data block of folder {folder})")
        if uncompressed == 0:
            # A zero uncompressed size marks a block that continues in the next cabinet; split
            # sets were refused from the header flags, so here it is corruption.
            raise PackageError(
                f"the cabinet is corrupt (data block {number} of folder {folder} is marked as "
                "continued in another cabinet but the cabinet links to no other)"
            )
        if uncompressed > _MAX_BLOCK_UNCOMPRESSED or compressed > _MAX_BLOCK_COMPRESSED:
            raise PackageError(f"the cabinet is corrupt (oversized data block in folder {folder})")
        if compression is Compression.NONE and compressed != uncompressed:
            raise PackageError(f"the cabinet is corrupt (bad stored block in folder {folder})")
        total += uncompressed
    return total


def _check_names_and_sizes(
    raw_members: list[tuple[str, int, int, int]], *, max_member_size: int, max_total_size: int
) -> None:
    """Refuse case duplicates, file/folder clashes and sizes over the limits."""
    seen: dict[str, str] = {}
    directories: dict[str, str] = {}
    total = 0
    for name, file_size, _offset, _folder in raw_members:
        key = name.casefold()
        if key in seen:
            raise PackageError(
                f"two members have the same name apart from case ({seen[key]})", member=name
            )
        seen[key] = name
        parts = key.split("/")
        for depth in range(1, len(parts)):
            directories.setdefault("/".join(parts[:depth]), name)
        if file_size > max_member_size:
            raise PackageError(
                f"member declares {file_size} bytes, more than the per-file limit of "
                f"{max_member_size}",
                member=name,
            )
        total += file_size
        if total > max_total_size:
            raise PackageError(
                f"the members declare more than the per-package limit of {max_total_size} "
                "bytes in total",
                member=name,
            )
    for key, name in seen.items():
        if key in directories:
            raise PackageError(
                f"member name is also used as a folder by {directories[key]}", member=name
            )


def _place_members(
    raw_members: list[tuple[str, int, int, int]],
    folders: list[CabinetFolder],
    *,
    refuse_unsupported: bool,
) -> list[CabinetMember]:
    """Tie each member to its folder, refusing ranges past the folder's declared data."""
    members: list[CabinetMember] = []
    for name, file_size, folder_offset, folder_index in raw_members:
        if folder_index >= len(folders):
            raise PackageError(
                f"the cabinet is corrupt (member refers to missing folder {folder_index})",
                member=name,
            )
        folder = folders[folder_index]
        if folder_offset + file_size > folder.uncompressed_size:
            raise PackageError(
                "the cabinet is truncated or corrupt (member extends past its folder's data)",
                member=name,
            )
        if refuse_unsupported and folder.compression not in SUPPORTED_COMPRESSION:
            raise _unsupported(name, folder.compression)
        members.append(
            CabinetMember(name, file_size, folder_index, folder_offset, folder.compression)
        )
    _refuse_overlaps(members)
    return members


def _refuse_overlaps(members: list[CabinetMember]) -> None:
    """No tool writes members sharing bytes; refusing them bounds extraction to one open file."""
    ordered = sorted((m for m in members if m.size), key=lambda m: (m.folder, m.offset))
    for previous, member in itertools.pairwise(ordered):
        if member.folder == previous.folder and member.offset < previous.offset + previous.size:
            raise PackageError(
                f"the cabinet is corrupt (member overlaps the data of {previous.name})",
                member=member.name,
            )


def _unsupported(name: str, compression: Compression) -> PackageError:
    return PackageError(
        f"member uses {compression.value.capitalize()} compression, which is not supported; "
        "rebuild the package with MSZIP or LZX",
        member=name,
    )


def unsupported_compression(name: str, compression: Compression) -> str:
    """The refusal of a member whose compression cannot be extracted (Quantum)."""
    return _unsupported(name, compression).message


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


def _cabextract_program(lzx: list[CabinetMember]) -> str | None:
    """cabextract's path when there are LZX members (refusing them without it), else None."""
    if not lzx:
        return None
    program = shutil.which("cabextract")
    if program is None:
        raise PackageError(LZX_NEEDS_CABEXTRACT, member=lzx[0].name)
    return program


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


class _Sink:
    """One member being written: refuses bytes beyond its declared size, hashes as it writes."""

    def __init__(self, staging: _Staging, member: CabinetMember) -> None:
        self.name = member.name
        self.size = member.size
        self.offset = member.offset
        self.written = 0
        self._hash = hashlib.sha256()
        self._fd: int | None = staging.create(member.name)
        self._path = staging.root / member.name

    def write(self, chunk: bytes | memoryview) -> None:
        if self.written + len(chunk) > self.size:
            raise PackageError(
                f"more bytes out than the {self.size} the member declares", member=self.name
            )
        assert self._fd is not None
        view = memoryview(chunk)
        while view:
            view = view[os.write(self._fd, view) :]
        self._hash.update(chunk)
        self.written += len(chunk)

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        if self.written != self.size:
            raise PackageError(
                f"the cabinet is truncated or corrupt: {self.written} of {self.size} bytes",
                member=self.name,
            )

    @property
    def result(self) -> ExtractedMember:
        return ExtractedMember(self.name, self._path, self.size, self._hash.hexdigest())


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


@contextlib.contextmanager
def _cabextract_input(
    path: Path, data: mmap.mmap, listing: CabinetListing, make_directory: Callable[[], Path]
) -> Iterator[Path]:
    """The file to hand cabextract: the cabinet itself, or a copy without its signature.

    cabextract searches a whole file for cabinets (it skips the bytes of each one it finds),
    so a signature holding the bytes "MSCF" could smuggle in a second cabinet; then it gets
    a copy of the cabinet alone. Real signatures almost never hold them, so this is rare.
    """
    start = listing.signature_offset
    if start is None or data.find(_SIGNATURE, max(0, start - len(_SIGNATURE) + 1)) < 0:
        yield path.absolute()
        return
    directory = make_directory()
    try:
        copy = directory / "cabinet.cab"
        with open(copy, "xb") as handle:
            for position in range(0, start, _COPY_CHUNK):
                handle.write(data[position : min(start, position + _COPY_CHUNK)])
        yield copy
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def _run_cabextract(
    arguments: list[str], *, timeout: float, cwd: Path | None = None
) -> subprocess.CompletedProcess[bytes]:
    try:
        # Runs only after every header check passed; -e UTF-8 names members without the UTF
        # flag exactly as read_cabinet decoded them (it accepts only ASCII or UTF-8).
        return subprocess.run(arguments, capture_output=True, timeout=timeout, check=False, cwd=cwd)
    except subprocess.TimeoutExpired:
        raise PackageError(f"cabextract took longer than {timeout:g} seconds") from None


def _cabextract_refusal(
    completed: subprocess.CompletedProcess[bytes],
    members: list[CabinetMember],
    *,
    failures: dict[str, str],
    source: Path,
    listing: CabinetListing,
) -> PackageError:
    """Refuse naming the first LZX member cabextract failed on and its folder, when it says."""
    for member in members:
        if member.name in failures:
            return PackageError(
                f"the cabinet is corrupt (cannot decompress folder {member.folder}; "
                f"cabextract: {failures[member.name]})",
                member=member.name,
            )
    text = (completed.stderr + b"\n" + completed.stdout).decode("utf-8", "replace")
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    reason = lines[-1] if lines else f"exit status {completed.returncode}"
    reason = reason.replace(str(source), _display_name(listing.path))
    return PackageError(f"the cabinet is corrupt (cabextract: {reason})")


def _test_with_cabextract(
    program: str,
    source: Path,
    members: list[CabinetMember],
    timeout: float,
    listing: CabinetListing,
) -> None:
    completed = _run_cabextract(
        [program, "-q", "-t", "-e", "UTF-8", "--", str(source)], timeout=timeout
    )
    results: dict[str, str | None] = {}
    for line in completed.stdout.decode("utf-8", "replace").splitlines():
        if match := _CABEXTRACT_TEST_LINE.match(line):
            results[match["name"]] = match["reason"]
    failures = {name: reason for name, reason in results.items() if reason is not None}
    lzx_failed = any(member.name in failures for member in members)
    # A failed Quantum member alone is no refusal here: Quantum members are skipped.
    if lzx_failed or (completed.returncode != 0 and not failures):
        raise _cabextract_refusal(
            completed, members, failures=failures, source=source, listing=listing
        )
    for member in members:
        if member.name not in results:
            raise PackageError("cabextract did not test the member", member=member.name)


def _extract_with_cabextract(
    program: str,
    source: Path,
    staging: _Staging,
    members: list[CabinetMember],
    timeout: float,
    listing: CabinetListing,
) -> list[ExtractedMember]:
    private = staging.private_directory()
    try:
        # Run inside the private directory so its error lines read "NAME: REASON".
        completed = _run_cabextract(
            [program, "-q", "-e", "UTF-8", "--", str(source)], timeout=timeout, cwd=private
        )
        if completed.returncode != 0:
            failures: dict[str, str] = {}
            for line in completed.stderr.decode("utf-8", "replace").splitlines():
                name, separator, reason = line.rpartition(": ")
                if separator and name not in failures:
                    failures[name] = reason.strip()
            raise _cabextract_refusal(
                completed, members, failures=failures, source=source, listing=listing
            )
        results = []
        for member in members:
            source_file = private / member.name
            try:
                info = os.lstat(source_file)
            except FileNotFoundError:
                raise PackageError(
                    "cabextract did not produce the member", member=member.name
                ) from None
            if not stat.S_ISREG(info.st_mode):
                raise PackageError(
                    "cabextract produced something other than a file", member=member.name
                )
            sink = _Sink(staging, member)
            try:
                with open(source_file, "rb") as source_handle:
                    while chunk := source_handle.read(_COPY_CHUNK):
                        sink.write(chunk)
            finally:
                sink.close()
            results.append(sink.result)
        return results
    finally:
        shutil.rmtree(private, ignore_errors=True)


class _Staging:
    """Creates files only beneath ``root``: no symlink followed, no existing file reused."""

    def __init__(self, root: Path, names: list[str]) -> None:
        self.root = root
        self._root_fd = -1
        self._top_level = {name.split("/")[0].casefold() for name in names}

    def __enter__(self) -> _Staging:
        self._root_fd = os.open(self.root, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
        return self

    def __exit__(self, *exc_info: object) -> None:
        os.close(self._root_fd)

    def create(self, name: str) -> int:
        parts = name.split("/")
        directory = os.dup(self._root_fd)
        try:
            for part in parts[:-1]:
                with contextlib.suppress(FileExistsError):
                    os.mkdir(part, 0o755, dir_fd=directory)
                child = os.open(
                    part, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=directory
                )
                os.close(directory)
                directory = child
            flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
            return os.open(parts[-1], flags, 0o644, dir_fd=directory)
        finally:
            os.close(directory)

    def private_directory(self) -> Path:
        """A scratch directory in the staging area whose name no member uses."""
        while True:
            scratch = Path(tempfile.mkdtemp(prefix=".cabextract-", dir=self.root))
            if scratch.name.casefold() not in self._top_level:
                return scratch
            shutil.rmtree(scratch)


def _empty_directory(directory: Path) -> None:
    for entry in directory.iterdir():
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink()
