"""Check 5, the pool: every server holds every approved file of its pool, verified (the
replication rows its worker writes after checking size and SHA-256), and its worker
answered a heartbeat recently."""

from __future__ import annotations

import datetime as dt

from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from portal.choices import ReplicaState
from portal.device_class import RuleClass
from portal.models import DeviceUpdateRule, Pool, Server, ServerFile, UpdateFile, UpdateVersion
from portal.readiness.base import CheckResult, Status

CHECK = "pool"


def approved_files(pool: Pool) -> list[UpdateFile]:
    """Every file of every version approved in the pool."""
    condition = Q(pk__in=[])
    for rule in DeviceUpdateRule.objects.filter(pool=pool).exclude(approved_version=""):
        condition |= RuleClass.of(rule).q() & Q(version=rule.approved_version)
    return list(
        UpdateFile.objects.filter(version__in=UpdateVersion.objects.filter(condition)).order_by(
            "storage_name"
        )
    )


def files_result(server: Server, files: list[UpdateFile]) -> CheckResult:
    subject = f"{server.fqdn}: approved files"
    verified = set(
        ServerFile.objects.filter(
            server=server, file__in=files, state=ReplicaState.VERIFIED
        ).values_list("file_id", flat=True)
    )
    missing = [file for file in files if file.pk not in verified]
    if missing:
        return CheckResult(
            CHECK, subject, Status.FAIL,
            f"{len(missing)} of {len(files)} approved files not verified here "
            f"(first: {missing[0].storage_name})",
            f"start this server's worker (queue {server.queue}) and Re-sync the server",
        )  # fmt: skip
    return CheckResult(CHECK, subject, Status.PASS, f"all {len(files)} approved files verified")


def heartbeat_result(server: Server) -> CheckResult:
    subject = f"{server.fqdn}: worker"
    limit = settings.READINESS_HEARTBEAT_MAX_AGE
    fix = f"start the Celery worker on {server.fqdn} (consuming {server.queue}) and Celery beat"
    if server.worker_seen_at is None:
        return CheckResult(
            CHECK, subject, Status.FAIL, "its worker never answered a heartbeat", fix
        )
    age = timezone.now() - server.worker_seen_at
    if age > dt.timedelta(seconds=limit):
        return CheckResult(
            CHECK, subject, Status.FAIL,
            f"last heartbeat {int(age.total_seconds())} s ago (limit {limit} s)", fix,
        )  # fmt: skip
    return CheckResult(CHECK, subject, Status.PASS, f"heartbeat {int(age.total_seconds())} s ago")


def pool_checks(*, timeout: float) -> list[CheckResult]:
    """Per server of every pool: its approved files verified, its worker alive."""
    results: list[CheckResult] = []
    for pool in Pool.objects.prefetch_related("servers").order_by("fqdn"):
        files = approved_files(pool)
        servers = list(pool.servers.all())
        if not servers:
            results.append(
                CheckResult(
                    CHECK, pool.fqdn, Status.WARN, "the pool has no server",
                    "add its servers (manage.py topology add-server)",
                )
            )  # fmt: skip
        for server in servers:
            results.append(files_result(server, files))
            results.append(heartbeat_result(server))
    return results
