"""``/metrics``: the service's Prometheus metrics, for configured networks or a token.

The per-process counters (``phones.metrics``) come from prometheus-client: under
gunicorn in its multiprocess mode (deploy/gunicorn.conf.py points
``PROMETHEUS_MULTIPROC_DIR`` at the data directory), each scrape summing every worker's
files; without it (``manage.py runserver``) from this process alone. The fleet gauges
come from the snapshot the beat job keeps in the cache
(``phones.services.fleet_metrics``): one cache read per scrape, never an inventory query.
"""

from __future__ import annotations

import hmac
import ipaddress
import logging
import os
import time
from collections.abc import Iterable, Iterator

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.views.decorators.http import require_safe
from prometheus_client import REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

from phones.auth import client_address
from phones.services.fleet_metrics import fleet_metrics_snapshot

logger = logging.getLogger(__name__)
INF = float("inf")


def metrics_allowed(request: HttpRequest) -> bool:
    """The client is in ``METRICS_ALLOWED_NETWORKS`` or sends the bearer token."""
    token = settings.METRICS_TOKEN
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    if (
        token
        and scheme.lower() == "bearer"
        and hmac.compare_digest(given.strip().encode(), token.encode())
    ):
        return True
    address = client_address(request)
    if address is None or not settings.METRICS_ALLOWED_NETWORKS:
        return False
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in settings.METRICS_ALLOWED_NETWORKS)


class _ThisProcess(Collector):
    """The default registry (this process's metrics), outside multiprocess mode."""

    def collect(self) -> Iterable[Metric]:
        return REGISTRY.collect()


class FleetCollector(Collector):
    """The fleet gauges from the job's last snapshot; none before its first run."""

    def collect(self) -> Iterator[Metric]:
        snapshot = fleet_metrics_snapshot()
        if snapshot is None:
            return
        now = time.time()
        age = GaugeMetricFamily(
            "deviceupdate_fleet_metrics_age_seconds",
            "Seconds since the fleet gauges were last counted (by the beat job).",
        )
        age.add_metric([], max(now - snapshot["computed_at"], 0.0))
        yield age
        phones = GaugeMetricFamily(
            "deviceupdate_phones",
            "Phones of the inventory by model, reported version (per update type) and state.",
            labels=["brand", "model", "update_type", "version", "state"],
        )
        for brand, model, update_type, version, state, count in snapshot["phones"]:
            phones.add_metric([brand, model, update_type, version, state], count)
        yield phones
        rollouts = GaugeMetricFamily(
            "deviceupdate_rollouts", "Rollouts by state.", labels=["state"]
        )
        for state, count in snapshot["rollouts"].items():
            rollouts.add_metric([state], count)
        yield rollouts
        wave = GaugeMetricFamily(
            "deviceupdate_rollout_current_wave",
            "The current wave (from 1) of each running, paused or halted rollout.",
            labels=["rollout", "state"],
        )
        for row in snapshot["rollout_waves"]:
            wave.add_metric([row["rollout"], row["state"]], row["wave"])
        yield wave
        imports = GaugeMetricFamily(
            "deviceupdate_imports", "Package imports queued or running.", labels=["status"]
        )
        for status, count in snapshot["imports"].items():
            imports.add_metric([status], count)
        yield imports
        unverified = GaugeMetricFamily(
            "deviceupdate_server_unverified_files",
            "Files a server's store does not hold verified yet (pending, copying, failed).",
            labels=["server"],
        )
        lag = GaugeMetricFamily(
            "deviceupdate_server_replication_lag_seconds",
            "Seconds since the oldest version a server still lacks was imported; 0 in sync.",
            labels=["server"],
        )
        heartbeat = GaugeMetricFamily(
            "deviceupdate_worker_heartbeat_age_seconds",
            "Seconds since a server's worker last answered a heartbeat; +Inf: never.",
            labels=["server"],
        )
        for server in snapshot["servers"]:
            oldest, seen = server["oldest_unverified_at"], server["worker_seen_at"]
            unverified.add_metric([server["server"]], server["unverified_files"])
            lag.add_metric([server["server"]], 0.0 if oldest is None else max(now - oldest, 0.0))
            heartbeat.add_metric([server["server"]], INF if seen is None else max(now - seen, 0.0))
        yield from (unverified, lag, heartbeat)


def metrics_registry() -> CollectorRegistry:
    """What one scrape shows: every worker's counters (or this process's) and the fleet."""
    registry = CollectorRegistry(auto_describe=False)
    folder = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if folder:
        MultiProcessCollector(registry, path=folder)
    else:
        registry.register(_ThisProcess())
    registry.register(FleetCollector())
    return registry


@require_safe
def metrics(request: HttpRequest) -> HttpResponse:
    """GET /metrics: Prometheus' text format; 403 (and nothing else) for anyone else."""
    if not metrics_allowed(request):
        return HttpResponse("403 Forbidden\n", status=403, content_type="text/plain")
    try:
        registry = metrics_registry()
    except ValueError as error:  # the multiprocess directory is missing
        logger.error("metrics unavailable: %s", error)
        return HttpResponse("503 metrics unavailable\n", status=503, content_type="text/plain")
    # Every name here is a classic one, so the text is the 0.0.4 format every Prometheus
    # (Debian's 2.x too) reads; the client's newer 1.0.0 label only adds UTF-8 names.
    return HttpResponse(generate_latest(registry), content_type=CONTENT_TYPE_PLAIN_0_0_4)
