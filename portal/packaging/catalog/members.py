"""The member side of a security catalog: reading its members (optional file name, hash
algorithm, digest and how the file is hashed) and makecat's SHA-1 twins, decoding member
names, matching the files of an update folder with the members by hash as Windows looks
them up, and hashing those files: whole, as a PE image (``pe_image_digest``) or as a
cabinet (``cabinet_digest``). It also
holds the result dataclasses for members that the package's other modules share.

The digests themselves (flat, PE image, cabinet SIP) are ``catalog.digests``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hmac
import string
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from portal.packaging.catalog.asn1 import (
    _DECODING_ERRORS,
    CAT_NAMEVALUE_OBJID,
    SPC_CAB_DATA_OBJID,
    SPC_CABINET_SIP_OBJID,
    SPC_INDIRECT_DATA_OBJID,
    SPC_PE_IMAGE_DATA_OBJID,
    CatalogNameValue,
    CertificateTrustList,
    SpcIndirectDataContent,
    _short,
)
from portal.packaging.catalog.digests import _MEMBER_DIGESTS, _FileHasher
from portal.packaging.errors import PackageError, escaped_name

# The indirect-data type of a member says how its file is hashed: the whole file, the
# Authenticode hash of a PE image, or the cabinet subject interface's hash of a cabinet.
MEMBER_KINDS = {
    SPC_CAB_DATA_OBJID: "flat",
    SPC_PE_IMAGE_DATA_OBJID: "pe",
    SPC_CABINET_SIP_OBJID: "cabinet",
}


# -------------------------------------------------------------------------- results


@dataclass(frozen=True)
class CatalogMember:
    """One entry with indirect data; ``name`` is None when the entry carries no File name."""

    name: str | None
    digest_algorithm: str
    digest: str  # lower-case hexadecimal
    kind: str = "flat"  # how the file is hashed: "flat" (whole file), "pe" or "cabinet"

    @property
    def label(self) -> str:
        return self.name or f"{self.digest_algorithm.upper()} {self.digest}"


@dataclass(frozen=True)
class CatalogCompanion:
    """An entry without indirect data (makecat's SHA-1 twin of a V2 member), by its SHA-1."""

    sha1: str  # lower-case hexadecimal
    file: str | None  # the update folder's file with that SHA-1; None when none (or no folder)


@dataclass(frozen=True)
class MemberCheck:
    """One line of the comparison: a file, the entry it was matched against, the verdict.

    ``status`` is "matched", "mismatched" (a named entry whose file has another hash),
    "missing" (a named entry without its file), "unlisted" (a file no entry lists: refused;
    or an unnamed entry no file matches: reported only).
    """

    file: str | None
    entry: str | None  # the entry's name, or its hash label for an unnamed entry
    kind: str
    digest_algorithm: str
    status: str


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
    unmatched_entries: list[str] = field(default_factory=list)
    checks: list[MemberCheck] = field(default_factory=list)
    companions: list[CatalogCompanion] = field(default_factory=list)
    error: PackageError | None = None


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
        name = _member_name(name_value) if name_value is not None else None
        if indirect is None:
            # makecat writes V2 catalogs with a twin entry per file: its SHA-1 as the
            # identifier and no indirect data. It is paired with its file by hash.
            sha1 = _sha1_identifier(identifier)
            if sha1 is None:
                raise PackageError("the catalog has a member without a file name or hash")
            companions.append(_Companion(sha1, name))
            continue
        data_type, algorithm, digest = indirect
        label = name or f"{str(algorithm).upper()} {digest.hex()}"
        if algorithm not in _MEMBER_DIGESTS:
            raise PackageError(f"member hash algorithm {algorithm} is not accepted", member=label)
        if data_type not in MEMBER_KINDS:
            raise PackageError(
                f"the catalog hashes the file as {data_type}, which is not supported",
                member=label,
            )
        if name is not None:
            # Windows file names are case-insensitive.
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
        "the catalog has a member whose name is neither UTF-16 nor UTF-8 text "
        f"({escaped_name(stripped[:64])})"
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


_KIND_WORDS = {"pe": "a PE image", "cabinet": "a cabinet"}


def _compare_members(
    members: list[CatalogMember],
    companions: list[_Companion],
    *,
    files: Mapping[str, Path],
    catalog_name: str | None,
    known_sha256: Mapping[str, str],
    stop_at_first: bool,
) -> _Comparison:
    """Match the files with the entries by hash, as Windows looks members up.

    Every file must have its hash among the entries (of the kind the entry declares); a
    named entry must match the file of its name, and its file must be there. An unnamed
    entry, or a SHA-1 twin, that matches no file is reported, not refused. ``error`` is the
    first refusal: files in sorted order, then missing named entries.
    """
    result = _Comparison()

    def fail(error: PackageError) -> bool:
        if result.error is None:
            result.error = error
        return stop_at_first

    # Windows file names are case-insensitive; the cabinet reader already refused
    # members that differ only by case, so folding cannot merge two files.
    named = {member.name.casefold(): member for member in members if member.name is not None}
    skip = catalog_name.casefold() if catalog_name else None
    present = {name.casefold(): name for name in files if name.casefold() != skip}
    hasher = _FileHasher(files, known_sha256, with_sha1=bool(companions))
    # Every (kind, algorithm) any entry uses, and the entries by their digest.
    schemes = sorted({(member.kind, member.digest_algorithm) for member in members})
    by_digest: dict[tuple[str, str, str], CatalogMember] = {}
    for entry in members:
        by_digest.setdefault((entry.kind, entry.digest_algorithm, entry.digest), entry)
    used: set[int] = set()  # ids of entries some file matched
    for key, file_name in sorted(present.items(), key=lambda item: item[1]):
        member: CatalogMember | None = named.get(key)
        if member is not None:
            used.add(id(member))
            check = MemberCheck(
                file_name, member.name, member.kind, member.digest_algorithm, "matched"
            )
            try:
                actual = hasher.digest(file_name, member.kind, member.digest_algorithm)
                if member.kind == "flat" and not hmac.compare_digest(actual, member.digest):
                    actual = _cabinet_sip_digest(hasher, file_name, member) or actual
            except ValueError as error:
                result.mismatched.append(file_name)
                result.checks.append(dataclasses.replace(check, status="mismatched"))
                kind = _KIND_WORDS.get(member.kind, member.kind)
                message = f"the catalog lists the file as {kind}, but it is not one ({error})"
                if fail(PackageError(message, member=file_name)):
                    return result
                continue
            if hmac.compare_digest(actual, member.digest):
                result.matched.append(file_name)
                result.checks.append(check)
            else:
                result.mismatched.append(file_name)
                result.checks.append(dataclasses.replace(check, status="mismatched"))
                message = "the file's hash does not match the security catalog"
                if fail(PackageError(message, member=file_name)):
                    return result
            continue
        found = _lookup(hasher, file_name, schemes, by_digest)
        if found is not None:
            used.add(id(found))
            result.matched.append(file_name)
            result.checks.append(
                MemberCheck(file_name, found.label, found.kind, found.digest_algorithm, "matched")
            )
            continue
        result.unlisted.append(file_name)
        result.checks.append(MemberCheck(file_name, None, "", "", "unlisted"))
        if fail(PackageError("the file is not listed in the security catalog", member=file_name)):
            return result
    for key, member in sorted(named.items()):
        if key not in present:
            result.missing.append(member.label)
            result.checks.append(
                MemberCheck(None, member.name, member.kind, member.digest_algorithm, "missing")
            )
            message = "the security catalog lists a file that is missing from the update folder"
            if fail(PackageError(message, member=member.name)):
                return result
    for member in members:
        if member.name is None and id(member) not in used:
            result.unmatched_entries.append(member.label)
            result.checks.append(
                MemberCheck(None, member.label, member.kind, member.digest_algorithm, "unlisted")
            )
    if companions:
        _pair_companions(companions, present, hasher, result)
    return result


def _lookup(
    hasher: _FileHasher,
    file_name: str,
    schemes: list[tuple[str, str]],
    by_digest: Mapping[tuple[str, str, str], CatalogMember],
) -> CatalogMember | None:
    """The entry holding the file's hash in any kind and algorithm the catalog uses."""
    for kind, algorithm in schemes:
        try:
            digest = hasher.digest(file_name, kind, algorithm)
        except ValueError:  # not a PE image or cabinet: no entry of that kind can be it
            continue
        found = by_digest.get((kind, algorithm, digest))
        if found is None and kind == "flat":
            # SPC_CAB_DATA is also the type Windows' cabinet subject interface writes.
            with contextlib.suppress(ValueError):
                found = by_digest.get(
                    (kind, algorithm, hasher.digest(file_name, "cabinet", algorithm))
                )
        if found is not None:
            return found
    return None


def _cabinet_sip_digest(hasher: _FileHasher, file_name: str, member: CatalogMember) -> str | None:
    """The cabinet subject interface's hash of a file an SPC_CAB_DATA entry names, when the
    file is a cabinet: Windows' signing tools hash a cabinet member with that interface
    and write the same indirect-data type as for a flat file (the spec's cabinet type,
    1.3.6.1.4.1.311.2.1.28, is read too)."""
    try:
        digest = hasher.digest(file_name, "cabinet", member.digest_algorithm)
    except ValueError:  # not a cabinet: the flat hash is the only one
        return None
    return digest if hmac.compare_digest(digest, member.digest) else None


def _pair_companions(
    companions: list[_Companion],
    present: Mapping[str, str],
    hasher: _FileHasher,
    result: _Comparison,
) -> None:
    """A SHA-1 twin belongs to the file whose SHA-1 (flat, or of the kind of the entry the
    file matched) it holds."""
    matched_kind = {c.file: c.kind for c in result.checks if c.status == "matched" and c.file}
    by_sha1: dict[str, str] = {}
    for file_name in sorted(present.values(), reverse=True):
        kinds = dict.fromkeys(["flat", matched_kind.get(file_name, "flat")])
        for kind in kinds:
            with contextlib.suppress(ValueError):
                by_sha1[hasher.digest(file_name, kind, "sha1")] = file_name
    for companion in companions:
        paired = by_sha1.get(companion.sha1)
        result.companions.append(CatalogCompanion(companion.sha1, paired))
        if paired is None:
            result.unmatched_entries.append(companion.label)
            result.checks.append(MemberCheck(None, companion.label, "", "sha1", "unlisted"))
