"""Reads of the control panel: scopes, effective log settings, rule lists."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, fields
from datetime import time

from django.db.models import Case, Count, Q, QuerySet, When

from portal.choices import ReplicaState, RolloutState, RuleState
from portal.device_class import RuleClass
from portal.errors import DomainError
from portal.models import (
    DeviceGroupMember,
    DeviceLogConfiguration,
    DeviceUpdateRule,
    ImportJob,
    Pool,
    Rollout,
    RolloutWave,
    Server,
    ServerFile,
    Site,
    UpdateFile,
    UpdateVersion,
)
from portal.waves import Reach, WaveTargets, reach_of


def scope_resolve(scope: str) -> Site | None:
    """``global`` is None; ``site:<name>`` is that site; anything else is refused."""
    text = scope.strip()
    if text.lower() == "global":
        return None
    if text.lower().startswith("site:") and text[5:].strip():
        name = text[5:].strip()
        site = Site.objects.filter(name__iexact=name).first()
        if site is None:
            raise DomainError(f"no site named {name!r}", field="scope", code="unknown_scope")
        return site
    raise DomainError(
        f"{scope!r} is not a scope (global or site:<name>)", field="scope", code="unknown_scope"
    )


@dataclass(frozen=True)
class EffectiveLogConfig:
    """The log settings in force for a site's servers, and where they come from."""

    source: str
    log_cleanup_interval_days: int
    log_cleanup_time_of_day: time | None
    log_flush_interval_minutes: int
    max_log_cache_limit: int
    max_log_file_size: int
    valid_log_file_extensions: list[str]
    valid_log_file_types: list[str]
    log_store_quota: int


def _effective_from(config: DeviceLogConfiguration, source: str) -> EffectiveLogConfig:
    values = {
        item.name: getattr(config, item.name)
        for item in fields(EffectiveLogConfig)
        if item.name != "source"
    }
    return EffectiveLogConfig(source=source, **values)


def log_config_effective(*, site: Site | None) -> EffectiveLogConfig:
    """A site's own settings, else the global ones, else the spec's defaults."""
    configs = log_configs_by_site()
    return configs.get(site.pk if site else None, configs[None])


def log_configs_by_site() -> dict[int | None, EffectiveLogConfig]:
    """Every site's effective log settings in one query; the key ``None`` holds what a
    site without its own settings (or a server outside the topology) gets."""
    rows = list(DeviceLogConfiguration.objects.select_related("site"))
    fallback = next(
        (_effective_from(row, "global") for row in rows if row.site_id is None),
        _effective_from(DeviceLogConfiguration(), "defaults"),
    )
    configs: dict[int | None, EffectiveLogConfig] = {None: fallback}
    for row in rows:
        if row.site is not None:
            configs[row.site_id] = _effective_from(row, f"site:{row.site.name}")
    return configs


def rules_list(
    *,
    pool_fqdn: str | None = None,
    brand: str | None = None,
    model: str | None = None,
    state: str | None = None,
) -> QuerySet[DeviceUpdateRule]:
    """Rules filtered as the Device Update list and `device_update_rules list` do."""
    rules = DeviceUpdateRule.objects.select_related("pool")
    if pool_fqdn:
        rules = rules.filter(pool__fqdn__iexact=pool_fqdn)
    if brand:
        rules = rules.filter(brand__iexact=brand)
    if model:
        rules = rules.filter(model__iexact=model)
    if state:
        rules = rules.filter(rules_state_q(RuleState(state)))
    return rules


def rules_state_q(state: RuleState) -> Q:
    """The state of the rule list, as a database condition (mirrors ``rule.state``)."""
    pending = ~Q(pending_version="")
    approved = ~Q(approved_version="")
    return {
        RuleState.PENDING: pending & ~approved,
        RuleState.PENDING_APPROVED: pending & approved,
        RuleState.APPROVED: ~pending & approved & Q(restored=False),
        RuleState.RESTORED: ~pending & approved & Q(restored=True),
        RuleState.NOT_USED: ~pending & ~approved,
    }[state]


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


@dataclass(frozen=True)
class GoverningRollout:
    """A rollout that decides what its rule's phones are offered, with the phones
    its waves up to the current one take (``reach``)."""

    rollout: Rollout
    reach: Reach
    waves: tuple[WaveTargets, ...]

    @property
    def offering(self) -> bool:
        """Running: new phones of the reach are offered the version; otherwise only
        phones already running it keep it."""
        return self.rollout.state == RolloutState.RUNNING


def rollout_active(*, rule: DeviceUpdateRule) -> Rollout | None:
    """The rule's running, paused or halted rollout (at most one), if any."""
    return rule.rollouts.filter(state__in=RolloutState.active()).first()


def wave_targets_of(rollouts: list[Rollout]) -> dict[int, tuple[WaveTargets, ...]]:
    """Each rollout's waves in order, with the identities of their groups' members."""
    ids = [rollout.pk for rollout in rollouts]
    waves = list(RolloutWave.objects.filter(rollout_id__in=ids).order_by("rollout_id", "position"))
    wave_ids = [wave.pk for wave in waves]
    sites: dict[int, set[int]] = defaultdict(set)
    for wave_id, site_id in RolloutWave.sites.through.objects.filter(
        rolloutwave_id__in=wave_ids
    ).values_list("rolloutwave_id", "site_id"):
        sites[wave_id].add(site_id)
    groups: dict[int, set[int]] = defaultdict(set)
    for wave_id, group_id in RolloutWave.groups.through.objects.filter(
        rolloutwave_id__in=wave_ids
    ).values_list("rolloutwave_id", "devicegroup_id"):
        groups[wave_id].add(group_id)
    members: dict[int, set[str]] = defaultdict(set)
    for member in DeviceGroupMember.objects.filter(
        group_id__in={g for ids_ in groups.values() for g in ids_}
    ):
        members[member.group_id].add(member.identity)
    found: dict[int, list[WaveTargets]] = defaultdict(list)
    for wave in waves:
        found[wave.rollout_id].append(
            WaveTargets(
                percent=wave.percent,
                site_ids=frozenset(sites[wave.pk]),
                identities=frozenset(i for g in groups[wave.pk] for i in members[g]),
            )
        )
    return {rollout_id: tuple(targets) for rollout_id, targets in found.items()}


def rollouts_governing() -> dict[int, GoverningRollout]:
    """By rule id: the active rollout of each rule, or the latest cancelled one while its
    version is still the rule's pending version (who runs it keeps it)."""
    chosen: dict[int, Rollout] = {}
    candidates = Rollout.objects.select_related("rule").filter(
        state__in=[*RolloutState.active(), RolloutState.CANCELLED]
    )
    for rollout in candidates.order_by("rule_id", "created_at", "pk"):
        if rollout.state == RolloutState.CANCELLED and (
            rollout.rule.pending_version != rollout.to_version
        ):
            # Drops an earlier cancelled choice, never the rule's active rollout.
            earlier = chosen.get(rollout.rule_id)
            if earlier is not None and earlier.state not in RolloutState.active():
                del chosen[rollout.rule_id]
            continue
        current = chosen.get(rollout.rule_id)
        if current is None or current.state not in RolloutState.active():
            chosen[rollout.rule_id] = rollout
    targets = wave_targets_of(list(chosen.values()))
    return {
        rule_id: GoverningRollout(
            rollout=rollout,
            reach=reach_of(targets.get(rollout.pk, ())[: rollout.current_wave + 1]),
            waves=targets.get(rollout.pk, ()),
        )
        for rule_id, rollout in chosen.items()
    }
