"""Replication: every server of a pool gets a verified copy of every update it needs.

Each copy is written by the server's own worker (queue ``server.<fqdn>``) to a
temporary name in the target folder, checked for size and SHA-256, and only then
renamed into place, so a file present in a store is a verified file. Every step is
idempotent: running a replication twice leaves the same state.
"""

from __future__ import annotations

import hashlib
import logging
import os
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from deviceupdate.dispatch import enqueue
from portal.choices import ReplicaState, WebhookEvent
from portal.device_class import RuleClass
from portal.models import DeviceUpdateRule, Pool, Server, ServerFile, UpdateFile, UpdateVersion
from portal.services.audit import Actor, audit_record
from portal.services.central_store import StoreUnavailableError, central_store_chunks
from portal.services.generation import decision_generation_bump
from portal.services.webhooks import webhook_event_emit

logger = logging.getLogger(__name__)

_CHUNK = 1024 * 1024


class TransientStorageError(Exception):
    """The central store could not be read right now; the task retries with backoff."""


@dataclass(frozen=True)
class ReplicationResult:
    verified: int
    copied: int
    failed: int


def versions_referenced_by(*, pool: Pool) -> list[UpdateVersion]:
    """Every stored version a rule of ``pool`` names (pending, approved or restore)."""
    conditions = Q(pk__in=[])
    for rule in DeviceUpdateRule.objects.filter(pool=pool):
        versions = {rule.pending_version, rule.approved_version, rule.restore_version} - {""}
        if versions:
            conditions |= RuleClass.of(rule).q() & Q(version__in=versions)
    return list(UpdateVersion.objects.filter(conditions))


def replication_queue(*, versions: Iterable[UpdateVersion], servers: Iterable[Server]) -> int:
    """Record every missing (server, file) as pending and send one task per (server,
    version) after commit. Call inside the transaction that made the versions needed."""
    versions = list(versions)
    files = list(UpdateFile.objects.filter(version__in=versions))
    sent = 0
    for server in servers:
        existing = set(
            ServerFile.objects.filter(server=server, file__in=files).values_list(
                "file_id", flat=True
            )
        )
        ServerFile.objects.bulk_create(
            [ServerFile(server=server, file=f) for f in files if f.pk not in existing]
        )
        for version in versions:
            enqueue(
                "portal.tasks.server_replicate_task",
                server_fqdn=server.fqdn,
                version_id=version.pk,
            )
            sent += 1
    return sent


def server_catch_up_queue(*, server: Server) -> None:
    """A new or lagging server: after commit, check its store and copy what it lacks."""
    enqueue("portal.tasks.server_check_store_task", server_fqdn=server.fqdn)


def store_path(store_dir: Path, file: UpdateFile) -> Path:
    return store_dir / file.version.folder / file.name


def server_replicate(*, server: Server, version_id: int, store_dir: Path) -> ReplicationResult:
    """Copy and verify the files of one version into this server's store."""
    rows = list(
        ServerFile.objects.filter(server=server, file__version_id=version_id)
        .exclude(state=ReplicaState.VERIFIED)
        .select_related("file__version")
    )
    copied = failed = 0
    for row in rows:
        outcome = _replicate_file(row, store_dir)
        copied += outcome == "copied"
        failed += outcome == "failed"
    verified = ServerFile.objects.filter(
        server=server, file__version_id=version_id, state=ReplicaState.VERIFIED
    ).count()
    return ReplicationResult(verified=verified, copied=copied, failed=failed)


def _set(row: ServerFile, state: ReplicaState, error: str = "") -> None:
    if (row.state == ReplicaState.VERIFIED) != (state == ReplicaState.VERIFIED):
        decision_generation_bump()  # what this server may offer changes
    ServerFile.objects.filter(pk=row.pk).update(
        state=state,
        error=error[:500],
        updated_at=timezone.now(),
        verified_at=timezone.now() if state == ReplicaState.VERIFIED else None,
    )


def _replicate_file(row: ServerFile, store_dir: Path) -> str:
    file = row.file
    target = store_path(store_dir, file)
    ServerFile.objects.filter(pk=row.pk).update(
        state=ReplicaState.COPYING, attempts=row.attempts + 1, updated_at=timezone.now()
    )
    if target.is_file() and _digest(target) == (file.size, file.sha256):
        _set(row, ReplicaState.VERIFIED)
        return "verified"
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = target.with_name(f".{target.name}.{uuid.uuid4().hex}.part")
    try:
        size, sha256 = _copy_from_central(file.storage_name, temporary)
        if (size, sha256) != (file.size, file.sha256):
            temporary.unlink()
            _set(
                row,
                ReplicaState.FAILED,
                f"the copy does not match the import: {size} bytes, SHA-256 {sha256} "
                f"(expected {file.size} bytes, {file.sha256})",
            )
            return "failed"
        os.replace(temporary, target)
    except BaseException:
        temporary.unlink(missing_ok=True)
        _set(row, ReplicaState.PENDING)
        raise
    _set(row, ReplicaState.VERIFIED)
    return "copied"


def _copy_from_central(name: str, temporary: Path) -> tuple[int, str]:
    """Stream ``name`` from the central store (a local folder or S3) into ``temporary``.
    A store that cannot be read now (down, refusing the credentials) is transient: the
    task retries with backoff, and the server keeps serving what it holds."""
    digest = hashlib.sha256()
    size = 0
    chunks = central_store_chunks(name)
    with open(temporary, "xb") as out:
        while (chunk := _next_chunk(name, chunks)) is not None:
            digest.update(chunk)
            size += len(chunk)
            out.write(chunk)
        out.flush()
        os.fsync(out.fileno())
    return size, digest.hexdigest()


def _next_chunk(name: str, chunks: Iterator[bytes]) -> bytes | None:
    """The next chunk read from the central store (None at its end); what fails there,
    not in this server's own store, is transient."""
    try:
        return next(chunks, None)
    except FileNotFoundError:
        raise
    except (OSError, StoreUnavailableError) as error:
        message = error.message if isinstance(error, StoreUnavailableError) else error
        raise TransientStorageError(
            f"cannot read {name} from the central store: {message}"
        ) from error


def _digest(path: Path) -> tuple[int, str]:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return path.stat().st_size, digest.hexdigest()


@dataclass(frozen=True)
class StoreCheck:
    missing: int
    corrupt: int
    added: int
    result: ReplicationResult


def server_check_store(*, server: Server, store_dir: Path, full: bool) -> StoreCheck:
    """Anti-entropy for one server: record what its pool's rules need, re-check what it
    holds (size always, SHA-256 with ``full``), and copy again whatever is missing or
    corrupt. Never removes a file a rule no longer needs."""
    needed = versions_referenced_by(pool=server.pool)
    with transaction.atomic():
        before = ServerFile.objects.filter(server=server).count()
        files = UpdateFile.objects.filter(version__in=needed)
        existing = set(
            ServerFile.objects.filter(server=server, file__in=files).values_list(
                "file_id", flat=True
            )
        )
        ServerFile.objects.bulk_create(
            [ServerFile(server=server, file=f) for f in files if f.pk not in existing]
        )
        added = ServerFile.objects.filter(server=server).count() - before
    missing = corrupt = 0
    for row in ServerFile.objects.filter(server=server, state=ReplicaState.VERIFIED).select_related(
        "file__version"
    ):
        path = store_path(store_dir, row.file)
        if not path.is_file():
            missing += 1
            _set(row, ReplicaState.PENDING, "missing from the store")
        elif path.stat().st_size != row.file.size or (
            full and _digest(path) != (row.file.size, row.file.sha256)
        ):
            corrupt += 1
            path.unlink()
            _set(row, ReplicaState.PENDING, "corrupt copy removed")
    copied = failed = verified = 0
    versions = (
        ServerFile.objects.filter(server=server)
        .exclude(state=ReplicaState.VERIFIED)
        .values_list("file__version_id", flat=True)
        .distinct()
    )
    for version_id in list(versions):
        result = server_replicate(server=server, version_id=version_id, store_dir=store_dir)
        copied += result.copied
        failed += result.failed
    verified = ServerFile.objects.filter(server=server, state=ReplicaState.VERIFIED).count()
    if missing or corrupt:
        # The anti-entropy found copies this server was believed to hold verified gone or
        # damaged: it was out of sync (and may still be, if a copy failed again).
        webhook_event_emit(
            event=WebhookEvent.SERVER_OUT_OF_SYNC,
            payload={"server": server.fqdn, "pool": server.pool.fqdn, "missing": missing,
                     "corrupt": corrupt, "copied": copied, "failed": failed},
        )  # fmt: skip
    return StoreCheck(
        missing=missing,
        corrupt=corrupt,
        added=added,
        result=ReplicationResult(verified=verified, copied=copied, failed=failed),
    )


def server_verified_folders(*, server: Server) -> set[str]:
    """Folders whose every file this server holds verified (what it may offer phones)."""
    states: dict[str, bool] = {}
    for folder, state in ServerFile.objects.filter(server=server).values_list(
        "file__version__folder", "state"
    ):
        states[folder] = states.get(folder, True) and state == ReplicaState.VERIFIED
    return {folder for folder, ok in states.items() if ok}


def servers_resync_queue(*, servers: Iterable[Server], actor: Actor) -> int:
    """Audit a re-sync request per server and, after commit, queue a full store check
    (SHA-256 of every copy, then copy what is missing) on each server's own queue."""
    sent = 0
    with transaction.atomic():
        for server in servers:
            audit_record(
                actor=actor,
                action="portal.server.resync_requested",
                obj=server,
                changes={"full_check": [None, True]},
            )
            enqueue("portal.tasks.server_check_store_task", server_fqdn=server.fqdn, full=True)
            sent += 1
    return sent
