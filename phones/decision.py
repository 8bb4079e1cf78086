"""What a phone is offered (phone protocol, "Which version a phone is offered").

The hot path never queries the database for rules, test devices or log settings: each
process keeps a ``DecisionTable`` in memory and rebuilds it when the decision
generation moves, which it checks at most once a second (so an approve or a new log
setting reaches every process within about a second).
"""

from __future__ import annotations

import threading
import time
from collections import defaultdict
from dataclasses import dataclass

from django.conf import settings

from phones.choices import Outcome
from phones.protocol import OfferedFile, OfferedModule, UpdateCheck
from portal.choices import ReplicaState, UpdateFileRole
from portal.models import DeviceUpdateRule, Pool, Server, ServerFile, TestDevice, UpdateFile
from portal.selectors import EffectiveLogConfig, log_configs_by_site
from portal.services.generation import decision_generation_current

ClassKey = tuple[str, str, str, str, str]  # device type, brand, model, revision, locale


@dataclass(frozen=True)
class RuleEntry:
    identity: str
    update_type: str
    pending: str
    approved: str
    folder_prefix: str  # DeviceType/Brand/Model/Revision/Locale as the rule spells them


@dataclass(frozen=True)
class PoolEntry:
    site_id: int
    internal_web_fqdn: str
    external_web_fqdn: str


@dataclass(frozen=True)
class ServerEntry:
    server_id: int
    pool_id: int
    verified_folders: frozenset[str]


@dataclass
class DecisionTable:
    generation: str
    servers: dict[str, ServerEntry]
    pools: dict[int, PoolEntry]
    rules: dict[tuple[int, ClassKey], dict[str, RuleEntry]]
    test_macs: dict[int | None, frozenset[str]]
    test_serials: dict[int | None, frozenset[str]]
    folders: dict[str, tuple[OfferedFile, ...]]
    log_configs: dict[int | None, EffectiveLogConfig]  # by site; None: no site of its own


def class_key(device_type: str, brand: str, model: str, revision: str, locale: str) -> ClassKey:
    return (device_type.lower(), brand.lower(), model.lower(), revision.lower(), locale.lower())


def build_table(generation: str) -> DecisionTable:
    """Read everything a decision needs, in a handful of queries."""
    pools = {
        pool.pk: PoolEntry(pool.site_id, pool.internal_web_fqdn, pool.external_web_fqdn)
        for pool in Pool.objects.all()
    }
    verified: dict[int, set[str]] = defaultdict(set)
    unverified: dict[int, set[str]] = defaultdict(set)
    for server_id, folder, state in ServerFile.objects.values_list(
        "server_id", "file__version__folder", "state"
    ):
        (verified if state == ReplicaState.VERIFIED else unverified)[server_id].add(folder)
    servers = {
        fqdn: ServerEntry(pk, pool_id, frozenset(verified[pk] - unverified[pk]))
        for pk, fqdn, pool_id in Server.objects.values_list("pk", "fqdn", "pool_id")
    }
    rules: dict[tuple[int, ClassKey], dict[str, RuleEntry]] = defaultdict(dict)
    for rule in DeviceUpdateRule.objects.select_related("pool"):
        key = class_key(rule.device_type, rule.brand, rule.model, rule.revision, rule.locale)
        rules[(rule.pool_id, key)][rule.update_type.lower()] = RuleEntry(
            identity=rule.identity,
            update_type=rule.update_type,
            pending=rule.pending_version,
            approved=rule.approved_version,
            folder_prefix="/".join(
                (rule.device_type, rule.brand, rule.model, rule.revision, rule.locale)
            ),
        )
    macs: dict[int | None, set[str]] = defaultdict(set)
    serials: dict[int | None, set[str]] = defaultdict(set)
    for site_id, kind, identifier in TestDevice.objects.values_list(
        "site_id", "identifier_type", "identifier"
    ):
        (macs if kind == "MACAddress" else serials)[site_id].add(identifier.upper())
    folders: dict[str, list[OfferedFile]] = defaultdict(list)
    catalogs: dict[str, str] = {}
    for folder, name, role, size, sha256, created in UpdateFile.objects.values_list(
        "version__folder", "name", "role", "size", "sha256", "version__created_at"
    ).order_by("version__folder", "name"):
        if role == UpdateFileRole.CATALOG:
            catalogs[folder] = name
        elif role == UpdateFileRole.IMAGE:
            stamp = created.strftime("%Y-%m-%dT%H:%M:%SZ")
            folders[folder].append(OfferedFile(name, "", size, sha256, stamp))
    return DecisionTable(
        generation=generation,
        log_configs=log_configs_by_site(),
        servers=servers,
        pools=pools,
        rules=dict(rules),
        test_macs={site: frozenset(values) for site, values in macs.items()},
        test_serials={site: frozenset(values) for site, values in serials.items()},
        folders={
            folder: tuple(
                OfferedFile(f.name, catalogs.get(folder, ""), f.size, f.sha256, f.timestamp)
                for f in files
            )
            for folder, files in folders.items()
        },
    )


class _Holder:
    """The process's table, rebuilt when the generation moves (checked once a second)."""

    CHECK_EVERY = 1.0

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._table: DecisionTable | None = None
        self._checked = 0.0

    def get(self) -> DecisionTable:
        now = time.monotonic()
        table = self._table
        if table is not None and now - self._checked < self.CHECK_EVERY:
            return table
        with self._lock:
            if self._table is not None and now - self._checked < self.CHECK_EVERY:
                return self._table
            generation = decision_generation_current()
            if self._table is None or self._table.generation != generation:
                self._table = build_table(generation)
            self._checked = now
            return self._table

    def reset(self) -> None:
        with self._lock:
            self._table = None
            self._checked = 0.0


decision_tables = _Holder()


def server_log_config(server_fqdn: str | None = None) -> EffectiveLogConfig:
    """The log settings in force for a server (this one by default): its site's, else
    the global ones, else the defaults; from memory."""
    table = decision_tables.get()
    server = table.servers.get(server_fqdn or settings.SERVER_FQDN)
    site_id = table.pools[server.pool_id].site_id if server is not None else None
    return table.log_configs.get(site_id, table.log_configs[None])


@dataclass(frozen=True)
class ModuleDecision:
    """Why a module got what it got: shown in the audit and the inventory."""

    update_type: str
    installed: str
    rule: str
    target: str
    outcome: Outcome
    note: str


@dataclass(frozen=True)
class Decision:
    server_known: bool
    test_device: bool
    offered: list[OfferedModule]
    modules: list[ModuleDecision]

    @property
    def outcome(self) -> Outcome:
        outcomes = {module.outcome for module in self.modules}
        for candidate in (Outcome.OFFERED, Outcome.NOT_REPLICATED, Outcome.UP_TO_DATE):
            if candidate in outcomes:
                return candidate
        return Outcome.NO_RULE

    @property
    def targets(self) -> dict[str, str]:
        return {m.update_type: m.target for m in self.modules if m.target}


def offer_for_request(*, check: UpdateCheck, server_fqdn: str | None = None) -> Decision:
    """Decide what ``check`` is offered by this server (or ``server_fqdn``)."""
    table = decision_tables.get()
    server = table.servers.get(server_fqdn or settings.SERVER_FQDN)
    if server is None:
        return Decision(server_known=False, test_device=False, offered=[], modules=[])
    pool = table.pools[server.pool_id]
    key = class_key(check.device_type, check.vendor, check.model, check.revision, check.locale)
    rules = table.rules.get((server.pool_id, key), {})
    test_device = is_test_device(table, check, site_id=pool.site_id)
    reported = {module.update_type.lower(): module for module in check.modules}
    order = list(reported) + sorted(set(rules) - set(reported))
    offered: list[OfferedModule] = []
    decisions: list[ModuleDecision] = []
    for update_type in order:
        module = reported.get(update_type)
        installed = module.version if module else ""
        shown_type = module.update_type if module else rules[update_type].update_type
        rule = rules.get(update_type)
        if rule is None:
            decisions.append(
                ModuleDecision(shown_type, installed, "", "", Outcome.NO_RULE, "no rule")
            )
            continue
        target = rule.pending if test_device and rule.pending else rule.approved
        source = "pending (test device)" if test_device and rule.pending else "approved"
        if not target:
            decisions.append(
                ModuleDecision(
                    shown_type, installed, rule.identity, "", Outcome.UP_TO_DATE,
                    "the rule has no approved version",
                )
            )  # fmt: skip
            continue
        if target == installed:
            decisions.append(
                ModuleDecision(
                    shown_type, installed, rule.identity, target, Outcome.UP_TO_DATE,
                    f"runs the {source} version",
                )
            )  # fmt: skip
            continue
        folder = f"{rule.folder_prefix}/{target}/{rule.update_type}"
        if folder not in server.verified_folders or folder not in table.folders:
            decisions.append(
                ModuleDecision(
                    shown_type, installed, rule.identity, target, Outcome.NOT_REPLICATED,
                    f"the {source} version {target} is not verified on this server yet",
                )
            )  # fmt: skip
            continue
        offered.append(
            OfferedModule(
                update_type=rule.update_type,
                version=target,
                base_url=f"http://{pool.internal_web_fqdn}/DeviceUpdateFiles_Int/{folder}",
                external_base_url=(
                    f"https://{pool.external_web_fqdn}/DeviceUpdateFiles_Ext/{folder}"
                    if pool.external_web_fqdn
                    else ""
                ),
                files=table.folders[folder],
            )
        )
        decisions.append(
            ModuleDecision(
                shown_type, installed, rule.identity, target, Outcome.OFFERED,
                f"offered the {source} version",
            )
        )  # fmt: skip
    return Decision(server_known=True, test_device=test_device, offered=offered, modules=decisions)


def is_test_device(table: DecisionTable, check: UpdateCheck, *, site_id: int) -> bool:
    """A test device of the global scope or of the pool's site matches the phone."""
    for scope in (None, site_id):
        if check.mac and check.mac in table.test_macs.get(scope, frozenset()):
            return True
        if check.serial and check.serial.upper() in table.test_serials.get(scope, frozenset()):
            return True
    return False
