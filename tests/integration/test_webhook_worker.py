"""A real Celery worker process delivers a webhook for an event a real service emits:
the receiver on loopback fails the first attempt with 500, the retry (after its
countdown, held by the broker) lands, and both attempts are recorded and signed."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable

import pytest
from django.conf import settings

from portal.models import AuditEntry, WebhookDelivery
from portal.services.audit import Actor
from portal.services.signin import signin_lockout_record
from portal.services.webhooks import webhook_register
from tests.conftest import wait_until
from tests.receivers import webhook_receiver

pytestmark = pytest.mark.django_db(transaction=True)

SECRET = "worker-secret-0123456789abcdef"


def test_a_real_worker_retries_a_500_and_records_both_attempts(
    start_worker: Callable[..., subprocess.Popen[bytes]],
) -> None:
    with webhook_receiver(SECRET, [500]) as receiver:
        webhook = webhook_register(
            name="SIEM", url=receiver.url, events=["signin.locked_out"], secret=SECRET,
            actor=Actor.system("tests"),
        )  # fmt: skip
        worker = start_worker(
            queues=["default"],
            broker_url=settings.CELERY_BROKER_URL,
            DEVICEUPDATE_WEBHOOK_BACKOFF_SECONDS="1",
            DEVICEUPDATE_WEBHOOK_MAX_ATTEMPTS="3",
        )
        # The service audits the lockout and, after its commit, queues the delivery.
        signin_lockout_record(username="mallory", address="192.0.2.7", failures=5)

        def two_attempts() -> bool:
            assert worker.poll() is None, "the worker process exited"
            return WebhookDelivery.objects.count() == 2

        wait_until(two_attempts, "two recorded delivery attempts")
    rows = list(
        WebhookDelivery.objects.order_by("attempt").values_list(
            "webhook_id", "event", "attempt", "status_code", "error"
        )
    )
    assert rows == [
        (webhook.pk, "signin.locked_out", 1, 500, ""),
        (webhook.pk, "signin.locked_out", 2, 200, ""),
    ]
    assert len(set(WebhookDelivery.objects.values_list("delivery_id", flat=True))) == 1
    assert [(r.answered, r.signature_ok) for r in receiver.received] == [(500, True), (200, True)]
    body = json.loads(receiver.received[1].body)
    assert (body["event"], body["data"]) == (
        "signin.locked_out",
        {"username": "mallory", "address": "192.0.2.7", "failures": 5, "cooloff_minutes": 15},
    )
    assert AuditEntry.objects.filter(action="portal.signin.locked_out").count() == 1
