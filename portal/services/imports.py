"""Package import (update-package spec): an uploaded cabinet becomes verified files in
the central store and pending rules, or nothing at all and a job row saying why.

``package_import_start`` streams the upload to the job's staging folder, hashing it,
and queues the task after commit; ``package_import_run`` (on a worker) reads the
cabinet from its headers, extracts it, verifies every update folder, stores the files
and sets the rules pending. Storage I/O happens outside database transactions; a
refused package deletes what this job stored and its staging folder.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import shutil
import uuid
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from django.conf import settings
from django.core.files import File
from django.core.files.storage import default_storage
from django.db import transaction
from django.utils import timezone

from portal.choices import ImportStatus, UpdateFileRole
from portal.errors import DomainError
from portal.identifiers import parse_version
from portal.models import (
    ImportJob,
    Pool,
    Server,
    TrustedPublisher,
    UpdateFile,
    UpdateVersion,
)
from portal.packaging.cabinet import ExtractedMember, extract_cabinet, read_cabinet
from portal.packaging.catalog import CatalogVerification, verify_catalog
from portal.packaging.description import (
    UpdateDescription,
    check_description_matches_folder,
    parse_description,
)
from portal.packaging.errors import PackageError
from portal.services.audit import Actor, audit_record
from portal.services.replication import replication_queue
from portal.services.rules import DeviceClass, rule_set_pending

logger = logging.getLogger(__name__)

STORE_PREFIX = "DeviceUpdateStore"
FOLDER_DEPTH = 7  # DeviceType/Brand/Model/Revision/Locale/Version/UpdateType
_CHUNK = 1024 * 1024


def job_staging_dir(job_id: int) -> Path:
    return settings.IMPORT_STAGING_DIR / f"job-{job_id}"


def package_import_start(
    *, source: IO[bytes] | Iterable[bytes], filename: str, pools: list[Pool], actor: Actor
) -> ImportJob:
    """Stream the package to disk (hashing it), record the job and queue it after commit.

    ``source`` is a binary file or an iterable of chunks (an upload's ``chunks()``).
    With no pools the package goes to every pool.
    """
    name = Path(filename.replace("\\", "/")).name[:255] or "package.cab"
    settings.IMPORT_STAGING_DIR.mkdir(parents=True, exist_ok=True)
    incoming = settings.IMPORT_STAGING_DIR / f"incoming-{uuid.uuid4().hex}"
    incoming.mkdir(mode=0o700)
    try:
        size, sha256 = _stream_to(incoming / "package.cab", _chunks(source))
        with transaction.atomic():
            job = ImportJob.objects.create(
                actor=actor.user,
                actor_name=actor.name[:150],
                package_name=name,
                package_size=size,
                package_sha256=sha256,
            )
            job.pools.set(pools or list(Pool.objects.all()))
            incoming.rename(job_staging_dir(job.pk))
            from portal.tasks import package_import_task

            transaction.on_commit(lambda: package_import_task.delay(job_id=job.pk))
    except BaseException:
        shutil.rmtree(incoming, ignore_errors=True)
        raise
    return job


def _chunks(source: IO[bytes] | Iterable[bytes]) -> Iterator[bytes]:
    if hasattr(source, "read"):
        while chunk := source.read(_CHUNK):
            yield chunk
    else:
        yield from source


def _stream_to(path: Path, chunks: Iterator[bytes]) -> tuple[int, str]:
    digest = hashlib.sha256()
    size = 0
    limit = settings.IMPORT_MAX_PACKAGE_SIZE
    with open(path, "xb") as out:
        for chunk in chunks:
            size += len(chunk)
            if size > limit:
                raise DomainError(
                    f"the package is larger than the limit of {limit:,} bytes", field="package"
                )
            digest.update(chunk)
            out.write(chunk)
    if size == 0:
        raise DomainError("the package is empty", field="package")
    return size, digest.hexdigest()


@dataclass
class _Folder:
    path: str
    files: dict[str, ExtractedMember] = field(default_factory=dict)


@dataclass(frozen=True)
class _VerifiedUpdate:
    folder: _Folder
    description: UpdateDescription
    catalog: CatalogVerification


def package_import_run(*, job_id: int) -> ImportJob | None:
    """Run a queued import; returns None when another worker already claimed it."""
    claimed = ImportJob.objects.filter(pk=job_id, status=ImportStatus.QUEUED).update(
        status=ImportStatus.RUNNING, started_at=timezone.now(), step="reading the cabinet"
    )
    if not claimed:
        return None
    job = ImportJob.objects.get(pk=job_id)
    staging = job_staging_dir(job.pk)
    stored: list[str] = []
    try:
        _run(job, staging, stored)
    except (PackageError, DomainError) as error:
        _undo(stored)
        _finish(job, status=ImportStatus.FAILED, error=error.message)
    except Exception:
        logger.exception("import #%s failed unexpectedly", job.pk)
        _undo(stored)
        _finish(job, status=ImportStatus.FAILED, error="internal error; see the worker's log")
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    job.refresh_from_db()
    return job


def _progress(job: ImportJob, percent: int, step: str) -> None:
    ImportJob.objects.filter(pk=job.pk).update(progress=percent, step=step)


def _finish(job: ImportJob, *, status: ImportStatus, error: str = "") -> None:
    ImportJob.objects.filter(pk=job.pk).update(
        status=status,
        error=error,
        progress=100,
        step="done" if status == ImportStatus.SUCCEEDED else "refused",
        finished_at=timezone.now(),
    )


def _undo(stored: list[str]) -> None:
    for name in stored:
        try:
            default_storage.delete(name)
        except OSError:
            logger.exception("could not delete %s after a refused import", name)


def _run(job: ImportJob, staging: Path, stored: list[str]) -> None:
    package = staging / "package.cab"
    listing = read_cabinet(
        package,
        max_member_size=settings.IMPORT_MAX_MEMBER_SIZE,
        max_total_size=settings.IMPORT_MAX_PACKAGE_SIZE,
        refuse_unsupported=False,
    )
    folders, warnings = _group(member.name for member in listing.members)
    if not folders:
        raise PackageError("no device update in the package")
    _progress(job, 20, "extracting")
    extract_dir = staging / "extract"
    extract_dir.mkdir()
    for member in extract_cabinet(package, extract_dir, listing):
        folder_path, _, file_name = member.name.rpartition("/")
        if folder_path in folders:
            folders[folder_path].files[file_name] = member
    _progress(job, 50, "verifying descriptions and catalogs")
    trusted = [p.certificate_pem.encode("ascii") for p in TrustedPublisher.objects.all()]
    if not trusted:
        raise PackageError("no trusted publisher is configured; add the vendor's certificate")
    verified = [_verify(folder, trusted) for folder in folders.values()]
    for update in verified:
        warnings.extend(f"{update.folder.path}: {text}" for text in update.catalog.warnings)
    _progress(job, 70, "storing files")
    for update in verified:
        _store(update, stored)
    _progress(job, 90, "setting rules pending")
    _record(job, verified, warnings)


def _group(names: Iterable[str]) -> tuple[dict[str, _Folder], list[str]]:
    folders: dict[str, _Folder] = {}
    ignored: list[str] = []
    members_by_folder: dict[str, list[str]] = defaultdict(list)
    for name in names:
        parts = name.split("/")
        if len(parts) == FOLDER_DEPTH + 1:
            members_by_folder["/".join(parts[:FOLDER_DEPTH])].append(parts[-1])
        else:
            ignored.append(f"{name}: ignored (outside an update folder)")
    for path, file_names in sorted(members_by_folder.items()):
        update_type = path.rsplit("/", 1)[-1]
        lowered = {file_name.lower() for file_name in file_names}
        for needed in (f"{update_type}.xml", f"{update_type}.cat"):
            if needed.lower() not in lowered:
                kind = "description" if needed.endswith(".xml") else "security catalog"
                raise PackageError(f"the update folder {path} has no {kind} {needed}")
        folders[path] = _Folder(path)
    return folders, ignored


def _verify(folder: _Folder, trusted: list[bytes]) -> _VerifiedUpdate:
    update_type = folder.path.rsplit("/", 1)[-1]
    by_lower = {name.lower(): member for name, member in folder.files.items()}
    description_member = by_lower[f"{update_type}.xml".lower()]
    catalog_member = by_lower[f"{update_type}.cat".lower()]
    description = parse_description(
        description_member.path.read_bytes(), member=description_member.name
    )
    check_description_matches_folder(
        description, folder=folder.path, file_names=folder.files, member=description_member.name
    )
    catalog = verify_catalog(
        catalog_member.path.read_bytes(),
        files={name: member.path for name, member in folder.files.items()},
        trusted_publishers=trusted,
        catalog_name=catalog_member.name.rsplit("/", 1)[-1],
        refuse_sha1=settings.IMPORT_REFUSE_SHA1,
        known_sha256={name: member.sha256 for name, member in folder.files.items()},
    )
    return _VerifiedUpdate(folder=folder, description=description, catalog=catalog)


def _role(update: _VerifiedUpdate, name: str) -> UpdateFileRole:
    update_type = update.description.update_type.lower()
    if name.lower() == f"{update_type}.xml":
        return UpdateFileRole.DESCRIPTION
    if name.lower() == f"{update_type}.cat":
        return UpdateFileRole.CATALOG
    return UpdateFileRole.IMAGE


def storage_name(folder: str, file_name: str) -> str:
    return f"{STORE_PREFIX}/{folder}/{file_name}"


def _store(update: _VerifiedUpdate, stored: list[str]) -> None:
    """Copy the folder's files into the central store, once: a version never changes."""
    known = {row.name: row for row in UpdateFile.objects.filter(version__folder=update.folder.path)}
    for name, member in sorted(update.folder.files.items()):
        target = storage_name(update.folder.path, name)
        existing = known.get(name)
        if existing is not None:
            if existing.sha256 != member.sha256:
                raise PackageError(
                    f"version {update.description.version} of {update.folder.path} was "
                    f"imported before with a different {name}; a version cannot change"
                )
            continue
        if default_storage.exists(target):
            # Left by an import that died before recording it: not trusted, replaced.
            default_storage.delete(target)
        with open(member.path, "rb") as handle:
            saved = default_storage.save(target, File(handle, name=name))
        if saved != target:
            default_storage.delete(saved)
            raise PackageError(f"{target}: the file store renamed the file to {saved}")
        stored.append(target)


def _record(job: ImportJob, verified: list[_VerifiedUpdate], warnings: list[str]) -> None:
    actor = Actor(user=job.actor, name=job.actor_name)
    report: list[dict[str, Any]] = []
    pools = list(job.pools.order_by("fqdn"))
    stored_versions: list[UpdateVersion] = []
    with transaction.atomic():
        for update in verified:
            description = update.description
            version, _ = UpdateVersion.objects.get_or_create(
                folder=update.folder.path,
                defaults={
                    "device_type": description.device_type,
                    "brand": description.brand,
                    "model": description.model,
                    "revision": description.revision,
                    "locale": description.locale,
                    "version": description.version,
                    "update_type": description.update_type,
                    "rule_id": description.id,
                    "release_date": str(description.release_date or ""),
                    "description": (description.description or "")[:400],
                    "signer": update.catalog.signer_subject[:1000],
                    "catalog_digest": update.catalog.digest_algorithm,
                    "import_job": job,
                },
            )
            stored_versions.append(version)
            for name, member in sorted(update.folder.files.items()):
                UpdateFile.objects.get_or_create(
                    version=version,
                    name=name,
                    defaults={
                        "role": _role(update, name),
                        "size": member.size,
                        "sha256": member.sha256,
                        "storage_name": storage_name(update.folder.path, name),
                    },
                )
            rules = []
            device_class = DeviceClass(
                description.device_type,
                description.brand,
                description.model,
                description.revision,
                description.locale,
                description.update_type,
            )
            for pool in pools:
                rule, changed = rule_set_pending(
                    pool=pool,
                    rule_id=description.id,
                    device_class=device_class,
                    version=description.version,
                    actor=actor,
                )
                rules.append({"identity": rule.identity, "changed": changed})
                if rule.approved_version and parse_version(description.version) < parse_version(
                    rule.approved_version
                ):
                    warnings.append(
                        f"{update.folder.path}: {description.version} is older than the "
                        f"approved {rule.approved_version} on {pool.fqdn}; approving it "
                        "is a downgrade"
                    )
            report.append(
                {
                    "folder": update.folder.path,
                    "rule_id": str(description.id),
                    "version": description.version,
                    "catalog_digest": update.catalog.digest_algorithm,
                    "files": [
                        {"name": name, "size": member.size, "sha256": member.sha256}
                        for name, member in sorted(update.folder.files.items())
                    ],
                    "rules": rules,
                }
            )
        servers = list(Server.objects.filter(pool__in=pools))
        replication_queue(versions=stored_versions, servers=servers)
        signers = sorted({update.catalog.signer_subject for update in verified})
        ImportJob.objects.filter(pk=job.pk).update(
            signer="; ".join(signers)[:1000],
            updates=report,
            warnings=warnings,
            replication=f"queued to {len(servers)} server(s)",
        )
        _finish(job, status=ImportStatus.SUCCEEDED)
        job.refresh_from_db()
        audit_record(
            actor=actor,
            action="portal.package.imported",
            obj=job,
            changes={
                "package_sha256": [None, job.package_sha256],
                "updates": [None, [item["folder"] for item in report]],
            },
        )


def imports_recover(*, stale_after: dt.timedelta) -> tuple[int, int]:
    """Beat: end imports whose worker died, and send again those whose message was lost.

    A running job older than ``stale_after`` is failed (its database changes are one
    transaction, so nothing was half-applied) and its staging folder removed; a queued
    one is queued again (claiming is atomic, so a duplicate message does no harm).
    Returns (failed, requeued).
    """
    from portal.tasks import package_import_task

    cutoff = timezone.now() - stale_after
    failed = 0
    for job_id in ImportJob.objects.filter(
        status=ImportStatus.RUNNING, started_at__lt=cutoff
    ).values_list("pk", flat=True):
        failed += ImportJob.objects.filter(pk=job_id, status=ImportStatus.RUNNING).update(
            status=ImportStatus.FAILED,
            error="the worker stopped during the import; nothing was applied, import it again",
            step="refused",
            finished_at=timezone.now(),
        )
        shutil.rmtree(job_staging_dir(job_id), ignore_errors=True)
    queued = list(
        ImportJob.objects.filter(status=ImportStatus.QUEUED, created_at__lt=cutoff).values_list(
            "pk", flat=True
        )
    )
    for job_id in queued:
        package_import_task.delay(job_id=job_id)
    return failed, len(queued)


def central_store_sweep_orphans(*, older_than: dt.timedelta) -> list[str]:
    """Delete files of the central store that no update records (left by a dead import).

    Does nothing while an import runs: its files are not recorded until it commits.
    """
    if ImportJob.objects.filter(status=ImportStatus.RUNNING).exists():
        return []
    known = set(UpdateFile.objects.values_list("storage_name", flat=True))
    cutoff = timezone.now() - older_than
    removed = []
    for name in _walk(STORE_PREFIX):
        if name not in known and default_storage.get_modified_time(name) < cutoff:
            default_storage.delete(name)
            removed.append(name)
    return removed


def _walk(prefix: str) -> Iterator[str]:
    if not default_storage.exists(prefix):
        return
    directories, files = default_storage.listdir(prefix)
    for file_name in files:
        yield f"{prefix}/{file_name}"
    for directory in directories:
        yield from _walk(f"{prefix}/{directory}")
