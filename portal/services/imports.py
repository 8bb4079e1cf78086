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
import threading
import uuid
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import IO, Any

from django.conf import settings
from django.core.files.storage import default_storage
from django.db import DatabaseError, connections, transaction
from django.db.models import Q
from django.utils import timezone

from deviceupdate.dispatch import enqueue, enqueue_now
from portal.choices import ImportStatus, WebhookEvent
from portal.errors import DomainError
from portal.models import (
    ImportJob,
    Pool,
    TrustedPublisher,
    UpdateFile,
    UpdateVersion,
)
from portal.packaging.errors import PackageError
from portal.packaging.inspection import (
    ExaminedPackage,
    ExaminedUpdate,
    Limits,
    catalog_report,
    examine_catalog,
    examine_package,
    file_kind,
    package_report,
)
from portal.services.audit import Actor, audit_record
from portal.services.central_store import (
    INCOMING_PREFIX,
    StoreVerifyError,
    central_store_delete,
    central_store_discard,
    central_store_put,
    central_store_walk,
)
from portal.services.import_records import (
    STORE_PREFIX,
    storage_name,
    update_report,
    update_rows_store,
    update_rules_set_pending,
    versions_replication_queue,
)
from portal.services.webhooks import webhook_event_emit

logger = logging.getLogger(__name__)

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
    name = _package_name(filename)
    incoming = _incoming_dir()
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
            enqueue("portal.tasks.package_import_task", job_id=job.pk)
    except BaseException:
        shutil.rmtree(incoming, ignore_errors=True)
        raise
    return job


def _package_name(filename: str) -> str:
    return Path(filename.replace("\\", "/")).name[:255] or "package.cab"


def _incoming_dir() -> Path:
    """A private, new folder in the staging area for one upload."""
    settings.IMPORT_STAGING_DIR.mkdir(parents=True, exist_ok=True)
    incoming = settings.IMPORT_STAGING_DIR / f"incoming-{uuid.uuid4().hex}"
    incoming.mkdir(mode=0o700)
    return incoming


def _chunks(source: IO[bytes] | Iterable[bytes]) -> Iterator[bytes]:
    if hasattr(source, "read"):
        while chunk := source.read(_CHUNK):
            yield chunk
    else:
        yield from source


def _stream_to(
    path: Path, chunks: Iterator[bytes], *, allow_empty: bool = False
) -> tuple[int, str]:
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
    if size == 0 and not allow_empty:
        raise DomainError("the package is empty", field="package")
    return size, digest.hexdigest()


def package_import_run(*, job_id: int) -> ImportJob | None:
    """Run a queued import; returns None when another worker already claimed it.

    While it runs, the job's lease is renewed every IMPORT_LEASE_RENEW_SECONDS; a job
    whose lease ran out has lost its worker (``imports_recover``).
    """
    now = timezone.now()
    claimed = ImportJob.objects.filter(pk=job_id, status=ImportStatus.QUEUED).update(
        status=ImportStatus.RUNNING,
        started_at=now,
        lease_expires_at=now + _lease_period(),
        step="reading the cabinet",
    )
    if not claimed:
        return None
    job = ImportJob.objects.get(pk=job_id)
    staging = job_staging_dir(job.pk)
    stored: list[str] = []
    try:
        with _JobLease(job.pk):
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
        _discard_incoming(job.pk)
    job.refresh_from_db()
    return job


def _lease_period() -> dt.timedelta:
    return dt.timedelta(seconds=settings.IMPORT_LEASE_SECONDS)


class _JobLease:
    """Renews a running job's lease from a thread of the worker process, so that a
    worker killed mid-import (SIGKILL, a lost machine) stops renewing it and the job is
    taken for dead within IMPORT_LEASE_SECONDS, not the task's whole time limit."""

    def __init__(self, job_id: int) -> None:
        self.job_id = job_id
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._renew, name=f"import-{job_id}-lease", daemon=True
        )

    def __enter__(self) -> _JobLease:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join()

    def _renew(self) -> None:
        try:
            while not self._stop.wait(settings.IMPORT_LEASE_RENEW_SECONDS):
                try:
                    renewed = ImportJob.objects.filter(
                        pk=self.job_id, status=ImportStatus.RUNNING
                    ).update(lease_expires_at=timezone.now() + _lease_period())
                except DatabaseError as error:
                    # Tried again at the next period; the lease outlasts a few misses.
                    logger.warning("import #%s: could not renew its lease: %s", self.job_id, error)
                    continue
                if not renewed:
                    return  # no longer running (given up by the recovery): nothing to keep
        finally:
            connections.close_all()  # this thread's own connections


def _discard_incoming(job_id: int) -> None:
    try:
        central_store_discard(owner=f"job-{job_id}")
    except OSError:
        logger.exception("import #%s: could not remove its temporary files", job_id)


def package_inspect(
    *,
    source: IO[bytes] | Iterable[bytes],
    filename: str,
    files: Mapping[str, IO[bytes] | Iterable[bytes]] | None = None,
) -> dict[str, Any]:
    """Examine a package (.cab) or a lone catalog (.cat) exactly as its import would.

    ``files`` (file name to content) are a lone catalog's member files: each is compared
    with the catalog's entries, as the import compares an update folder. Writes nothing
    that outlives the call: no job row, no stored file (the uploads and the extraction
    live in a scratch folder removed before returning).
    """
    name = _package_name(filename)
    scratch = _incoming_dir()
    try:
        package = scratch / "package"
        size, sha256 = _stream_to(package, _chunks(source))
        trusted = _trusted_publishers()
        if file_kind(package) == "catalog":
            paths = _stream_files(scratch / "files", files) if files is not None else None
            catalog = examine_catalog(
                package, trusted_publishers=trusted, limits=_limits(), files=paths
            )
            return catalog_report(catalog, name=name, size=size, sha256=sha256)
        if files:
            raise DomainError("member files go with a security catalog, not a cabinet")
        work_dir = scratch / "extract"
        work_dir.mkdir()
        examined = examine_package(
            package, work_dir=work_dir, trusted_publishers=trusted, limits=_limits()
        )
        return package_report(examined, name=name, size=size, sha256=sha256)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _stream_files(
    folder: Path, files: Mapping[str, IO[bytes] | Iterable[bytes]]
) -> dict[str, Path]:
    """Write a lone catalog's member files to a scratch folder, under their own names only."""
    folder.mkdir()
    paths: dict[str, Path] = {}
    for index, (file_name, content) in enumerate(sorted(files.items())):
        own = _package_name(file_name)
        if own.casefold() in {known.casefold() for known in paths}:
            raise DomainError(f"{own}: two files have this name", field="files")
        path = folder / f"{index:05d}"
        _stream_to(path, _chunks(content), allow_empty=True)
        paths[own] = path
    return paths


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
    webhook_event_emit(event=IMPORT_EVENTS[status], payload=import_event_data(job, error=error))


IMPORT_EVENTS = {
    ImportStatus.SUCCEEDED: WebhookEvent.IMPORT_SUCCEEDED,
    ImportStatus.FAILED: WebhookEvent.IMPORT_REFUSED,
}


def import_event_data(job: ImportJob, *, error: str) -> dict[str, Any]:
    """What a webhook is told of a finished import (its updates are in the API)."""
    return {
        "import": job.pk,
        "package": job.package_name,
        "package_sha256": job.package_sha256,
        "actor": job.actor_name,
        "error": error or None,
    }


def _undo(stored: list[str]) -> None:
    for name in stored:
        try:
            central_store_delete(name=name)  # a store out of reach: left for the sweep
        except OSError:
            logger.exception("could not delete %s after a refused import", name)


def _trusted_publishers() -> list[bytes]:
    return [p.certificate_pem.encode("ascii") for p in TrustedPublisher.objects.all()]


def _limits() -> Limits:
    return Limits(
        max_member_size=settings.IMPORT_MAX_MEMBER_SIZE,
        max_total_size=settings.IMPORT_MAX_PACKAGE_SIZE,
        refuse_sha1=settings.IMPORT_REFUSE_SHA1,
    )


def _run(job: ImportJob, staging: Path, stored: list[str]) -> None:
    _progress(job, 20, "extracting and verifying")
    extract_dir = staging / "extract"
    extract_dir.mkdir()
    examined = examine_package(
        staging / "package.cab",
        work_dir=extract_dir,
        trusted_publishers=_trusted_publishers(),
        limits=_limits(),
    )
    if not examined.accepted:
        raise PackageError(examined.reason)
    _progress(job, 70, "storing files")
    for update in examined.updates:
        _store(job, update, stored)
    _progress(job, 90, "setting rules pending")
    _record(job, examined)


def _store(job: ImportJob, update: ExaminedUpdate, stored: list[str]) -> None:
    """Copy the folder's files into the central store, once: a version never changes.

    Each file lands under its final name only after the store's copy was checked
    against the size and SHA-256 the catalog verified (``central_store_put``).
    """
    known = {row.name: row for row in UpdateFile.objects.filter(version__folder=update.folder)}
    for name, member in sorted(update.files.items()):
        target = storage_name(update.folder, name)
        existing = known.get(name)
        if existing is not None:
            if existing.sha256 != member.sha256:
                version = update.description.version if update.description else ""
                raise PackageError(
                    f"version {version} of {update.folder} was "
                    f"imported before with a different {name}; a version cannot change"
                )
            continue
        # A file under ``target`` no row records was left by an import that died after
        # storing it and before recording it: not trusted, replaced by this verified copy.
        try:
            central_store_put(
                source=member.path,
                name=target,
                size=member.size,
                sha256=member.sha256,
                owner=f"job-{job.pk}",
            )
        except StoreVerifyError as error:
            raise PackageError(error.message) from None
        stored.append(target)


def _record(job: ImportJob, examined: ExaminedPackage) -> None:
    """Record an examined package in one transaction, step by step: store its rows, set
    its rules pending, report, queue replication; then finish the job, audited."""
    actor = Actor(user=job.actor, name=job.actor_name)
    warnings = list(examined.ignored) + list(examined.warnings)
    pools = list(job.pools.order_by("fqdn"))
    report: list[dict[str, Any]] = []
    stored_versions: list[UpdateVersion] = []
    with transaction.atomic():
        # Still ours? The recovery may have given the job up (its lease ran out while
        # this worker was cut off); this row lock orders the two.
        if not ImportJob.objects.filter(pk=job.pk, status=ImportStatus.RUNNING).update(
            lease_expires_at=timezone.now() + _lease_period()
        ):
            raise PackageError("the import was given up while it ran; import it again")
        for update in examined.updates:
            stored_versions.append(update_rows_store(job=job, update=update))
            rules = update_rules_set_pending(
                update=update, pools=pools, actor=actor, warnings=warnings
            )
            report.append(update_report(update=update, rules=rules))
        replication = versions_replication_queue(versions=stored_versions, pools=pools)
        signers = sorted({update.signer_subject for update in examined.updates})
        cabinet_signer = examined.signature.signer if examined.signature else None
        ImportJob.objects.filter(pk=job.pk).update(
            signer="; ".join(signers)[:1000],
            cabinet_signer=cabinet_signer.subject[:1000] if cabinet_signer else "",
            updates=report,
            warnings=warnings,
            replication=replication,
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


def imports_recover(
    *, stale_after: dt.timedelta, now: dt.datetime | None = None
) -> tuple[int, int]:
    """Beat: end imports whose worker died, and send again those whose message was lost.

    A running job whose lease ran out (its worker stopped renewing it), or with no lease
    and started longer than ``stale_after`` ago, is failed with the reason (its database
    changes are one transaction, so nothing was half-applied); its staging folder and
    its temporary files in the central store are removed, so the same package can be
    imported again at once. A queued job older than ``stale_after`` is queued again
    (claiming is atomic, so a duplicate message does no harm). ``now`` is the clock.
    Returns (failed, requeued).
    """
    now = now or timezone.now()
    cutoff = now - stale_after
    dead = Q(lease_expires_at__lt=now) | Q(lease_expires_at__isnull=True, started_at__lt=cutoff)
    failed = 0
    for job_id, lease in ImportJob.objects.filter(dead, status=ImportStatus.RUNNING).values_list(
        "pk", "lease_expires_at"
    ):
        since = f" (its lease ran out at {lease:%Y-%m-%d %H:%M:%S} UTC)" if lease else ""
        # Conditional: a lease renewed meanwhile, or a job that finished, is left alone.
        given_up = ImportJob.objects.filter(dead, pk=job_id, status=ImportStatus.RUNNING).update(
            status=ImportStatus.FAILED,
            error=(
                f"the worker stopped during the import{since}; nothing was applied, import it again"
            ),
            step="refused",
            finished_at=now,
        )
        if given_up:
            failed += 1
            shutil.rmtree(job_staging_dir(job_id), ignore_errors=True)
            _discard_incoming(job_id)
    queued = list(
        ImportJob.objects.filter(status=ImportStatus.QUEUED, created_at__lt=cutoff).values_list(
            "pk", flat=True
        )
    )
    for job_id in queued:
        enqueue_now("portal.tasks.package_import_task", job_id=job_id)
    return failed, len(queued)


def central_store_sweep_orphans(*, older_than: dt.timedelta) -> list[str]:
    """Delete files of the central store that no update records (left by a dead import),
    and temporary files no running import owns.

    Does nothing while an import runs: its files are not recorded until it commits.
    """
    if ImportJob.objects.filter(status=ImportStatus.RUNNING).exists():
        return []
    known = set(UpdateFile.objects.values_list("storage_name", flat=True))
    cutoff = timezone.now() - older_than
    removed = []
    for prefix in (STORE_PREFIX, INCOMING_PREFIX):
        for name in central_store_walk(default_storage, prefix):
            if name not in known and default_storage.get_modified_time(name) < cutoff:
                default_storage.delete(name)
                removed.append(name)
    return removed
