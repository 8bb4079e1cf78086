"""The cabinet format (MS-CAB) as this package reads it: the header structures, the
limits, the compression types and what a listing holds."""

from __future__ import annotations

import enum
import errno
import re
import struct
from dataclasses import dataclass
from pathlib import Path

from portal.packaging.errors import PackageError

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


def _unsupported(name: str, compression: Compression) -> PackageError:
    return PackageError(
        f"member uses {compression.value.capitalize()} compression, which is not supported; "
        "rebuild the package with MSZIP or LZX",
        member=name,
    )


def unsupported_compression(name: str, compression: Compression) -> str:
    """The refusal of a member whose compression cannot be extracted (Quantum)."""
    return _unsupported(name, compression).message
