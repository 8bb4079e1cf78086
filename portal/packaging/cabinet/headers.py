"""Reading a cabinet from its headers, and every refusal decided there.

``read_cabinet`` parses CFHEADER, CFFOLDER, CFFILE and the CFDATA block headers with
``struct`` and refuses anything the package contract forbids before a byte is
decompressed; ``read_cabinet_signature`` returns an Authenticode signature kept after the
cabinet's declared end, pointed at by a record in the header reserve.
"""

from __future__ import annotations

import contextlib
import itertools
import mmap
import os
import stat
import unicodedata
from collections.abc import Iterator
from pathlib import Path

from portal.packaging.cabinet.format import (
    _ATTR_NAME_IS_UTF,
    _CFDATA,
    _CFFILE,
    _CFFOLDER,
    _CFHEADER,
    _CFHEADER_RESERVE,
    _COMPRESSION_TYPES,
    _DRIVE_LETTER,
    _FLAG_NEXT_CABINET,
    _FLAG_PREV_CABINET,
    _FLAG_RESERVE_PRESENT,
    _IFOLDER_CONTINUED_FROM_PREV,
    _MAX_BLOCK_COMPRESSED,
    _MAX_BLOCK_UNCOMPRESSED,
    _MAX_RAW_NAME_BYTES,
    _OS_PROBLEMS,
    _SIGNATURE,
    _SIGNATURE_ALIGNMENT,
    _SIGNATURE_MARKER,
    _SIGNATURE_RECORD,
    DEFAULT_MAX_MEMBER_SIZE,
    DEFAULT_MAX_MEMBERS,
    DEFAULT_MAX_TOTAL_SIZE,
    MAX_NAME_LENGTH,
    SUPPORTED_COMPRESSION,
    CabinetFolder,
    CabinetListing,
    CabinetMember,
    Compression,
    _unsupported,
)
from portal.packaging.errors import PackageError, escaped_name

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
