"""What a phone is offered (phone protocol, "Which version a phone is offered").

The hot path never queries the database for rules, rollouts, holds, pins, maintenance
windows, test devices or log settings: each process keeps a ``DecisionTable`` in memory
and rebuilds it when the decision generation moves, which it checks at most once a
second (so an approve, a rollout transition or a new hold reaches every process within
about a second). Only the offer cap is shared state (``phones.offercap``, a file).

Per module: a hold offers nothing; else the target is the pinned version, the pending
version for a test device, the rollout's version for a phone its waves reach (or that
runs it while the rollout is stopped), else the approved version. A check that would be
offered files outside its site's maintenance windows (test devices excepted), or when
the server's offers of the minute are spent, is offered nothing (deferred).
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, replace
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.conf import settings
from django.utils import timezone

from phones.choices import Outcome
from phones.offercap import offer_take
from phones.protocol import OfferedFile, OfferedModule, UpdateCheck
from portal.choices import DeviceControlKind, ReplicaState, RolloutState, UpdateFileRole
from portal.device_class import ClassKey, DeviceClass, class_key
from portal.models import (
    DeviceControl,
    DeviceUpdateRule,
    MaintenanceWindow,
    Pool,
    Server,
    ServerFile,
    TestDevice,
    UpdateFile,
)
from portal.selectors import EffectiveLogConfig, log_configs_by_site, rollouts_governing
from portal.services.generation import decision_generation_current
from portal.waves import Reach

logger = logging.getLogger(__name__)
now = timezone.now  # the clock of maintenance windows and the offer cap (tests replace it)


@dataclass(frozen=True)
class RuleEntry:
    pk: int
    rule_id: str  # the rule's GUID text: the phones' wave buckets hash it
    identity: str
    update_type: str
    pending: str
    approved: str
    folder_prefix: str  # DeviceType/Brand/Model/Revision/Locale as the rule spells them


@dataclass(frozen=True)
class RolloutEntry:
    """The rollout governing a rule: running, the phones of ``reach`` are offered
    ``to_version``; paused, halted or cancelled, only phones running it keep it."""

    state: str
    to_version: str
    wave: int  # the current wave, from 1
    reach: Reach


@dataclass(frozen=True)
class SiteWindows:
    """A site's weekly maintenance windows (weekday, start, end) in its time zone."""

    zone: ZoneInfo
    windows: tuple[tuple[int, dt.time, dt.time], ...]

    def open_at(self, moment: dt.datetime) -> bool:
        local = moment.astimezone(self.zone)
        day, clock = local.weekday(), local.time()
        return any(d == day and start <= clock < end for d, start, end in self.windows)


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
    offer_cap: int = 0  # new offers per minute; 0: no cap


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
    rollouts: dict[int, RolloutEntry]  # by rule pk: the governing rollout
    controls: dict[tuple[str, int], tuple[str, str]]  # (identity, rule pk) -> (kind, version)
    windows: dict[int, SiteWindows]  # by site id; a site without windows is always open


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
        fqdn: ServerEntry(pk, pool_id, frozenset(verified[pk] - unverified[pk]), cap)
        for pk, fqdn, pool_id, cap in Server.objects.values_list(
            "pk", "fqdn", "pool_id", "offer_cap_per_minute"
        )
    }
    rules: dict[tuple[int, ClassKey], dict[str, RuleEntry]] = defaultdict(dict)
    for rule in DeviceUpdateRule.objects.select_related("pool"):
        device_class = DeviceClass.of(rule)
        rules[(rule.pool_id, device_class.key)][rule.update_type.lower()] = RuleEntry(
            pk=rule.pk,
            rule_id=str(rule.rule_id),
            identity=rule.identity,
            update_type=rule.update_type,
            pending=rule.pending_version,
            approved=rule.approved_version,
            folder_prefix=device_class.path,
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
        rollouts={
            rule_pk: RolloutEntry(
                state=governing.rollout.state,
                to_version=governing.rollout.to_version,
                wave=governing.rollout.current_wave + 1,
                reach=governing.reach,
            )
            for rule_pk, governing in rollouts_governing().items()
        },
        controls={
            (identity, rule_pk): (kind, version)
            for identity, rule_pk, kind, version in DeviceControl.objects.values_list(
                "identity", "rule_id", "kind", "version"
            )
        },
        windows=_site_windows(),
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


def _site_windows() -> dict[int, SiteWindows]:
    found: dict[int, list[tuple[int, dt.time, dt.time]]] = defaultdict(list)
    zones: dict[int, str] = {}
    for site_id, zone, weekday, start, end in MaintenanceWindow.objects.values_list(
        "site_id", "site__time_zone", "weekday", "start", "end"
    ):
        found[site_id].append((weekday, start, end))
        zones[site_id] = zone
    return {site_id: SiteWindows(_zone(zones[site_id]), tuple(w)) for site_id, w in found.items()}


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        # Validated on save; a zone the system no longer knows must not stop every check.
        logger.error("unknown time zone %r: its maintenance windows are read in UTC", name)
        return ZoneInfo("UTC")


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
    """Why a module got what it got: shown in the audit and the inventory. Held or
    deferred: ``target`` is the version it would have been offered."""

    update_type: str
    installed: str
    rule: str
    target: str
    outcome: Outcome
    note: str


OUTCOME_PRECEDENCE = (
    Outcome.OFFERED,
    Outcome.DEFERRED,
    Outcome.NOT_REPLICATED,
    Outcome.HELD,
    Outcome.UP_TO_DATE,
)


@dataclass(frozen=True)
class Decision:
    server_known: bool
    test_device: bool
    offered: list[OfferedModule]
    modules: list[ModuleDecision]

    @property
    def outcome(self) -> Outcome:
        outcomes = {module.outcome for module in self.modules}
        for candidate in OUTCOME_PRECEDENCE:
            if candidate in outcomes:
                return candidate
        return Outcome.NO_RULE

    @property
    def targets(self) -> dict[str, str]:
        return {m.update_type: m.target for m in self.modules if m.target}


@dataclass(slots=True)
class _Phone:
    """What every module's decision needs to know about the checking phone."""

    identity: str
    site_id: int
    test_device: bool


def offer_for_request(
    *, check: UpdateCheck, server_fqdn: str | None = None, take_offer: bool = True
) -> Decision:
    """Decide what ``check`` is offered by this server (or ``server_fqdn``).
    ``take_offer=False`` (the what-if page) decides without spending the offer cap."""
    table = decision_tables.get()
    fqdn = server_fqdn or settings.SERVER_FQDN
    server = table.servers.get(fqdn)
    if server is None:
        return Decision(server_known=False, test_device=False, offered=[], modules=[])
    pool = table.pools[server.pool_id]
    # A plain function, not a DeviceClass: no object built per check.
    key = class_key(check.device_type, check.vendor, check.model, check.revision, check.locale)
    rules = table.rules.get((server.pool_id, key), {})
    phone = _Phone(check.identity, pool.site_id, is_test_device(table, check, site_id=pool.site_id))
    reported = {module.update_type.lower(): module for module in check.modules}
    decisions: list[ModuleDecision] = []
    offers: list[tuple[RuleEntry, str]] = []  # (rule, version) of what would be offered
    for update_type in list(reported) + sorted(set(rules) - set(reported)):
        module, rule = reported.get(update_type), rules.get(update_type)
        installed = module.version if module else ""
        shown_type = module.update_type if module else rules[update_type].update_type
        if rule is None:
            decisions.append(
                ModuleDecision(shown_type, installed, "", "", Outcome.NO_RULE, "no rule")
            )
            continue
        decision = _module_decision(table, server, rule, phone, shown_type, installed)
        decisions.append(decision)
        if decision.outcome == Outcome.OFFERED:
            offers.append((rule, decision.target))
    deferred = _deferral(table, server, fqdn, phone, take_offer=take_offer) if offers else ""
    if deferred:
        decisions = [
            replace(d, outcome=Outcome.DEFERRED, note=deferred)
            if d.outcome == Outcome.OFFERED
            else d
            for d in decisions
        ]
        offers = []
    offered = [_offered_module(table, pool, rule, version) for rule, version in offers]
    return Decision(
        server_known=True, test_device=phone.test_device, offered=offered, modules=decisions
    )


def _module_decision(
    table: DecisionTable,
    server: ServerEntry,
    rule: RuleEntry,
    phone: _Phone,
    shown_type: str,
    installed: str,
) -> ModuleDecision:
    """One module under its rule, before maintenance windows and the offer cap."""
    control = table.controls.get((phone.identity, rule.pk)) if table.controls else None
    target, source = _target(table, rule, phone, control=control, installed=installed)

    def decided(outcome: Outcome, note: str) -> ModuleDecision:
        return ModuleDecision(shown_type, installed, rule.identity, target, outcome, note)

    if control is not None and control[0] == DeviceControlKind.HOLD:
        return decided(Outcome.HELD, "held for this rule")
    if not target:
        return decided(Outcome.UP_TO_DATE, "the rule has no approved version")
    if target == installed:
        return decided(Outcome.UP_TO_DATE, f"runs the {source} version")
    if not _replicated(table, server, _folder(rule, target)):
        return decided(
            Outcome.NOT_REPLICATED,
            f"the {source} version {target} is not verified on this server yet",
        )
    return decided(Outcome.OFFERED, f"offered the {source} version")


def _target(
    table: DecisionTable,
    rule: RuleEntry,
    phone: _Phone,
    *,
    control: tuple[str, str] | None,
    installed: str,
) -> tuple[str, str]:
    """The version the rule means for the phone, and where it comes from (for the note):
    pin, then pending for a test device, then the governing rollout, then approved."""
    if control is not None and control[0] == DeviceControlKind.PIN:
        return control[1], "pinned"
    if phone.test_device and rule.pending:
        return rule.pending, "pending (test device)"
    rollout = table.rollouts.get(rule.pk)
    if rollout is not None:
        if rollout.state == RolloutState.RUNNING:
            if rollout.reach.takes(
                rule_id=rule.rule_id, identity=phone.identity, site_id=phone.site_id
            ):
                return rollout.to_version, f"pending (rollout wave {rollout.wave})"
        elif installed == rollout.to_version:
            return rollout.to_version, f"pending (rollout {rollout.state})"
    return rule.approved, "approved"


def _deferral(
    table: DecisionTable, server: ServerEntry, fqdn: str, phone: _Phone, *, take_offer: bool
) -> str:
    """Why a check that would be offered files is offered nothing now; "" if it is not
    deferred (one offer taken from the server's cap, unless ``take_offer`` is False)."""
    windows = None if phone.test_device else table.windows.get(phone.site_id)
    if windows is None and not (take_offer and server.offer_cap):
        return ""
    moment = now()
    if windows is not None and not windows.open_at(moment):
        return "outside the maintenance window"
    if take_offer and not offer_take(server_fqdn=fqdn, cap=server.offer_cap, now=moment):
        return "offer cap reached"
    return ""


def _folder(rule: RuleEntry, version: str) -> str:
    return f"{rule.folder_prefix}/{version}/{rule.update_type}"


def _replicated(table: DecisionTable, server: ServerEntry, folder: str) -> bool:
    """The server holds every file of the folder verified (and the folder has images)."""
    return folder in server.verified_folders and folder in table.folders


def _offered_module(
    table: DecisionTable, pool: PoolEntry, rule: RuleEntry, version: str
) -> OfferedModule:
    folder = _folder(rule, version)
    return OfferedModule(
        update_type=rule.update_type,
        version=version,
        base_url=f"http://{pool.internal_web_fqdn}/DeviceUpdateFiles_Int/{folder}",
        external_base_url=(
            f"https://{pool.external_web_fqdn}/DeviceUpdateFiles_Ext/{folder}"
            if pool.external_web_fqdn
            else ""
        ),
        files=table.folders[folder],
    )


def is_test_device(table: DecisionTable, check: UpdateCheck, *, site_id: int) -> bool:
    """A test device of the global scope or of the pool's site matches the phone."""
    for scope in (None, site_id):
        if check.mac and check.mac in table.test_macs.get(scope, frozenset()):
            return True
        if check.serial and check.serial.upper() in table.test_serials.get(scope, frozenset()):
            return True
    return False
