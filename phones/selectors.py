"""Reads of the inventory: a phone's check-in history and what it would be offered now;
and the phone side's half of "rollouts": what each wave's phones were seen doing.

The other half, the plan and its state, is the portal's (``portal.services.rollouts``,
``portal.selectors.rollouts``); the gates that judge these counts are the rollout
watch's (``phones.services.rollout_watch``)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.db.models import BooleanField, ExpressionWrapper, Q, QuerySet

from phones.choices import ObservedState
from phones.decision import (
    Decision,
    ModuleDecision,
    RuleEntry,
    decision_tables,
    offer_for_request,
)
from phones.models import Device, DeviceOutcome, RequestAudit
from phones.protocol import Module, UpdateCheck
from portal.device_class import DeviceClass
from portal.identifiers import normalise_mac
from portal.models import DeviceControl, Rollout, Server
from portal.selectors import wave_targets_of
from portal.waves import first_waves, reach_of, wave_describe

HISTORY_LIMIT = 50


def mac_search_term(term: str) -> str | None:
    """The stored form of ``term`` when it is a whole MAC address in any spelling."""
    try:
        return normalise_mac(term)
    except ValueError:
        return None


def device_history(*, device: Device, limit: int = HISTORY_LIMIT) -> list[RequestAudit]:
    """The phone's latest ``limit`` update checks, newest first (uses the identity index)."""
    rows: QuerySet[RequestAudit] = RequestAudit.objects.filter(identity=device.identity).order_by(
        "-created_at", "-id"
    )
    return list(rows[:limit])


def device_check(*, device: Device) -> UpdateCheck:
    """The update check the phone would send: its class, identity and installed versions."""
    return UpdateCheck(
        device_type=device.device_type,
        mac=device.mac,
        serial=device.serial,
        vendor=device.brand,
        model=device.model,
        revision=device.revision,
        locale=device.locale,
        user_id=device.last_user,
        modules=tuple(
            Module(update_type=update_type, file_name="", version=version, timestamp="")
            for update_type, version in sorted(device.installed.items())
        ),
    )


def device_what_if(*, device: Device, server_fqdn: str | None = None) -> Decision:
    """What the phone would be offered by this server (or ``server_fqdn``) right now."""
    return offer_for_request(
        check=device_check(device=device), server_fqdn=server_fqdn, take_offer=False
    )


@dataclass(frozen=True)
class WhatIfRow:
    """One update type of the answer, with whether the server holds the target verified."""

    module: ModuleDecision
    verified: bool | None  # None when there is no target to hold


@dataclass(frozen=True)
class WhatIf:
    """The live answer to "what would this phone get, and why?" for one server."""

    server: str
    decision: Decision
    rows: list[WhatIfRow]


def device_what_if_explained(*, device: Device, server_fqdn: str | None = None) -> WhatIf:
    """``device_what_if`` plus, per update type, whether the server holds the target."""
    fqdn = server_fqdn or settings.SERVER_FQDN
    decision = device_what_if(device=device, server_fqdn=fqdn)
    # The same in-memory table the decision read, so both agree on what is verified.
    table = decision_tables.get()
    server = table.servers.get(fqdn)
    rules: dict[str, RuleEntry] = {}
    if server is not None:
        rules = table.rules.get((server.pool_id, DeviceClass.of(device).key), {})
    rows: list[WhatIfRow] = []
    for module in decision.modules:
        rule = rules.get(module.update_type.lower())
        verified: bool | None = None
        if server is not None and rule is not None and module.target:
            folder = f"{rule.folder_prefix}/{module.target}/{rule.update_type}"
            verified = folder in server.verified_folders and folder in table.folders
        rows.append(WhatIfRow(module=module, verified=verified))
    return WhatIf(server=fqdn, decision=decision, rows=rows)


# --- Staged rollouts (Step 7): what the observation job saw, wave by wave ---

FAILED_PHONES_LIMIT = 200


@dataclass(frozen=True)
class WaveProgress:
    """One wave of a rollout: its own phones and what they were seen doing."""

    position: int  # 0-based
    label: str  # portal.services.rollouts.wave_describe
    started_at: datetime | None
    completed_at: datetime | None
    planned: int  # the wave's own phones: taken by this wave and by no earlier one
    offered: int
    downloaded: int
    running: int
    failed: int  # failures counted (failed_at >= rollout.counting_since)
    failed_before: int  # failures before counting_since (after a resume)


@dataclass(frozen=True)
class FailedPhone:
    """A phone of the rollout's population seen failing with the rollout's version."""

    identity: str
    device_id: int | None  # phones.models.Device pk, for inventory links
    wave: int  # 0-based
    failure: str
    failed_at: datetime


@dataclass(frozen=True)
class RolloutObservation:
    """A rollout's population and its waves' counts, as the observation job saw them;
    ``phones.services.rollout_watch.rollout_progress`` adds the gate's verdict."""

    rollout: Rollout
    population: int
    waves: tuple[WaveProgress, ...]
    failed_phones: tuple[FailedPhone, ...]  # newest first, at most FAILED_PHONES_LIMIT


def _population_of(rollout: Rollout) -> QuerySet[Device]:
    """The rule's phones, unordered (the inventory's ordering would sort them all). The
    cheap conditions first, then the model's, which leaves the fewest phones for the
    others (PostgreSQL keeps the order of conditions of the same cost); each value is
    tried exactly before ignoring case, as most phones spell it as the rule does."""
    rule = rollout.rule
    servers = list(Server.objects.filter(pool_id=rule.pool_id).values_list("fqdn", flat=True))
    return (
        Device.objects.filter(test_device=False, last_server__in=servers)
        .filter(DeviceClass.of(rule).q(exact_first=True))
        .exclude(identity__in=DeviceControl.objects.filter(rule=rule).values("identity"))
        .order_by()
    )


def rollout_population(*, rollout: Rollout) -> dict[str, int]:
    """The rule's phones (identity: Device pk): its class (case-insensitive), last
    answered by a server of its pool, no test devices, none held or pinned for it."""
    return dict(_population_of(rollout).values_list("identity", "pk"))


def rollout_observation(*, rollout: Rollout) -> RolloutObservation:
    """Per wave, its own phones and how many were offered, downloaded, run or failed the
    rollout's version. A handful of queries whatever the fleet size:
    the buckets are computed here (once per phone, portal.waves.first_waves), not in the
    database."""
    rule = rollout.rule
    waves = list(rollout.waves.prefetch_related("sites", "groups").order_by("position"))
    targets = wave_targets_of([rollout]).get(rollout.pk, ())
    reaches = [reach_of(targets[: index + 1]) for index in range(len(targets))]
    population = list(_population_of(rollout).values_list("identity", flat=True))
    wave_of = first_waves(
        reaches, rule_id=str(rule.rule_id), identities=population, site_id=rule.pool.site_id
    )
    counts = [[0] * 6 for _ in waves]  # planned, offered, downloaded, running, failed, before
    for index in wave_of.values():
        counts[index][0] += 1
    outcomes = DeviceOutcome.objects.filter(rule=rule, version=rollout.to_version).order_by()
    flags = outcomes.annotate(  # booleans, not timestamps: no parsing of ~25,000 of them
        was_offered=ExpressionWrapper(Q(offered_first__isnull=False), BooleanField()),
        was_downloaded=ExpressionWrapper(Q(downloaded_at__isnull=False), BooleanField()),
        counted=ExpressionWrapper(Q(failed_at__gte=rollout.counting_since), BooleanField()),
    ).values_list("identity", "state", "was_offered", "was_downloaded", "counted")
    for identity, state, offered, downloaded, counted in flags:
        wave = wave_of.get(identity)
        if wave is None:
            continue
        row = counts[wave]
        running = state == ObservedState.RUNNING
        # Every column a phone has reached: one that runs the version was told to and
        # fetched it, whether or not its download is in the log read so far.
        row[1] += bool(offered) or running
        row[2] += bool(downloaded) or running
        row[3] += running
        if state == ObservedState.FAILED:
            row[4 if counted else 5] += 1
    newest = (
        outcomes.filter(state=ObservedState.FAILED, failed_at__isnull=False)
        .order_by("-failed_at", "-identity")
        .values_list("identity", "failed_at", "failure")
    )
    page = list(newest[:FAILED_PHONES_LIMIT])
    rows: Iterable[tuple[str, datetime | None, str]] = page
    if len(page) == FAILED_PHONES_LIMIT and any(row[0] not in wave_of for row in page):
        rows = newest.iterator(chunk_size=FAILED_PHONES_LIMIT)  # some left the population
    listed: list[tuple[str, datetime, str]] = []
    for identity, failed_at, failure in rows:
        if failed_at is not None and identity in wave_of:
            listed.append((identity, failed_at, failure))
            if len(listed) == FAILED_PHONES_LIMIT:
                break
    device_ids = dict(  # the pks of the listed phones only, not of the whole population
        Device.objects.filter(identity__in=[row[0] for row in listed]).values_list("identity", "pk")
    )
    failed_phones = [
        FailedPhone(identity, device_ids.get(identity), wave_of[identity], failure, failed_at)
        for identity, failed_at, failure in listed
    ]
    progress = tuple(
        WaveProgress(
            position=wave.position,
            label=wave_describe(wave),
            started_at=wave.started_at,
            completed_at=wave.completed_at,
            planned=row[0],
            offered=row[1],
            downloaded=row[2],
            running=row[3],
            failed=row[4],
            failed_before=row[5],
        )
        for wave, row in zip(waves, counts, strict=True)
    )
    return RolloutObservation(
        rollout=rollout,
        population=len(population),
        waves=progress,
        failed_phones=tuple(failed_phones),
    )


def device_outcomes(*, identity: str) -> list[DeviceOutcome]:
    """What the phone was seen doing with each version its rules offered, newest first."""
    rows = DeviceOutcome.objects.filter(identity=identity).select_related("rule__pool")
    return list(rows.order_by("-updated_at", "-id"))
