"""Clear unused files (management spec): the files of versions no rule refers to any
more are removed only on request, per pool, never by an approve, reset or restore.

Each server removes its own copies on its own worker; the central copy of a version
goes once no rule of any pool names it and no server still holds it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from django.core.files.storage import default_storage
from django.db import transaction
from django.db.models import Exists, OuterRef, Q

from deviceupdate.dispatch import enqueue
from portal.device_class import RuleClass
from portal.models import DeviceUpdateRule, Pool, Server, ServerFile, UpdateVersion
from portal.services.audit import Actor, audit_record
from portal.services.generation import decision_generation_bump
from portal.services.replication import store_path, versions_referenced_by

logger = logging.getLogger(__name__)


def unused_versions(*, pool: Pool) -> list[UpdateVersion]:
    """Versions some server of ``pool`` holds that no rule of the pool refers to."""
    needed = {version.pk for version in versions_referenced_by(pool=pool)}
    held = ServerFile.objects.filter(server__pool=pool).values_list("file__version_id", flat=True)
    return list(UpdateVersion.objects.filter(pk__in=held).exclude(pk__in=needed))


def unused_files_clear_queue(*, pool: Pool, actor: Actor) -> list[str]:
    """Audit the request and, after commit, ask every server of the pool to remove its
    copies of versions the pool's rules no longer name. Returns those versions' folders."""
    folders = sorted(version.folder for version in unused_versions(pool=pool))
    fqdns = list(Server.objects.filter(pool=pool).values_list("fqdn", flat=True))
    with transaction.atomic():
        audit_record(
            actor=actor,
            action="portal.pool.unused_files_cleared",
            obj=pool,
            changes={"versions": [folders, []], "servers": [None, fqdns]},
        )
        for fqdn in fqdns:
            enqueue("portal.tasks.server_remove_unused_task", server_fqdn=fqdn)
    return folders


@dataclass(frozen=True)
class RemovedCopies:
    files: int
    bytes: int
    central_versions: int


def server_remove_unused(*, server: Server, store_dir: Path) -> RemovedCopies:
    """On the server's own worker: delete its copies of versions its pool's rules no
    longer name, then the central copies of versions nobody names or holds."""
    needed = {version.pk for version in versions_referenced_by(pool=server.pool)}
    rows = list(
        ServerFile.objects.filter(server=server)
        .exclude(file__version_id__in=needed)
        .select_related("file__version")
    )
    removed = removed_bytes = 0
    for row in rows:
        path = store_path(store_dir, row.file)
        if path.is_file():
            removed_bytes += path.stat().st_size
            path.unlink()
            removed += 1
        for folder in (path.parent, path.parent.parent):
            try:
                folder.rmdir()  # only when empty
            except OSError:
                break
    if rows:
        ServerFile.objects.filter(pk__in=[row.pk for row in rows]).delete()
        decision_generation_bump()
    return RemovedCopies(removed, removed_bytes, central_versions_sweep())


def central_versions_sweep() -> int:
    """Remove from the central store the versions no rule names and no server holds."""
    held = ServerFile.objects.filter(file__version=OuterRef("pk"))
    removed = 0
    for version in UpdateVersion.objects.filter(~Exists(held)).prefetch_related("files"):
        if _named_by_a_rule(version):
            continue
        names = [file.storage_name for file in version.files.all()]
        version.delete()
        for name in names:  # storage I/O after the rows are gone
            default_storage.delete(name)
        removed += 1
    return removed


def _named_by_a_rule(version: UpdateVersion) -> bool:
    return DeviceUpdateRule.objects.filter(
        Q(pending_version=version.version)
        | Q(approved_version=version.version)
        | Q(restore_version=version.version),
        RuleClass.of(version).q(),
    ).exists()
