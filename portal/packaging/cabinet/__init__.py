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

A package along those lines: ``format`` (structures and limits), ``headers`` (reading
and refusals), ``decoding`` (in-process decoding), ``cabextract`` (the LZX path) and
``staging`` (where members are written).
"""

from __future__ import annotations

from portal.packaging.cabinet.cabextract import (
    LZX_NEEDS_CABEXTRACT,
    lzx_support,
)
from portal.packaging.cabinet.decoding import (
    check_cabinet_data,
    extract_cabinet,
)
from portal.packaging.cabinet.format import (
    DEFAULT_MAX_MEMBER_SIZE,
    DEFAULT_MAX_MEMBERS,
    DEFAULT_MAX_TOTAL_SIZE,
    MAX_NAME_LENGTH,
    SUPPORTED_COMPRESSION,
    CabinetFolder,
    CabinetListing,
    CabinetMember,
    Compression,
    ExtractedMember,
    unsupported_compression,
)
from portal.packaging.cabinet.headers import (
    read_cabinet,
    read_cabinet_signature,
)

__all__ = [
    "CabinetFolder",
    "CabinetListing",
    "CabinetMember",
    "Compression",
    "DEFAULT_MAX_MEMBERS",
    "DEFAULT_MAX_MEMBER_SIZE",
    "DEFAULT_MAX_TOTAL_SIZE",
    "ExtractedMember",
    "LZX_NEEDS_CABEXTRACT",
    "MAX_NAME_LENGTH",
    "SUPPORTED_COMPRESSION",
    "check_cabinet_data",
    "extract_cabinet",
    "lzx_support",
    "read_cabinet",
    "read_cabinet_signature",
    "unsupported_compression",
]
