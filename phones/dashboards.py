"""Reads behind the control-panel dashboards: the fleet by model and version, phones by
state, a rollout's history per wave, and the overview on the admin index.

Every number is counted by the database (GROUP BY), never by loading the inventory:
the versions per model group on the whole ``installed`` JSON value, whose distinct
values are a handful of version combinations however many phones report them.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass

from django.db.models import Count, Q

from phones.choices import DeviceState
from phones.models import Device, RolloutSample
from portal.choices import RolloutState
from portal.identifiers import parse_version
from portal.models import DeviceUpdateRule, Rollout, RolloutWave

# A rollout sampled every minute for a week has 10,080 points per wave: more than a
# chart can show or a browser should draw; the history keeps at most this many.
HISTORY_POINTS = 400
OVERVIEW_LIMIT = 10


@dataclass(frozen=True)
class StateCount:
    """How many phones of the inventory are in one state."""

    state: str
    label: str
    phones: int


@dataclass(frozen=True)
class ModelVersions:
    """One model's phones, and per ``"<update type> <version>"`` how many run it."""

    brand: str
    model: str
    phones: int
    versions: dict[str, int]
    unreported: int = 0  # phones that reported no version at all

    @property
    def name(self) -> str:
        return f"{self.brand} {self.model}"


@dataclass(frozen=True)
class FleetVersions:
    """Per model the versions its phones run, and every version seen, in version order."""

    models: tuple[ModelVersions, ...]
    versions: tuple[str, ...]

    @property
    def phones(self) -> int:
        return sum(model.phones for model in self.models)


@dataclass(frozen=True)
class WaveHistory:
    """One wave's samples in time order: planned, offered, running and failed phones."""

    wave: int
    times: tuple[dt.datetime, ...]
    planned: tuple[int, ...]
    offered: tuple[int, ...]
    running: tuple[int, ...]
    failed: tuple[int, ...]


@dataclass(frozen=True)
class ActiveRollout:
    """A running, paused or halted rollout with the number of waves of its plan."""

    rollout: Rollout
    waves: int


@dataclass(frozen=True)
class FleetOverview:
    """The admin index's summary: phones by state, rules with a pending version (the
    first few and how many in all), and the rollouts in progress."""

    states: tuple[StateCount, ...]
    pending_rules: tuple[DeviceUpdateRule, ...]
    pending_total: int
    active_rollouts: tuple[ActiveRollout, ...]

    @property
    def phones(self) -> int:
        return sum(row.phones for row in self.states)


def version_sort_key(label: str) -> tuple[str, tuple[int, ...], str]:
    """``CPE 4.0.10`` after ``CPE 4.0.9``: by update type, then numerically."""
    update_type, _, version = label.rpartition(" ")
    try:
        return (update_type, parse_version(version), "")
    except ValueError:
        return (update_type, (), version)


def fleet_states() -> tuple[StateCount, ...]:
    """Phones per inventory state, every state listed (in the choices' order), with zeros."""
    # COUNT(*), not COUNT(id): PostgreSQL then counts from the state index alone.
    rows = Device.objects.order_by().values("state").annotate(phones=Count("*"))
    counts: dict[str, int] = {row["state"]: row["phones"] for row in rows}
    known = [
        StateCount(state=str(value), label=str(label), phones=counts.pop(value, 0))
        for value, label in DeviceState.choices
    ]
    # A state the choices no longer name still counts (rows written by an older version).
    others = [StateCount(state=s, label=s, phones=n) for s, n in sorted(counts.items())]
    return (*known, *others)


def fleet_versions() -> FleetVersions:
    """Per (brand, model), how many phones report each (update type, version).

    A phone reporting two update types counts once in each; a phone reporting none
    counts only in the model's total.
    """
    rows = (
        Device.objects.order_by()
        .values_list("brand", "model", "installed")
        .annotate(phones=Count("id"))
    )
    totals: dict[tuple[str, str], int] = defaultdict(int)
    unreported: dict[tuple[str, str], int] = defaultdict(int)
    versions: dict[tuple[str, str], dict[str, int]] = defaultdict(lambda: defaultdict(int))
    seen: set[str] = set()
    for brand, model, installed, phones in rows:
        key = (brand, model)
        totals[key] += phones
        if not installed:
            unreported[key] += phones
        for update_type, version in (installed or {}).items():
            label = f"{update_type} {version}"
            versions[key][label] += phones
            seen.add(label)
    return FleetVersions(
        models=tuple(
            ModelVersions(
                brand=brand,
                model=model,
                phones=totals[(brand, model)],
                versions=dict(
                    sorted(versions[(brand, model)].items(), key=lambda kv: version_sort_key(kv[0]))
                ),
                unreported=unreported[(brand, model)],
            )
            for brand, model in sorted(totals, key=lambda key: (key[0].lower(), key[1].lower()))
        ),
        versions=tuple(sorted(seen, key=version_sort_key)),
    )


def _thinned(count: int, limit: int) -> list[int]:
    """At most ``limit`` indexes of ``count`` samples, evenly spread, first and last kept."""
    if count <= limit:
        return list(range(count))
    step = (count - 1) / (limit - 1)
    return sorted({round(i * step) for i in range(limit)})


def rollout_history(*, rollout: Rollout, limit: int = HISTORY_POINTS) -> tuple[WaveHistory, ...]:
    """Each wave's samples (at most ``limit`` points, evenly thinned), waves in order."""
    by_wave: dict[int, list[tuple[dt.datetime, int, int, int, int]]] = defaultdict(list)
    samples = (
        RolloutSample.objects.filter(rollout=rollout)
        .order_by("wave", "taken_at", "pk")
        .values_list("wave", "taken_at", "planned", "offered", "running", "failed")
    )
    for wave, taken_at, planned, offered, running, failed in samples:
        by_wave[wave].append((taken_at, planned, offered, running, failed))
    history = []
    for wave in sorted(by_wave):
        points = by_wave[wave]
        kept = [points[i] for i in _thinned(len(points), limit)]
        history.append(
            WaveHistory(
                wave=wave,
                times=tuple(point[0] for point in kept),
                planned=tuple(point[1] for point in kept),
                offered=tuple(point[2] for point in kept),
                running=tuple(point[3] for point in kept),
                failed=tuple(point[4] for point in kept),
            )
        )
    return tuple(history)


def rollouts_active() -> tuple[ActiveRollout, ...]:
    """Running, paused and halted rollouts, newest first, with their rule and pool."""
    rollouts = list(
        Rollout.objects.select_related("rule__pool")
        .filter(state__in=list(RolloutState.active()))
        .order_by("-created_at", "-pk")
    )
    waves = dict(
        RolloutWave.objects.filter(rollout__in=rollouts)
        .order_by()
        .values("rollout")
        .annotate(waves=Count("id"))
        .values_list("rollout", "waves")
    )
    return tuple(ActiveRollout(rollout=r, waves=waves.get(r.pk, 0)) for r in rollouts)


def fleet_overview(*, limit: int = OVERVIEW_LIMIT) -> FleetOverview:
    """What the admin index shows: four small queries, none reading phone rows."""
    pending = DeviceUpdateRule.objects.select_related("pool").filter(~Q(pending_version=""))
    first = list(pending.order_by("brand", "model", "pool__fqdn", "pk")[: limit + 1])
    total = len(first) if len(first) <= limit else pending.count()
    return FleetOverview(
        states=fleet_states(),
        pending_rules=tuple(first[:limit]),
        pending_total=total,
        active_rollouts=rollouts_active(),
    )
