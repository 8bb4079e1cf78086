"""What a package holds and the verdict its import would reach, in one pass.

``examine_package`` is the import's own pipeline: read the cabinet from its headers,
check its data (a corrupt cabinet is corrupt before it is "without a device update"),
extract it, then judge each update folder's description and catalog. The import stores
what it accepted; ``inspect_device_update``, the import page's dry run and the API's
``dry_run`` only report it. Unlike a refusal, the examination goes on after the first
failure so the report can explain every folder; ``reason`` is the first refusal, in the
order the import meets them.
"""

from __future__ import annotations

import dataclasses
import datetime
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from portal.device_class import FOLDER_DEPTH
from portal.packaging.cabinet import (
    SUPPORTED_COMPRESSION,
    CabinetListing,
    ExtractedMember,
    check_cabinet_data,
    extract_cabinet,
    read_cabinet,
    read_cabinet_signature,
    unsupported_compression,
)
from portal.packaging.catalog import (
    CatalogInspection,
    SignatureSummary,
    inspect_catalog,
    summarize_signature,
)
from portal.packaging.description import (
    UpdateDescription,
    check_description_matches_folder,
    parse_description,
)
from portal.packaging.errors import PackageError

NO_UPDATE = "no device update in the package"
NEITHER = "the file is neither a Microsoft cabinet nor a security catalog"
A_CATALOG = "the file is a security catalog, not a package; import the cabinet (.cab) that holds it"
NO_PUBLISHER = "no trusted publisher is configured; add the vendor's certificate"
_CABINET_MAGIC = b"MSCF"
MAX_CATALOG_BYTES = 64 << 20


@dataclass(frozen=True)
class Limits:
    max_member_size: int
    max_total_size: int
    refuse_sha1: bool = False


@dataclass(frozen=True)
class ExaminedUpdate:
    """One update folder: its extracted files and what its description and catalog say."""

    folder: str
    files: Mapping[str, ExtractedMember]  # file name in the folder -> extracted member
    description: UpdateDescription | None
    catalog: CatalogInspection | None
    reason: str  # "" when the folder is accepted

    @property
    def accepted(self) -> bool:
        return not self.reason

    @property
    def signer_subject(self) -> str:
        signature = self.catalog.signature if self.catalog else None
        return signature.signer.subject if signature and signature.signer else ""

    @property
    def catalog_digest(self) -> str:
        """The members' hash: "sha256", or "sha1" for older catalogs."""
        digests = self.catalog.member_digests if self.catalog else ()
        return "sha1" if digests and "sha256" not in digests else "sha256"


@dataclass(frozen=True)
class ExaminedPackage:
    listing: CabinetListing | None
    signature: SignatureSummary | None  # the cabinet's own Authenticode signature
    updates: tuple[ExaminedUpdate, ...]
    ignored: tuple[str, ...]
    warnings: tuple[str, ...]
    reason: str  # "" when the import would accept the package

    @property
    def accepted(self) -> bool:
        return not self.reason


def examine_package(
    path: Path,
    *,
    work_dir: Path,
    trusted_publishers: Sequence[bytes],
    limits: Limits,
) -> ExaminedPackage:
    """Examine a cabinet, extracting it into the empty ``work_dir``; never raises PackageError."""
    kind = file_kind(path)
    if kind != "cabinet":
        return ExaminedPackage(None, None, (), (), (), A_CATALOG if kind == "catalog" else NEITHER)
    try:
        listing = read_cabinet(
            path,
            max_member_size=limits.max_member_size,
            max_total_size=limits.max_total_size,
            refuse_unsupported=False,
        )
    except PackageError as error:
        return ExaminedPackage(None, None, (), (), (), error.message)
    warnings: list[str] = []
    signature = _cabinet_signature(listing, trusted_publishers, warnings)
    folders, ignored, layout_problem = _layout(member.name for member in listing.members)

    def result(updates: Iterable[ExaminedUpdate] = (), reason: str = "") -> ExaminedPackage:
        return ExaminedPackage(
            listing, signature, tuple(updates), tuple(ignored), tuple(warnings), reason
        )

    unsupported = next(
        (m for m in listing.members if m.compression not in SUPPORTED_COMPRESSION), None
    )
    if unsupported is not None:
        # Before "no device update": the package could never be imported as it is.
        return result(reason=unsupported_compression(unsupported.name, unsupported.compression))
    try:
        if not folders:
            # Nothing would be extracted; the data is still checked so a corrupt cabinet
            # reads as corrupt, not as one without updates.
            check_cabinet_data(path, listing)
            return result(reason=NO_UPDATE)
        extracted = extract_cabinet(path, work_dir, listing)
    except PackageError as error:
        return result(reason=error.message)
    if layout_problem:
        return result(reason=layout_problem)
    files: dict[str, dict[str, ExtractedMember]] = defaultdict(dict)
    for member in extracted:
        folder, _, file_name = member.name.rpartition("/")
        if folder in folders:
            files[folder][file_name] = member
    updates = [
        _examine_update(folder, files[folder], trusted_publishers, limits) for folder in folders
    ]
    for update in updates:
        if update.catalog:
            warnings.extend(f"{update.folder}: {text}" for text in update.catalog.warnings)
    first_refusal = next((update.reason for update in updates if update.reason), "")
    return result(updates, NO_PUBLISHER if not trusted_publishers else first_refusal)


def examine_catalog(
    path: Path,
    *,
    trusted_publishers: Sequence[bytes],
    limits: Limits,
    files: Mapping[str, Path] | None = None,
) -> CatalogInspection | str:
    """A lone catalog: its signature, chain and members, compared with ``files`` (name to
    path) when given; or the reason it is no catalog."""
    if file_kind(path) != "catalog":
        return NEITHER
    return inspect_catalog(
        path.read_bytes(),
        files=files,
        trusted_publishers=trusted_publishers,
        refuse_sha1=limits.refuse_sha1,
    )


def file_kind(path: Path) -> str:
    """What an uploaded file is: "cabinet", "catalog" or "neither". The one place that
    decides, so the import and the dry run refuse a file in the same words."""
    with open(path, "rb") as handle:
        head = handle.read(len(_CABINET_MAGIC))
    if head == _CABINET_MAGIC:
        return "cabinet"
    # A catalog is DER: a SEQUENCE, and a few MiB even with thousands of members.
    if head[:1] == b"\x30" and path.stat().st_size <= MAX_CATALOG_BYTES:
        return "catalog"
    return "neither"


def is_cabinet(path: Path) -> bool:
    return file_kind(path) == "cabinet"


def _cabinet_signature(
    listing: CabinetListing, trusted: Sequence[bytes], warnings: list[str]
) -> SignatureSummary | None:
    """The cabinet's own signer, reported; trust comes from the catalogs inside."""
    try:
        der = read_cabinet_signature(listing)
        return summarize_signature(der, trusted_publishers=trusted) if der else None
    except PackageError as error:
        warnings.append(f"the cabinet's own signature cannot be read: {error.message}")
        return None


def _layout(names: Iterable[str]) -> tuple[list[str], list[str], str]:
    """The update folders (sorted), the members outside them, and the first layout problem."""
    by_folder: dict[str, list[str]] = defaultdict(list)
    ignored: list[str] = []
    for name in names:
        parts = name.split("/")
        if len(parts) == FOLDER_DEPTH + 1:
            by_folder["/".join(parts[:FOLDER_DEPTH])].append(parts[-1].casefold())
        else:
            ignored.append(f"{name}: ignored (outside an update folder)")
    problem = ""
    for folder, file_names in sorted(by_folder.items()):
        update_type = folder.rsplit("/", 1)[-1]
        for needed, kind in ((".xml", "description"), (".cat", "security catalog")):
            if not problem and f"{update_type}{needed}".casefold() not in file_names:
                problem = f"the update folder {folder} has no {kind} {update_type}{needed}"
    return sorted(by_folder), ignored, problem


def _examine_update(
    folder: str,
    files: Mapping[str, ExtractedMember],
    trusted: Sequence[bytes],
    limits: Limits,
) -> ExaminedUpdate:
    update_type = folder.rsplit("/", 1)[-1]
    by_key = {name.casefold(): member for name, member in files.items()}
    description_member = by_key[f"{update_type}.xml".casefold()]
    catalog_member = by_key[f"{update_type}.cat".casefold()]
    description: UpdateDescription | None = None
    reason = ""
    try:
        description = parse_description(
            description_member.path.read_bytes(), member=description_member.name
        )
        check_description_matches_folder(
            description, folder=folder, file_names=files, member=description_member.name
        )
    except PackageError as error:
        reason = error.message
    catalog = inspect_catalog(
        catalog_member.path.read_bytes(),
        files={name: member.path for name, member in files.items()},
        trusted_publishers=trusted,
        catalog_name=catalog_member.name.rsplit("/", 1)[-1],
        refuse_sha1=limits.refuse_sha1,
        known_sha256={name: member.sha256 for name, member in files.items()},
    )
    if not reason and not catalog.accepted:
        reason = catalog.reason
    return ExaminedUpdate(folder, files, description, catalog, reason)


# ---------------------------------------------------------------------------- reports


def _plain(value: Any) -> Any:
    """Dataclasses, tuples, dates and UUIDs as JSON values."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {
            field.name: _plain(getattr(value, field.name)) for field in dataclasses.fields(value)
        }
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    if isinstance(value, dict):
        return {str(key): _plain(item) for key, item in value.items()}
    if isinstance(value, (datetime.datetime, datetime.date)):
        return value.isoformat()
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)


def _verdict(reason: str) -> dict[str, str]:
    return {"verdict": "refused" if reason else "accepted", "reason": reason}


def _catalog_report(catalog: CatalogInspection) -> dict[str, Any]:
    report = _plain(catalog)
    report.pop("accepted", None)
    report.pop("reason", None)
    return {**_verdict(catalog.reason), **report}


def package_report(
    examined: ExaminedPackage, *, name: str, size: int, sha256: str
) -> dict[str, Any]:
    """The examination as JSON: the one shape the command, the page and the API show."""
    listing = examined.listing
    cabinet = None
    if listing is not None:
        cabinet = {
            "size": listing.file_size,
            "total_member_size": listing.total_size,
            "folders": [
                {
                    "index": folder.index,
                    "compression": str(folder.compression),
                    "blocks": folder.block_count,
                    "size": folder.uncompressed_size,
                }
                for folder in listing.folders
            ],
            "members": [
                {"name": member.name, "size": member.size, "folder": member.folder}
                for member in listing.members
            ],
            "signature": _plain(examined.signature),
        }
    updates = []
    for update in examined.updates:
        updates.append(
            {
                "folder": update.folder,
                **_verdict(update.reason),
                "description": _plain(update.description),
                "catalog": _catalog_report(update.catalog) if update.catalog else None,
                "files": [
                    {"name": file_name, "size": member.size, "sha256": member.sha256}
                    for file_name, member in sorted(update.files.items())
                ],
            }
        )
    return {
        "kind": "cabinet",
        "name": name,
        "size": size,
        "sha256": sha256,
        **_verdict(examined.reason),
        "cabinet": cabinet,
        "updates": updates,
        "ignored": list(examined.ignored),
        "warnings": list(examined.warnings),
    }


def catalog_report(
    catalog: CatalogInspection | str, *, name: str, size: int, sha256: str
) -> dict[str, Any]:
    """A lone catalog's examination (or the reason it is none) as JSON."""
    head = {"kind": "catalog", "name": name, "size": size, "sha256": sha256}
    if isinstance(catalog, str):
        return {**head, **_verdict(catalog), "catalog": None, "warnings": []}
    return {
        **head,
        **_verdict(catalog.reason),
        "catalog": _catalog_report(catalog),
        "warnings": list(catalog.warnings),
    }
