"""Reads of replication state, as the control panel shows it."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from django.db.models import Case, Count, Q, QuerySet, When

from portal.choices import ReplicaState
from portal.device_class import RuleClass
from portal.models import (
    DeviceUpdateRule,
    ImportJob,
    Pool,
    Server,
    ServerFile,
    UpdateFile,
    UpdateVersion,
)

# --- Replication state, as the control panel shows it --------------------------------

REPLICA_STATES = tuple(str(state) for state in ReplicaState)
NOT_RECORDED = "not recorded"  # a server that should hold the file has no row for it yet


@dataclass(frozen=True)
class ReplicaCell:
    """One file on one server: its state (or ``not recorded``) and the failure reason."""

    state: str
    error: str = ""
    attempts: int = 0


@dataclass(frozen=True)
class FileMatrixRow:
    server: Server
    cells: list[ReplicaCell]

    @property
    def lagging(self) -> bool:
        return any(cell.state != ReplicaState.VERIFIED for cell in self.cells)

    @property
    def failed(self) -> bool:
        return any(cell.state == ReplicaState.FAILED for cell in self.cells)


@dataclass(frozen=True)
class FileMatrix:
    """Servers × files of one version; columns in file-name order, rows by server FQDN."""

    files: list[UpdateFile]
    rows: list[FileMatrixRow]


@dataclass(frozen=True)
class StateCounts:
    """How many files of a set are in each state on one server, and why any failed."""

    verified: int = 0
    pending: int = 0
    copying: int = 0
    failed: int = 0
    not_recorded: int = 0
    errors: tuple[str, ...] = ()

    @property
    def total(self) -> int:
        return self.verified + self.pending + self.copying + self.failed + self.not_recorded

    @property
    def lagging(self) -> bool:
        return self.verified != self.total


@dataclass(frozen=True)
class VersionMatrixRow:
    server: Server
    cells: list[StateCounts]

    @property
    def lagging(self) -> bool:
        return any(cell.lagging for cell in self.cells)

    @property
    def failed(self) -> bool:
        return any(cell.failed for cell in self.cells)


@dataclass(frozen=True)
class VersionMatrix:
    """Servers × versions with state counts (an import can hold many versions)."""

    versions: list[UpdateVersion]
    rows: list[VersionMatrixRow]


def _pools_needing(version: UpdateVersion) -> QuerySet[Pool]:
    """Pools with a rule naming ``version`` (pending, approved or restore)."""
    rules = DeviceUpdateRule.objects.filter(
        Q(pending_version=version.version)
        | Q(approved_version=version.version)
        | Q(restore_version=version.version),
        RuleClass.of(version).q(),
    )
    return Pool.objects.filter(pk__in=rules.values("pool_id"))


def _servers_for(versions: list[UpdateVersion], pools: QuerySet[Pool] | None) -> list[Server]:
    """Servers holding a row for a file of ``versions``, or in a pool that needs them."""
    condition = Q(files__file__version__in=versions)
    for version in versions:
        condition |= Q(pool__in=_pools_needing(version))
    if pools is not None:
        condition |= Q(pool__in=pools)
    return list(Server.objects.filter(condition).distinct().order_by("fqdn"))


def version_replication_matrix(*, version: UpdateVersion) -> FileMatrix:
    """Every server that holds or needs ``version``, and the state of each of its files."""
    files = list(version.files.order_by("name"))
    servers = _servers_for([version], None)
    replicas = {
        (row.server_id, row.file_id): row
        for row in ServerFile.objects.filter(file__version=version, server__in=servers)
    }
    rows = []
    for server in servers:
        cells = []
        for file in files:
            replica = replicas.get((server.pk, file.pk))
            cells.append(
                ReplicaCell(replica.state, replica.error, replica.attempts)
                if replica is not None
                else ReplicaCell(NOT_RECORDED)
            )
        rows.append(FileMatrixRow(server=server, cells=cells))
    return FileMatrix(files=files, rows=rows)


def import_versions(*, job: ImportJob) -> list[UpdateVersion]:
    """The versions an import reported (stored by it or by an earlier import)."""
    folders = [item.get("folder", "") for item in job.updates if isinstance(item, dict)]
    return list(UpdateVersion.objects.filter(folder__in=folders).order_by("folder"))


def import_replication_matrix(*, job: ImportJob) -> VersionMatrix:
    """Servers of the import's pools (and any holding its files) × its versions."""
    versions = import_versions(job=job)
    if not versions:
        return VersionMatrix(versions=[], rows=[])
    servers = _servers_for(versions, job.pools.all())
    file_counts = dict(
        UpdateFile.objects.filter(version__in=versions)
        .values_list("version_id")
        .annotate(total=Count("pk"))
        .values_list("version_id", "total")
    )
    counts: dict[tuple[int, int], dict[str, int]] = defaultdict(dict)
    for server_id, version_id, state, total in (
        ServerFile.objects.filter(file__version__in=versions, server__in=servers)
        .values_list("server_id", "file__version_id", "state")
        .annotate(total=Count("pk"))
        .values_list("server_id", "file__version_id", "state", "total")
    ):
        counts[(server_id, version_id)][state] = total
    errors: dict[tuple[int, int], list[str]] = defaultdict(list)
    for server_id, version_id, name, error in ServerFile.objects.filter(
        file__version__in=versions, server__in=servers, state=ReplicaState.FAILED
    ).values_list("server_id", "file__version_id", "file__name", "error"):
        errors[(server_id, version_id)].append(f"{name}: {error}")
    rows = []
    for server in servers:
        cells = []
        for version in versions:
            by_state = counts.get((server.pk, version.pk), {})
            recorded = sum(by_state.values())
            cells.append(
                StateCounts(
                    verified=by_state.get(ReplicaState.VERIFIED, 0),
                    pending=by_state.get(ReplicaState.PENDING, 0),
                    copying=by_state.get(ReplicaState.COPYING, 0),
                    failed=by_state.get(ReplicaState.FAILED, 0),
                    not_recorded=file_counts.get(version.pk, 0) - recorded,
                    errors=tuple(sorted(errors.get((server.pk, version.pk), []))),
                )
            )
        rows.append(VersionMatrixRow(server=server, cells=cells))
    return VersionMatrix(versions=versions, rows=rows)


@dataclass(frozen=True)
class ImportReach:
    """How far an import's files got: its pools' servers, in words, and whether every
    server has either verified them all or failed one (nothing is still on its way)."""

    words: str
    settled: bool


def import_reach(*, job: ImportJob) -> ImportReach:
    matrix = import_replication_matrix(job=job)
    if not matrix.rows:
        return ImportReach(job.replication, True)
    failed = sum(1 for row in matrix.rows if any(cell.failed for cell in row.cells))
    verified = sum(
        1 for row in matrix.rows if all(cell.verified == cell.total for cell in row.cells)
    )
    total = len(matrix.rows)
    words = f"verified on {verified} of {total} server{'' if total == 1 else 's'}"
    if failed:
        words += f", failed on {failed}"
    return ImportReach(words, verified + failed == total)


@dataclass(frozen=True)
class ServerReplication:
    """One server on the replication dashboard: counts by state, and what lags."""

    server: Server
    counts: StateCounts
    lagging: list[ServerFile]


def replication_overview(*, lagging_limit: int = 50) -> list[ServerReplication]:
    """Every server with its counts by state and up to ``lagging_limit`` of its files
    not verified (failed first); counts come from the (server, state) index."""
    totals: dict[int, dict[str, int]] = defaultdict(dict)
    for server_id, state, total in (
        ServerFile.objects.values_list("server_id", "state")
        .annotate(total=Count("pk"))
        .values_list("server_id", "state", "total")
    ):
        totals[server_id][state] = total
    overview = []
    for server in Server.objects.select_related("pool").order_by("fqdn"):
        by_state = totals.get(server.pk, {})
        lagging = list(
            ServerFile.objects.filter(server=server)
            .exclude(state=ReplicaState.VERIFIED)
            .select_related("file__version")
            .order_by(
                Case(When(state=ReplicaState.FAILED, then=0), default=1),
                "file__storage_name",
            )[:lagging_limit]
        )
        overview.append(
            ServerReplication(
                server=server,
                counts=StateCounts(
                    verified=by_state.get(ReplicaState.VERIFIED, 0),
                    pending=by_state.get(ReplicaState.PENDING, 0),
                    copying=by_state.get(ReplicaState.COPYING, 0),
                    failed=by_state.get(ReplicaState.FAILED, 0),
                ),
                lagging=lagging,
            )
        )
    return overview
