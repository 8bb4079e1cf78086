"""Celery tasks of the control panel: thin interfaces over services."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from celery import Task, shared_task
from django.conf import settings

from portal.models import Server, Webhook
from portal.services.replication import (
    TransientStorageError,
    server_check_store,
    server_replicate,
)
from portal.services.rollout_notifications import rollout_notify
from portal.services.topology import server_record_heartbeat

logger = logging.getLogger(__name__)


@shared_task
def server_heartbeat_task(*, server_fqdn: str) -> bool:
    """Runs on the server's own queue, so its success proves that worker consumes it."""
    return server_record_heartbeat(fqdn=server_fqdn)


@shared_task
def servers_heartbeat_task() -> int:
    """Beat: send a heartbeat to every server's queue; returns how many were sent."""
    fqdns = list(Server.objects.values_list("fqdn", flat=True))
    for fqdn in fqdns:
        server_heartbeat_task.delay(server_fqdn=fqdn)
    return len(fqdns)


@shared_task
def package_import_task(*, job_id: int) -> str | None:
    """Run one import; the job is claimed atomically (queued -> running), so a message
    delivered twice runs it once."""
    from portal.services.imports import package_import_run

    job = package_import_run(job_id=job_id)
    return None if job is None else job.status


@shared_task
def imports_recover_task() -> dict[str, int]:
    """Beat (every minute): fail imports whose worker died (their lease ran out),
    requeue lost ones."""
    from portal.services.imports import imports_recover

    # For jobs without a lease (claimed before leases existed) and lost messages.
    stale_after = timedelta(seconds=settings.CELERY_TASK_TIME_LIMIT + 60)
    failed, requeued = imports_recover(stale_after=stale_after)
    return {"failed": failed, "requeued": requeued}


@shared_task
def central_store_sweep_task() -> int:
    """Beat: delete files of the central store no update records and no import is
    writing (it lists the whole store, so it runs less often than the recovery)."""
    from portal.services.imports import central_store_sweep_orphans

    stale_after = timedelta(seconds=settings.CELERY_TASK_TIME_LIMIT + 60)
    return len(central_store_sweep_orphans(older_than=stale_after))


def this_server(server_fqdn: str) -> Server | None:
    """The server a per-server task is for, if this worker is that server's."""
    if server_fqdn != settings.SERVER_FQDN:
        # Misrouted: never write into another server's store.
        logger.error("task for %s reached the worker of %s", server_fqdn, settings.SERVER_FQDN)
        return None
    return Server.objects.select_related("pool").filter(fqdn=server_fqdn).first()


@shared_task(
    acks_late=True,
    reject_on_worker_lost=True,
    autoretry_for=(TransientStorageError,),
    retry_backoff=5,
    retry_backoff_max=600,
    max_retries=8,
)
def server_replicate_task(*, server_fqdn: str, version_id: int) -> dict[str, int] | None:
    """On the server's own queue: copy and verify one version into its store.
    Idempotent (verified files are skipped, copies land by rename), hence acks_late."""
    server = this_server(server_fqdn)
    if server is None:
        return None
    result = server_replicate(
        server=server, version_id=version_id, store_dir=settings.SERVER_STORE_DIR
    )
    return {"verified": result.verified, "copied": result.copied, "failed": result.failed}


@shared_task(
    acks_late=True,
    reject_on_worker_lost=True,
    autoretry_for=(TransientStorageError,),
    retry_backoff=5,
    retry_backoff_max=600,
    max_retries=8,
)
def server_check_store_task(*, server_fqdn: str, full: bool = False) -> dict[str, int] | None:
    """On the server's own queue: anti-entropy of its store (see server_check_store)."""
    server = this_server(server_fqdn)
    if server is None:
        return None
    check = server_check_store(server=server, store_dir=settings.SERVER_STORE_DIR, full=full)
    return {
        "missing": check.missing,
        "corrupt": check.corrupt,
        "added": check.added,
        "copied": check.result.copied,
        "failed": check.result.failed,
    }


@shared_task
def servers_resync_task() -> int:
    """Beat: every server re-checks its whole store (SHA-256 included) and repairs it."""
    fqdns = list(Server.objects.values_list("fqdn", flat=True))
    for fqdn in fqdns:
        server_check_store_task.delay(server_fqdn=fqdn, full=True)
    return len(fqdns)


@shared_task(acks_late=True, reject_on_worker_lost=True)
def server_remove_unused_task(*, server_fqdn: str) -> dict[str, int] | None:
    """On the server's own queue: remove its copies no rule of its pool names any more.
    Idempotent (removing what is already gone does nothing), hence acks_late."""
    from portal.services.cleanup import server_remove_unused

    server = this_server(server_fqdn)
    if server is None:
        return None
    removed = server_remove_unused(server=server, store_dir=settings.SERVER_STORE_DIR)
    return {"files": removed.files, "central_versions": removed.central_versions}


@shared_task(bind=True)
def webhook_deliver_task(
    self: Task[Any, Any], *, webhook_id: int, event: str, body: str, delivery_id: str
) -> int | str | None:
    """One attempt to deliver an event, recorded; retried later (the same delivery id)
    while the service says so. Nothing is sent once the webhook is disabled or removed."""
    from portal.services.webhooks import webhook_deliver

    webhook = Webhook.objects.filter(pk=webhook_id, enabled=True).first()
    if webhook is None:
        return None
    outcome = webhook_deliver(
        webhook=webhook,
        event=event,
        body=body,
        delivery_id=delivery_id,
        attempt=self.request.retries + 1,
    )
    if outcome.retry_in is not None:
        raise self.retry(countdown=outcome.retry_in, max_retries=None)
    return outcome.delivery.status_code or outcome.delivery.error


@shared_task
def rollout_notify_task(*, rollout_id: int) -> int:
    """E-mail the administrators that a rollout halted or completed; queued after the
    transition's commit. A mail server that fails is logged, never retried by hand."""
    return rollout_notify(rollout_id=rollout_id)
