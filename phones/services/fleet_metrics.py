"""The fleet gauges of ``/metrics``: computed by a beat job, read by every scrape.

A scrape must stay cheap however large the inventory, so the counts are taken here,
every ``DEVICEUPDATE_FLEET_METRICS_SECONDS``, by a handful of GROUP BY queries, and kept
as one snapshot in the cache: the cache every process of a server shares (Redis, or the
file cache of the data directory), so any worker of any web server answers a scrape
with one cache read, and a restart of the web server loses nothing. Ages (heartbeat,
replication lag, the snapshot's own) are stored as moments and turned into seconds at
scrape time, so they keep growing while the job does not run.
"""

from __future__ import annotations

from collections import defaultdict
from typing import TypedDict

from django.core.cache import cache
from django.db.models import Count, Min
from django.utils import timezone

from phones.models import Device
from portal.choices import ImportStatus, ReplicaState, RolloutState
from portal.models import ImportJob, Rollout, Server, ServerFile

CACHE_KEY = "deviceupdate:metrics:fleet:v1"


class ServerRow(TypedDict):
    server: str
    unverified_files: int
    oldest_unverified_at: float | None  # import time of the oldest version it still lacks
    worker_seen_at: float | None


class RolloutRow(TypedDict):
    rollout: str
    state: str
    wave: int  # the current wave, from 1


class FleetSnapshot(TypedDict):
    computed_at: float
    # (brand, model, update type, version, state, phones); a phone reporting two update
    # types counts in each, one reporting none under ("", "").
    phones: list[tuple[str, str, str, str, str, int]]
    rollouts: dict[str, int]  # by state, every state listed
    rollout_waves: list[RolloutRow]  # running, paused and halted rollouts
    imports: dict[str, int]  # queued and running
    servers: list[ServerRow]


def _phones() -> list[tuple[str, str, str, str, str, int]]:
    # Grouped on the whole ``installed`` value, as the dashboard does: a handful of
    # version combinations per model however many phones report them.
    rows = (
        Device.objects.order_by()
        .values_list("brand", "model", "installed", "state")
        .annotate(phones=Count("*"))
    )
    counts: dict[tuple[str, str, str, str, str], int] = defaultdict(int)
    for brand, model, installed, state, phones in rows:
        for update_type, version in (installed or {"": ""}).items():
            counts[(brand, model, update_type, str(version), state)] += phones
    return [(*key, phones) for key, phones in sorted(counts.items())]


def _servers() -> list[ServerRow]:
    waiting = {
        row["server_id"]: row
        for row in ServerFile.objects.order_by()
        .exclude(state=ReplicaState.VERIFIED)
        .values("server_id")
        .annotate(files=Count("*"), oldest=Min("file__version__created_at"))
    }
    servers: list[ServerRow] = []
    for pk, fqdn, seen in Server.objects.order_by("fqdn").values_list(
        "pk", "fqdn", "worker_seen_at"
    ):
        row = waiting.get(pk)
        servers.append(
            ServerRow(
                server=fqdn,
                unverified_files=row["files"] if row else 0,
                oldest_unverified_at=row["oldest"].timestamp() if row else None,
                worker_seen_at=seen.timestamp() if seen else None,
            )
        )
    return servers


def fleet_metrics_compute() -> FleetSnapshot:
    """Count the fleet now and store the snapshot the scrapes read; returns it."""
    by_state = dict(
        Rollout.objects.order_by().values("state").annotate(n=Count("*")).values_list("state", "n")
    )
    by_status = dict(
        ImportJob.objects.order_by()
        .filter(status__in=[ImportStatus.QUEUED, ImportStatus.RUNNING])
        .values("status")
        .annotate(n=Count("*"))
        .values_list("status", "n")
    )
    active = Rollout.objects.filter(state__in=list(RolloutState.active())).order_by("pk")
    snapshot = FleetSnapshot(
        computed_at=timezone.now().timestamp(),
        phones=_phones(),
        rollouts={str(state): by_state.get(state, 0) for state in RolloutState.values},
        rollout_waves=[
            RolloutRow(rollout=str(pk), state=state, wave=wave + 1)
            for pk, state, wave in active.values_list("pk", "state", "current_wave")
        ],
        imports={
            str(status): by_status.get(status, 0)
            for status in (ImportStatus.QUEUED, ImportStatus.RUNNING)
        },
        servers=_servers(),
    )
    cache.set(CACHE_KEY, snapshot, timeout=None)
    return snapshot


def fleet_metrics_snapshot() -> FleetSnapshot | None:
    """The last snapshot the job stored, or None before its first run."""
    snapshot: FleetSnapshot | None = cache.get(CACHE_KEY)
    return snapshot
