"""The member side of a security catalog: reading its members (file name, hash
algorithm, digest and how the file is hashed) and makecat's SHA-1 twins, decoding member
names, comparing the members with the files of an update folder, and hashing those
files, including the Authenticode hash of a PE image (``pe_image_digest``). It also
holds the result dataclasses for members that the package's other modules share.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import io
import string
import struct
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from portal.packaging.catalog.asn1 import (
    _DECODING_ERRORS,
    CAT_NAMEVALUE_OBJID,
    SPC_CAB_DATA_OBJID,
    SPC_INDIRECT_DATA_OBJID,
    SPC_LINK_OBJID,
    SPC_PE_IMAGE_DATA_OBJID,
    CatalogNameValue,
    CertificateTrustList,
    SpcIndirectDataContent,
    _short,
)
from portal.packaging.errors import PackageError

# The indirect-data type of a member says how its file is hashed.
MEMBER_KINDS = {SPC_CAB_DATA_OBJID: "cab", SPC_LINK_OBJID: "link", SPC_PE_IMAGE_DATA_OBJID: "pe"}
_MEMBER_DIGESTS = frozenset({"sha1", "sha256"})
_READ_CHUNK = 1 << 20


# -------------------------------------------------------------------------- results


@dataclass(frozen=True)
class CatalogMember:
    name: str
    digest_algorithm: str
    digest: str  # lower-case hexadecimal
    kind: str = "cab"  # how the file is hashed: "cab" or "link" (whole file), "pe" (Authenticode)


@dataclass(frozen=True)
class CatalogCompanion:
    """An entry without indirect data (makecat's SHA-1 twin of a V2 member), by its SHA-1."""

    sha1: str  # lower-case hexadecimal
    file: str | None  # the update folder's file with that SHA-1; None when none (or no folder)


@dataclass(frozen=True)
class _Companion:
    sha1: str
    name: str | None

    @property
    def label(self) -> str:
        return self.name or f"SHA-1 {self.sha1}"


@dataclass
class _Comparison:
    matched: list[str] = field(default_factory=list)
    mismatched: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    unlisted: list[str] = field(default_factory=list)
    companions: list[CatalogCompanion] = field(default_factory=list)
    error: PackageError | None = None


# ---------------------------------------------------------------------------- hashing


def pe_image_digest(source: bytes | Path, algorithm: str = "sha256") -> str:
    """The Authenticode hash of a PE image (lower-case hexadecimal): the file without
    its checksum field, its certificate-table directory entry and its certificate table.

    Raises ValueError, saying why, when ``source`` is not a PE image.
    """
    if isinstance(source, Path):
        with open(source, "rb") as handle:
            return _pe_digests(handle, [algorithm])[algorithm]
    return _pe_digests(io.BytesIO(source), [algorithm])[algorithm]


# ------------------------------------------------------------------------- members


def _members(ctl: CertificateTrustList) -> tuple[list[CatalogMember], list[_Companion]]:
    members: list[CatalogMember] = []
    companions: list[_Companion] = []
    seen: set[str] = set()
    try:
        subjects = list(ctl["trusted_subjects"] or [])
    except _DECODING_ERRORS as error:
        raise PackageError(
            f"the catalog has a member that cannot be read ({_short(error)})"
        ) from None
    for subject in subjects:
        name_value: bytes | None = None
        indirect: tuple[str, str, bytes] | None = None  # data type, algorithm, digest
        try:
            identifier = subject["identifier"].native
            for attribute in subject["attributes"] or []:
                kind = attribute["type"].dotted
                for value in attribute["values"]:
                    if kind == CAT_NAMEVALUE_OBJID:
                        parsed_name = value.parse(CatalogNameValue)
                        if str(parsed_name["tag"].native).casefold() == "file":
                            name_value = parsed_name["value"].native
                    elif kind == SPC_INDIRECT_DATA_OBJID:
                        content = value.parse(SpcIndirectDataContent)
                        info = content["message_digest"]
                        indirect = (
                            content["data"]["type"].dotted,
                            info["digest_algorithm"]["algorithm"].native,
                            info["digest"].native,
                        )
        except _DECODING_ERRORS as error:
            raise PackageError(
                f"the catalog has a member that cannot be read ({_short(error)})"
            ) from None
        if indirect is None:
            # makecat writes V2 catalogs with a twin entry per file: its SHA-1 as the
            # identifier and no indirect data. It is paired with its file later.
            sha1 = _sha1_identifier(identifier)
            if sha1 is None:
                raise PackageError("the catalog has a member without a file name or hash")
            companion_name = None
            if name_value is not None:
                with contextlib.suppress(PackageError):
                    companion_name = _member_name(name_value)
            companions.append(_Companion(sha1, companion_name))
            continue
        if name_value is None:
            raise PackageError("the catalog has a member without a file name or hash")
        name = _member_name(name_value)
        data_type, algorithm, digest = indirect
        if algorithm not in _MEMBER_DIGESTS:
            raise PackageError(f"member hash algorithm {algorithm} is not accepted", member=name)
        if data_type not in MEMBER_KINDS:
            raise PackageError(
                f"the catalog hashes the file as {data_type}, which is not supported",
                member=name,
            )
        if name.casefold() in seen:
            raise PackageError("the catalog lists the member twice", member=name)
        seen.add(name.casefold())
        members.append(CatalogMember(name, algorithm, digest.hex(), MEMBER_KINDS[data_type]))
    return members, companions


def _member_name(raw: bytes) -> str:
    """A member's file name: UTF-16LE as makecat writes it (with or without its NUL), or
    8-bit text from other tools, read as UTF-8."""
    stripped = raw.rstrip(b"\0")
    if stripped and b"\0" not in stripped:
        with contextlib.suppress(UnicodeDecodeError):
            name = stripped.decode("utf-8")
            if _plain_name(name):
                return name
    # UTF-16LE: every character of the Latin range, and the terminator, has a zero high byte.
    if len(raw) % 2 == 0 and any(raw[index] == 0 for index in range(1, len(raw), 2)):
        with contextlib.suppress(UnicodeDecodeError):
            name = raw.decode("utf-16-le").rstrip("\0")
            if _plain_name(name):
                return name
    raise PackageError(
        f"the catalog has a member whose name is neither UTF-16 nor UTF-8 text ({raw[:32].hex()})"
    )


def _plain_name(name: str) -> bool:
    return bool(name) and all(
        unicodedata.category(character) not in ("Cc", "Cs", "Co", "Cn") for character in name
    )


def _sha1_identifier(identifier: bytes) -> str | None:
    """A SHA-1 written as an entry's identifier: 20 raw bytes, or upper-case hexadecimal
    in UTF-16LE (makecat's member tag)."""
    if len(identifier) == 20:
        return identifier.hex()
    try:
        text = identifier.decode("utf-16-le").rstrip("\0")
    except UnicodeDecodeError:
        return None
    if len(text) == 40 and all(character in string.hexdigits for character in text):
        return text.lower()
    return None


def _compare_members(
    members: list[CatalogMember],
    companions: list[_Companion],
    *,
    files: Mapping[str, Path],
    catalog_name: str | None,
    known_sha256: Mapping[str, str],
    stop_at_first: bool,
) -> _Comparison:
    """Every file a member with a matching hash, every member a file, every SHA-1 twin
    some file's SHA-1; ``error`` is the first failure in sorted file order."""
    result = _Comparison()

    def fail(error: PackageError) -> bool:
        if result.error is None:
            result.error = error
        return stop_at_first

    # Windows file names are case-insensitive; the cabinet reader already refused
    # members that differ only by case, so folding cannot merge two files.
    listed = {member.name.casefold(): member for member in members}
    skip = catalog_name.casefold() if catalog_name else None
    hasher = _FileHasher(files, known_sha256, with_sha1=bool(companions))
    present: dict[str, str] = {}
    for file_name in sorted(files):
        key = file_name.casefold()
        if key == skip:
            continue
        present[key] = file_name
        member = listed.get(key)
        if member is None:
            result.unlisted.append(file_name)
            if fail(
                PackageError("the file is not listed in the security catalog", member=file_name)
            ):
                return result
            continue
        try:
            actual = hasher.digest(file_name, member.kind, member.digest_algorithm)
        except ValueError as error:
            result.mismatched.append(file_name)
            message = f"the catalog lists the file as a PE image, but it is not one ({error})"
            if fail(PackageError(message, member=file_name)):
                return result
            continue
        if hmac.compare_digest(actual, member.digest):
            result.matched.append(file_name)
        else:
            result.mismatched.append(file_name)
            message = "the file's hash does not match the security catalog"
            if fail(PackageError(message, member=file_name)):
                return result
    for key, member in sorted(listed.items()):
        if key not in present:
            result.missing.append(member.name)
            message = "the security catalog lists a file that is missing from the update folder"
            if fail(PackageError(message, member=member.name)):
                return result
    if companions:
        by_sha1: dict[str, str] = {}
        for key, file_name in sorted(present.items(), reverse=True):
            member = listed.get(key)
            kinds = ["cab", "pe"] if member is not None and member.kind == "pe" else ["cab"]
            for kind in kinds:
                with contextlib.suppress(ValueError):
                    by_sha1[hasher.digest(file_name, kind, "sha1")] = file_name
        for companion in companions:
            paired = by_sha1.get(companion.sha1)
            result.companions.append(CatalogCompanion(companion.sha1, paired))
            if paired is None:
                result.missing.append(companion.label)
                message = (
                    f"the security catalog lists a file with SHA-1 {companion.sha1} that is "
                    "missing from the update folder"
                )
                if fail(PackageError(message, member=companion.name)):
                    return result
    return result


class _FileHasher:
    """File digests by name, kind ("pe" or a whole-file kind) and algorithm, each file read
    once per kind; SHA-1 rides along when SHA-1 twins need pairing."""

    def __init__(
        self, files: Mapping[str, Path], known_sha256: Mapping[str, str], *, with_sha1: bool
    ):
        self._files = files
        self._known = known_sha256
        self._with_sha1 = with_sha1
        self._cache: dict[tuple[str, str, str], str] = {}

    def digest(self, name: str, kind: str, algorithm: str) -> str:
        mode = "pe" if kind == "pe" else "flat"
        if mode == "flat" and algorithm == "sha256" and name in self._known:
            return self._known[name].lower()
        cached = self._cache.get((name, mode, algorithm))
        if cached is not None:
            return cached
        algorithms = {algorithm} | ({"sha1"} if self._with_sha1 else set())
        with open(self._files[name], "rb") as handle:
            digests = (
                _pe_digests(handle, algorithms)
                if mode == "pe"
                else _flat_digests(handle, algorithms)
            )
        for each, value in digests.items():
            self._cache[(name, mode, each)] = value
        return digests[algorithm]


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
    digests = {name: hashlib.new(name) for name in algorithms}
    position = 0
    for start, length in [*skips, (size, 0)]:
        handle.seek(position)
        remaining = start - position
        while remaining > 0:
            chunk = handle.read(min(remaining, _READ_CHUNK))
            if not chunk:
                break
            for digest in digests.values():
                digest.update(chunk)
            remaining -= len(chunk)
        position = start + length
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
