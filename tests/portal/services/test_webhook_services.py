"""Webhook services: register, change, disable, remove (audited, the secret never in the
trail), URL checks whose refusals change nothing, and the after-commit queueing of one
delivery per enabled subscribed webhook that never fails the caller."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any
from unittest import mock

import pytest

from portal.choices import WebhookEvent
from portal.errors import DomainError
from portal.models import AuditEntry, Webhook
from portal.services.audit import Actor
from portal.services.webhooks import (
    webhook_change,
    webhook_disable,
    webhook_event_emit,
    webhook_register,
    webhook_remove,
    webhook_retry_delay,
    webhook_signature,
)

pytestmark = pytest.mark.django_db

ACTOR = Actor.system("tests")
SECRET = "a-shared-secret-0123456789"
URL = "https://hooks.example.org/device-update"


def register(**overrides: Any) -> Webhook:
    values: dict[str, Any] = {
        "name": "SIEM",
        "url": URL,
        "events": ["rollout.halted", "import.refused"],
        "secret": SECRET,
    }
    values.update(overrides)
    return webhook_register(**values, actor=ACTOR)


def test_registering_audits_the_fields_but_never_the_secret() -> None:
    webhook = register(events=["rollout.halted", "import.refused", "rollout.halted"])
    assert (webhook.name, webhook.url, webhook.events, webhook.enabled, webhook.secret) == (
        "SIEM", URL, ["import.refused", "rollout.halted"], True, SECRET,
    )  # fmt: skip
    entry = AuditEntry.objects.get()
    assert (entry.action, entry.object_id, entry.changes) == (
        "portal.webhook.registered",
        str(webhook.pk),
        {
            "enabled": [None, True],
            "events": [None, ["import.refused", "rollout.halted"]],
            "name": [None, "SIEM"],
            "secret": [None, "given"],
            "url": [None, URL],
        },
    )
    assert SECRET not in json.dumps(entry.changes)


def test_a_secret_is_generated_when_none_is_given() -> None:
    first = register(secret=None)
    second = register(name="Other", secret="")
    assert len(first.secret) == 43
    assert first.secret != second.secret
    assert AuditEntry.objects.filter(action="portal.webhook.registered").count() == 2
    assert AuditEntry.objects.first().changes["secret"] == [None, "generated"]  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("ftp://hooks.example.org/x", "the URL must start with http:// or https:// (not 'ftp')"),
        ("hooks.example.org/x", "the URL must start with http:// or https:// (not 'nothing')"),
        ("javascript:alert(1)", "the URL must start with http:// or https:// (not 'javascript')"),
        (
            "https://user:pw@hooks.example.org/x",
            "the URL must not hold credentials (user:password@): deliveries are signed with "
            "the webhook's secret instead",
        ),
        (
            "https://token@hooks.example.org/x",
            "the URL must not hold credentials (user:password@): deliveries are signed with "
            "the webhook's secret instead",
        ),
        ("https:///path", "the URL names no host"),
        ("https://hooks.example.org:99999/", "the URL's port must be a number from 1 to 65535"),
        ("https://hooks.example.org:0/", "the URL's port must be a number from 1 to 65535"),
        ("https://hooks.example.org/#top", "the URL must not have a fragment (#...)"),
        (
            "https://hooks.example.org/a b",
            "the URL may hold only printable ASCII without spaces (an international host name "
            "in its xn-- form)",
        ),
        ("https://hooks.example.org/" + "a" * 480, "the URL is longer than 500 characters"),
        ("   ", "give the URL the events are sent to"),
    ],
)
def test_a_refused_url_is_one_line_and_changes_nothing(url: str, message: str) -> None:
    with pytest.raises(DomainError) as refused:
        register(url=url)
    assert (refused.value.message, refused.value.field) == (message, "url")
    assert Webhook.objects.count() == 0
    assert AuditEntry.objects.count() == 0


@pytest.mark.parametrize(
    ("overrides", "field", "message"),
    [
        ({"events": []}, "events", "choose at least one event"),
        (
            {"events": ["rollout.exploded"]},
            "events",
            "unknown event 'rollout.exploded' (one of: rollout.planned, rollout.advanced, "
            "rollout.halted, rollout.completed, import.succeeded, import.refused, "
            "server.out_of_sync, signin.locked_out)",
        ),
        (
            {"secret": "short"},
            "secret",
            "the secret must be 16 to 200 printable ASCII characters without spaces (leave it "
            "empty to have one generated)",
        ),
        ({"name": " "}, "name", "the name must be 1 to 100 printable characters"),
    ],
)
def test_other_refusals_change_nothing(overrides: dict[str, Any], field: str, message: str) -> None:
    with pytest.raises(DomainError) as refused:
        register(**overrides)
    assert (refused.value.field, refused.value.message) == (field, message)
    assert (Webhook.objects.count(), AuditEntry.objects.count()) == (0, 0)


def test_a_second_webhook_of_the_same_name_is_refused() -> None:
    register()
    with pytest.raises(DomainError, match=r"^a webhook named 'siem' already exists$"):
        register(name="siem")
    assert (Webhook.objects.count(), AuditEntry.objects.count()) == (1, 1)


def test_a_change_audits_what_changed_and_a_new_secret_only_as_replaced() -> None:
    webhook = register()
    changed = webhook_change(
        webhook=webhook, url="http://127.0.0.1:9000/hook", secret="another-secret-9876543210",
        events=["server.out_of_sync"], actor=ACTOR,
    )  # fmt: skip
    assert (changed.url, changed.secret, changed.events) == (
        "http://127.0.0.1:9000/hook", "another-secret-9876543210", ["server.out_of_sync"],
    )  # fmt: skip
    entry = AuditEntry.objects.filter(action="portal.webhook.changed").get()
    assert entry.changes == {
        "events": [["import.refused", "rollout.halted"], ["server.out_of_sync"]],
        "secret": ["set", "replaced"],
        "url": [URL, "http://127.0.0.1:9000/hook"],
    }
    # Nothing to change: no audit row.
    webhook_change(webhook=changed, name="SIEM", actor=ACTOR)
    assert AuditEntry.objects.filter(action="portal.webhook.changed").count() == 1


def test_a_refused_change_keeps_the_stored_webhook() -> None:
    webhook = register()
    with pytest.raises(DomainError, match="^the URL names no host$"):
        webhook_change(webhook=webhook, url="http://", name="Renamed", actor=ACTOR)
    webhook.refresh_from_db()
    assert (webhook.name, webhook.url) == ("SIEM", URL)
    assert AuditEntry.objects.count() == 1


def test_disable_and_remove_are_audited() -> None:
    webhook = register()
    webhook_disable(webhook=webhook, actor=ACTOR)
    webhook.refresh_from_db()
    assert webhook.enabled is False
    with pytest.raises(DomainError, match="^the webhook 'SIEM' is already disabled$"):
        webhook_disable(webhook=webhook, actor=ACTOR)
    webhook_remove(webhook=webhook, actor=ACTOR)
    assert Webhook.objects.count() == 0
    assert list(AuditEntry.objects.order_by("id").values_list("action", "changes")) == [
        ("portal.webhook.registered", mock.ANY),
        ("portal.webhook.disabled", {"enabled": [True, False]}),
        (
            "portal.webhook.removed",
            {
                "enabled": [False, None],
                "events": [["import.refused", "rollout.halted"], None],
                "name": ["SIEM", None],
                "url": [URL, None],
            },
        ),
    ]


def test_an_event_queues_one_delivery_per_enabled_subscribed_webhook_after_commit(
    django_capture_on_commit_callbacks: Callable[..., Any],
) -> None:
    halted = register(name="Halts", events=["rollout.halted"])
    register(name="Imports", events=["import.refused"])
    both = register(name="Both", events=["rollout.halted", "import.refused"])
    off = register(name="Off", events=["rollout.halted"])
    webhook_disable(webhook=off, actor=ACTOR)
    with (
        mock.patch("portal.tasks.webhook_deliver_task.delay") as delay,
        django_capture_on_commit_callbacks(execute=True),
    ):
        webhook_event_emit(event=WebhookEvent.ROLLOUT_HALTED, payload={"rollout": 7})
        delay.assert_not_called()  # not before the commit
    assert sorted(call.kwargs["webhook_id"] for call in delay.call_args_list) == sorted(
        [halted.pk, both.pk]
    )
    first = delay.call_args_list[0].kwargs
    assert first["event"] == "rollout.halted"
    body = json.loads(first["body"])
    assert (sorted(body), body["event"], body["data"]) == (
        ["data", "event", "occurred_at"], "rollout.halted", {"rollout": 7},
    )  # fmt: skip
    ids = {call.kwargs["delivery_id"] for call in delay.call_args_list}
    assert len(ids) == 2


def test_an_event_whose_queueing_fails_never_fails_the_caller(
    django_capture_on_commit_callbacks: Callable[..., Any],
) -> None:
    register(events=["rollout.halted"])
    with (
        mock.patch("portal.tasks.webhook_deliver_task.delay", side_effect=OSError("no broker")),
        django_capture_on_commit_callbacks(execute=True),
    ):
        webhook_event_emit(event=WebhookEvent.ROLLOUT_HALTED, payload={"rollout": 7})
        # An unknown event (a programming error) is logged, not raised.
        webhook_event_emit(event="rollout.exploded", payload={})  # type: ignore[arg-type]
    assert Webhook.objects.count() == 1


def test_the_signature_and_the_backoff_are_exact(settings: Any) -> None:
    # HMAC-SHA256 keyed "secret" of "1700000000.{}", the README's example.
    assert webhook_signature(secret="secret", timestamp="1700000000", body=b"{}") == (
        "sha256=b8569b78799ff9e3cbff0fc2d63a33a2b57f3282abd07c37ae5e8e7d79a5f163"
    )
    settings.WEBHOOK_BACKOFF_SECONDS = 30
    settings.WEBHOOK_BACKOFF_MAX_SECONDS = 200
    assert [webhook_retry_delay(attempt=n) for n in range(1, 6)] == [30, 60, 120, 200, 200]
