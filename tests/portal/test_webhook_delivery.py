"""Delivering a webhook through its task, run eagerly (Celery's ``apply`` runs each retry
at once, so the schedule is asserted from the countdowns asked for, not waited for),
against a receiver on loopback that checks the signature. A real worker process does
the same in tests/integration/test_webhook_worker.py."""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator
from typing import Any
from unittest import mock

import pytest
from celery.app.task import Task
from pytest_django.fixtures import Settings

from portal.models import Webhook, WebhookDelivery
from portal.services.audit import Actor
from portal.services.webhooks import webhook_disable, webhook_register
from portal.tasks import webhook_deliver_task
from tests.conftest import free_port
from tests.receivers import webhook_receiver

pytestmark = pytest.mark.django_db

SECRET = "receiver-secret-0123456789abcdef"
BODY = json.dumps(
    {"event": "rollout.halted", "occurred_at": "2026-12-06T22:00:00+00:00", "data": {"rollout": 3}}
)


@pytest.fixture(autouse=True)
def schedule(settings: Settings) -> None:
    settings.WEBHOOK_MAX_ATTEMPTS = 3
    settings.WEBHOOK_BACKOFF_SECONDS = 7
    settings.WEBHOOK_BACKOFF_MAX_SECONDS = 600
    settings.WEBHOOK_TIMEOUT_SECONDS = 1


def registered(url: str) -> Webhook:
    return webhook_register(
        name="Receiver", url=url, events=["rollout.halted"], secret=SECRET,
        actor=Actor.system("tests"),
    )  # fmt: skip


@pytest.fixture
def countdowns() -> Iterator[list[int]]:
    """The countdown of every retry the task asks for, in order."""
    asked: list[int] = []
    original = Task.retry

    def spy(self: Task[Any, Any], *args: Any, **kwargs: Any) -> Any:
        asked.append(kwargs["countdown"])
        return original(self, *args, **kwargs)

    with mock.patch.object(Task, "retry", spy):
        yield asked


def deliver(webhook: Webhook, delivery_id: str | None = None) -> Any:
    return webhook_deliver_task.apply(
        kwargs={
            "webhook_id": webhook.pk,
            "event": "rollout.halted",
            "body": BODY,
            "delivery_id": delivery_id or str(uuid.uuid4()),
        }
    ).get()


def attempts(webhook: Webhook) -> list[tuple[int, int | None, str]]:
    return list(
        WebhookDelivery.objects.filter(webhook=webhook)
        .order_by("attempt")
        .values_list("attempt", "status_code", "error")
    )


def test_a_500_is_retried_after_the_backoff_and_the_second_attempt_lands(
    countdowns: list[int],
) -> None:
    delivery_id = "0f8e5c1a-3b7d-4e2a-9c6b-1d2e3f4a5b6c"
    with webhook_receiver(SECRET, [500]) as receiver:
        webhook = registered(receiver.url)
        assert deliver(webhook, delivery_id) == 200
    assert attempts(webhook) == [(1, 500, ""), (2, 200, "")]
    assert countdowns == [7]
    assert [r.answered for r in receiver.received] == [500, 200]
    assert [r.signature_ok for r in receiver.received] == [True, True]
    assert [r.body for r in receiver.received] == [BODY.encode()] * 2
    first = receiver.received[0].headers
    assert (
        first["Content-Type"],
        first["X-DeviceUpdate-Event"],
        first["X-DeviceUpdate-Delivery"],
        first["User-Agent"],
    ) == ("application/json", "rollout.halted", delivery_id, "DeviceUpdate-Webhooks/1")
    rows = WebhookDelivery.objects.filter(webhook=webhook)
    assert {str(row.delivery_id) for row in rows} == {delivery_id}
    assert {row.event for row in rows} == {"rollout.halted"}


def test_a_signature_made_with_another_secret_does_not_verify() -> None:
    with webhook_receiver("not-the-webhooks-secret-000000", []) as receiver:
        deliver(registered(receiver.url))
    assert [r.signature_ok for r in receiver.received] == [False]


def test_retries_stop_at_the_last_attempt(countdowns: list[int]) -> None:
    with webhook_receiver(SECRET, [503, 502, 500, 500]) as receiver:
        webhook = registered(receiver.url)
        assert deliver(webhook) == 500
    assert attempts(webhook) == [(1, 503, ""), (2, 502, ""), (3, 500, "")]
    assert countdowns == [7, 14]


@pytest.mark.parametrize("status", [400, 401, 404, 410, 302])
def test_a_client_error_or_a_redirect_is_final(status: int, countdowns: list[int]) -> None:
    with webhook_receiver(SECRET, [status]) as receiver:
        webhook = registered(receiver.url)
        assert deliver(webhook) == status
    assert attempts(webhook) == [(1, status, "")]
    assert countdowns == []
    assert len(receiver.received) == 1  # the redirect was not followed


@pytest.mark.parametrize("status", [408, 429])
def test_try_again_later_is_retried(status: int, countdowns: list[int]) -> None:
    with webhook_receiver(SECRET, [status]) as receiver:
        webhook = registered(receiver.url)
        deliver(webhook)
    assert attempts(webhook) == [(1, status, ""), (2, 200, "")]
    assert countdowns == [7]


def test_a_refused_connection_is_recorded_and_retried(countdowns: list[int]) -> None:
    webhook = registered(f"http://127.0.0.1:{free_port()}/hook")
    assert (
        deliver(webhook) == "Failed to establish a new connection: [Errno 111] Connection refused"
    )
    assert attempts(webhook) == [
        (n, None, "Failed to establish a new connection: [Errno 111] Connection refused")
        for n in (1, 2, 3)
    ]
    assert countdowns == [7, 14]


def test_a_receiver_that_does_not_answer_times_out(settings: Settings) -> None:
    settings.WEBHOOK_MAX_ATTEMPTS = 1
    with webhook_receiver(SECRET, [], stall=threading.Event()) as receiver:
        webhook = registered(receiver.url)
        assert deliver(webhook) == "no answer within 1 s"
    assert attempts(webhook) == [(1, None, "no answer within 1 s")]


def test_a_disabled_or_removed_webhook_is_not_sent_to() -> None:
    with webhook_receiver(SECRET, []) as receiver:
        webhook = registered(receiver.url)
        webhook_disable(webhook=webhook, actor=Actor.system("tests"))
        assert deliver(webhook) is None
        webhook.pk = 999_999
        assert deliver(webhook) is None
    assert receiver.received == []
    assert WebhookDelivery.objects.count() == 0
