"""Observed outcomes: what each phone was seen doing with each version a rule offered
it, derived in batches from the request audit and the downloads (never on the hot path).

Per (identity, rule, version): offered (first/last time, count); downloaded (an image of
the version's folder was fetched from the phone's last address after the offer);
running (a later check reports the version); failed (a later check after the offer
still reports another version, or it reports another version after having run it, or
the phone has been silent for the governing rollout's ``silence_minutes`` after the
offer); held (a hold kept the offer back).

Each source is read after its ``ObservationCursor`` in id order; a batch's outcome rows
and the cursor are written in one transaction, so a killed run re-reads from the cursor
and counts nothing twice.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.db import connection, models, transaction
from django.db.models import Max, Q

from phones.choices import ObservedState, Outcome
from phones.models import Device, DeviceOutcome, DownloadEvent, ObservationCursor, RequestAudit
from portal.device_class import DeviceClass
from portal.models import DeviceUpdateRule
from portal.selectors import rollouts_governing

AUDIT_CURSOR = "audit"
DOWNLOADS_CURSOR = "downloads"
BATCH_SIZE = 5_000
DEFAULT_SILENCE_MINUTES = 2880
_IN_CHUNK = 1_000  # identities per IN (...) list
_UPDATED_FIELDS = [
    "state", "offered_first", "offered_last", "offered_count", "downloaded_at", "running_at",
    "failed_at", "failure", "last_seen", "updated_at",
]  # fmt: skip


@dataclass(frozen=True)
class RuleInfo:
    pk: int
    update_type: str  # lower case: the key of the phone's reported modules
    folder_prefix: str  # DeviceType/Brand/Model/Revision/Locale as the rule spells them
    folder_type: str  # the update type as the rule spells it


@dataclass
class ObservationResult:
    """What one run read and which transitions it made."""

    checks: int = 0
    downloads: int = 0
    transitions: dict[str, int] = field(default_factory=lambda: defaultdict(int))

    def describe(self) -> str:
        moved = ", ".join(f"{n} {state}" for state, n in sorted(self.transitions.items()))
        return f"read {self.checks} checks and {self.downloads} downloads; {moved or 'no change'}"


def outcomes_observe(*, now: dt.datetime, batch_size: int = BATCH_SIZE) -> ObservationResult:
    """Read the checks and downloads not yet observed, then mark silent phones failed."""
    result = ObservationResult()
    rules = _rules()
    checks_until = _settled_max_id(RequestAudit)
    downloads_until = _settled_max_id(DownloadEvent)
    while _observe_checks(rules, until=checks_until, now=now, size=batch_size, result=result):
        pass
    while _observe_downloads(rules, until=downloads_until, now=now, size=batch_size, result=result):
        pass
    _observe_silence(now=now, result=result)
    return result


def _rules() -> dict[str, RuleInfo]:
    """By the rule identity the audit's response modules name."""
    return {
        rule.identity: RuleInfo(
            pk=rule.pk,
            update_type=rule.update_type.lower(),
            folder_prefix=DeviceClass.of(rule).path,
            folder_type=rule.update_type,
        )
        for rule in DeviceUpdateRule.objects.select_related("pool")
    }


def _settled_max_id(model: type[models.Model]) -> int:
    """The highest id below which every row is committed.

    Ids are taken when a row is inserted, not when it commits: a reader that moved its
    cursor past a committed id could skip a lower one still being written. On
    PostgreSQL a SHARE lock waits for the writes in flight (and holds new ones back for
    the moment of one ``max(id)``); SQLite writes one transaction at a time anyway.
    """
    with transaction.atomic():
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute(f'LOCK TABLE "{model._meta.db_table}" IN SHARE MODE')
        return int(model._default_manager.aggregate(top=Max("id"))["top"] or 0)


def _cursor(name: str) -> ObservationCursor:
    """The named cursor, locked for the batch's transaction (two runs take turns)."""
    ObservationCursor.objects.get_or_create(name=name)
    return ObservationCursor.objects.select_for_update().get(name=name)


def _existing(identities: Iterable[str]) -> dict[tuple[str, int, str], DeviceOutcome]:
    wanted = sorted(set(identities))
    found: dict[tuple[str, int, str], DeviceOutcome] = {}
    for start in range(0, len(wanted), _IN_CHUNK):
        for row in DeviceOutcome.objects.filter(identity__in=wanted[start : start + _IN_CHUNK]):
            found[(row.identity, row.rule_id, row.version)] = row
    return found


class _Batch:
    """The outcome rows of a batch's phones, with what changed, written at the end."""

    def __init__(self, existing: dict[tuple[str, int, str], DeviceOutcome], now: dt.datetime):
        self.rows = existing
        self.now = now
        self.by_identity: dict[str, list[DeviceOutcome]] = defaultdict(list)
        for row in existing.values():
            self.by_identity[row.identity].append(row)
        self.new: list[DeviceOutcome] = []
        self.changed: dict[int, DeviceOutcome] = {}

    def touch(self, row: DeviceOutcome) -> None:
        row.updated_at = self.now
        if row.pk is not None:
            self.changed[row.pk] = row

    def add(self, row: DeviceOutcome) -> None:
        self.rows[(row.identity, row.rule_id, row.version)] = row
        self.by_identity[row.identity].append(row)
        self.new.append(row)

    def write(self) -> None:
        DeviceOutcome.objects.bulk_create(self.new, batch_size=1_000)
        DeviceOutcome.objects.bulk_update(
            list(self.changed.values()), _UPDATED_FIELDS, batch_size=1_000
        )


def _observe_checks(
    rules: dict[str, RuleInfo],
    *,
    until: int,
    now: dt.datetime,
    size: int,
    result: ObservationResult,
) -> bool:
    """One batch of answered checks; False when none was left."""
    by_pk = {info.pk: info for info in rules.values()}
    with transaction.atomic():
        cursor = _cursor(AUDIT_CURSOR)
        if cursor.last_id >= until:
            return False
        checks = list(
            RequestAudit.objects.filter(id__gt=cursor.last_id, id__lte=until, status=200)
            .exclude(identity="")
            .order_by("id")
            .values_list("id", "created_at", "identity", "request_modules", "response_modules")[
                :size
            ]
        )
        batch = _Batch(_existing(check[2] for check in checks), now)
        for _, at, identity, request_modules, response_modules in checks:
            reported = _reported(request_modules)
            for row in list(batch.by_identity.get(identity, ())):
                _judge(row, by_pk.get(row.rule_id), reported, at, batch, result)
            for module in response_modules or ():
                _record(module, identity, at, rules, batch, result)
        batch.write()
        cursor.last_id = checks[-1][0] if len(checks) == size else until
        cursor.save(update_fields=["last_id"])
        result.checks += len(checks)
        return len(checks) == size


def _reported(request_modules: Sequence[dict[str, Any]] | None) -> dict[str, str]:
    return {
        str(module.get("update_type", "")).lower(): str(module.get("version", ""))
        for module in request_modules or ()
    }


def _judge(
    row: DeviceOutcome,
    rule: RuleInfo | None,
    reported: dict[str, str],
    at: dt.datetime,
    batch: _Batch,
    result: ObservationResult,
) -> None:
    """Judge an earlier offer by what the phone reports in this check."""
    if row.last_seen is None or at > row.last_seen:
        row.last_seen = at
        batch.touch(row)
    if rule is None or rule.update_type not in reported:
        return
    version = reported[rule.update_type]
    state = row.state
    if state in (ObservedState.OFFERED, ObservedState.DOWNLOADED):
        if version == row.version:
            _run(row, at, result)
        elif row.offered_last is not None and at > row.offered_last:
            _fail(row, at, f"still reports {version or 'no version'} after the offer", result)
    elif state == ObservedState.RUNNING:
        if version != row.version and row.running_at is not None and at > row.running_at:
            _fail(row, at, f"went back to {version or 'no version'}", result)
    elif state == ObservedState.FAILED:
        if version == row.version and row.failed_at is not None and at > row.failed_at:
            _run(row, at, result)  # installed late after all
    else:
        return
    batch.touch(row)


def _run(row: DeviceOutcome, at: dt.datetime, result: ObservationResult) -> None:
    row.state = ObservedState.RUNNING
    row.running_at = at
    row.failed_at = None
    row.failure = ""
    result.transitions[ObservedState.RUNNING.value] += 1


def _fail(row: DeviceOutcome, at: dt.datetime, why: str, result: ObservationResult) -> None:
    row.state = ObservedState.FAILED
    row.failed_at = at
    row.failure = why[:200]
    result.transitions[ObservedState.FAILED.value] += 1


def _record(
    module: dict[str, Any],
    identity: str,
    at: dt.datetime,
    rules: dict[str, RuleInfo],
    batch: _Batch,
    result: ObservationResult,
) -> None:
    """This check's offer, or hold, of a rule's version."""
    outcome = module.get("outcome")
    rule = rules.get(str(module.get("rule") or ""))
    version = str(module.get("target") or "")
    if rule is None or not version or outcome not in (Outcome.OFFERED, Outcome.HELD):
        return
    row = batch.rows.get((identity, rule.pk, version))
    if outcome == Outcome.HELD:
        if row is None:
            batch.add(
                DeviceOutcome(
                    identity=identity, rule_id=rule.pk, version=version,
                    state=ObservedState.HELD, last_seen=at, updated_at=batch.now,
                )
            )  # fmt: skip
            result.transitions[ObservedState.HELD.value] += 1
        elif row.state in (ObservedState.OFFERED, ObservedState.DOWNLOADED):
            row.state = ObservedState.HELD
            batch.touch(row)
            result.transitions[ObservedState.HELD.value] += 1
        return
    if row is None:
        batch.add(
            DeviceOutcome(
                identity=identity, rule_id=rule.pk, version=version,
                state=ObservedState.OFFERED, offered_first=at, offered_last=at,
                offered_count=1, last_seen=at, updated_at=batch.now,
            )
        )  # fmt: skip
        result.transitions[ObservedState.OFFERED.value] += 1
        return
    row.offered_count += 1
    row.offered_first = min(row.offered_first or at, at)
    row.offered_last = max(row.offered_last or at, at)
    if row.state == ObservedState.HELD:
        row.state = ObservedState.OFFERED  # released: offered again
        result.transitions[ObservedState.OFFERED.value] += 1
    batch.touch(row)


def _observe_downloads(
    rules: dict[str, RuleInfo],
    *,
    until: int,
    now: dt.datetime,
    size: int,
    result: ObservationResult,
) -> bool:
    """One batch of downloads: offered rows whose folder was fetched from the phone's
    last address after the offer are downloaded; False when none was left."""
    by_pk = {info.pk: info for info in rules.values()}
    with transaction.atomic():
        cursor = _cursor(DOWNLOADS_CURSOR)
        if cursor.last_id >= until:
            return False
        events = list(
            DownloadEvent.objects.filter(id__gt=cursor.last_id, id__lte=until)
            .exclude(client_address=None)
            .order_by("id")
            .values_list("id", "created_at", "client_address", "folder")[:size]
        )
        fetched: dict[tuple[str, str], list[dt.datetime]] = defaultdict(list)
        for _, at, address, folder in events:
            if address:
                fetched[(address, folder.lower())].append(at)
        addresses = sorted({address for address, _ in fetched})
        address_of: dict[str, str] = {}
        for start in range(0, len(addresses), _IN_CHUNK):
            for identity, address in Device.objects.filter(
                last_address__in=addresses[start : start + _IN_CHUNK]
            ).values_list("identity", "last_address"):
                if address:
                    address_of[identity] = address
        changed: list[DeviceOutcome] = []
        identities = sorted(address_of)
        for start in range(0, len(identities), _IN_CHUNK):
            for row in DeviceOutcome.objects.filter(
                identity__in=identities[start : start + _IN_CHUNK], state=ObservedState.OFFERED
            ):
                rule = by_pk.get(row.rule_id)
                if rule is None or row.offered_first is None:
                    continue
                folder = f"{rule.folder_prefix}/{row.version}/{rule.folder_type}".lower()
                times = [
                    at
                    for at in fetched.get((address_of[row.identity], folder), ())
                    if at >= row.offered_first
                ]
                if times:
                    row.state = ObservedState.DOWNLOADED
                    row.downloaded_at = min(times)
                    row.updated_at = now
                    changed.append(row)
        DeviceOutcome.objects.bulk_update(
            changed, ["state", "downloaded_at", "updated_at"], batch_size=1_000
        )
        if changed:
            result.transitions[ObservedState.DOWNLOADED.value] += len(changed)
        cursor.last_id = events[-1][0] if len(events) == size else until
        cursor.save(update_fields=["last_id"])
        result.downloads += len(events)
        return len(events) == size


def _observe_silence(*, now: dt.datetime, result: ObservationResult) -> None:
    """Offered or downloaded rows of phones silent for the governing rollout's
    ``silence_minutes`` (else the default) since their last check: failed."""
    silence = {
        rule_id: governing.rollout.silence_minutes
        for rule_id, governing in rollouts_governing().items()
    }
    quiet = ~Q(rule_id__in=list(silence)) & Q(
        last_seen__lte=now - dt.timedelta(minutes=DEFAULT_SILENCE_MINUTES)
    )
    for rule_id, minutes in silence.items():
        quiet |= Q(rule_id=rule_id, last_seen__lte=now - dt.timedelta(minutes=minutes))
    with transaction.atomic():
        rows = list(
            DeviceOutcome.objects.select_for_update()
            .filter(quiet, state__in=[ObservedState.OFFERED, ObservedState.DOWNLOADED])
            .order_by("pk")
        )
        for row in rows:
            assert row.last_seen is not None  # the filter holds it
            minutes = silence.get(row.rule_id, DEFAULT_SILENCE_MINUTES)
            row.state = ObservedState.FAILED
            row.failed_at = row.last_seen + dt.timedelta(minutes=minutes)
            row.failure = f"silent since {row.last_seen.astimezone(dt.UTC):%Y-%m-%d %H:%M} UTC"
            row.updated_at = now
        DeviceOutcome.objects.bulk_update(
            rows, ["state", "failed_at", "failure", "updated_at"], batch_size=1_000
        )
    if rows:
        result.transitions["failed (silent)"] += len(rows)
