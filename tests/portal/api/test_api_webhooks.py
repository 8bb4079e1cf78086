"""The webhooks API: who may do what (administrator, helpdesk, anonymous), the secret
written but never read back, refusals as one field error that change nothing, and the
attempts of a webhook."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from typing import Any

import pytest
from django.contrib.auth.models import User
from rest_framework.test import APIClient

from portal.models import AuditEntry, Webhook, WebhookDelivery
from portal.services.audit import Actor
from portal.services.webhooks import webhook_register

pytestmark = pytest.mark.django_db

SECRET = "stored-secret-0123456789abcdef"
BODY = {"name": "Ops", "url": "https://hooks.example.org/ops", "events": ["rollout.halted"]}

# (method, path, body) -> statuses for (administrator, helpdesk, anonymous).
ENDPOINTS: list[tuple[str, str, Any, tuple[int, int, int]]] = [
    ("get", "/api/v1/webhooks/", None, (200, 200, 403)),
    ("post", "/api/v1/webhooks/", BODY, (201, 403, 403)),
    ("get", "/api/v1/webhooks/{id}/", None, (200, 200, 403)),
    ("put", "/api/v1/webhooks/{id}/", BODY, (200, 403, 403)),
    ("patch", "/api/v1/webhooks/{id}/", {"enabled": False}, (200, 403, 403)),
    ("delete", "/api/v1/webhooks/{id}/", None, (204, 403, 403)),
    ("post", "/api/v1/webhooks/{id}/disable/", None, (200, 403, 403)),
    ("get", "/api/v1/webhooks/{id}/disable/", None, (405, 405, 403)),
    ("get", "/api/v1/webhooks/{id}/attempts/", None, (200, 200, 403)),
    ("post", "/api/v1/webhooks/{id}/attempts/", None, (405, 403, 403)),
]
ROLES = ["administrator", "helpdesk", "anonymous"]


@pytest.fixture
def webhook(db: None) -> Webhook:
    return webhook_register(
        name="SIEM", url="https://siem.example.org/in", events=["import.refused"],
        secret=SECRET, actor=Actor.system("setup"),
    )  # fmt: skip


def client_for(role: str, request: pytest.FixtureRequest) -> APIClient:
    client = APIClient()
    if role != "anonymous":
        client.force_login(request.getfixturevalue(role))
    return client


def state() -> list[Any]:
    return [
        list(Webhook.objects.order_by("pk").values()),
        list(AuditEntry.objects.order_by("pk").values_list("action", flat=True)),
    ]


@pytest.mark.parametrize(
    ("method", "path", "body", "expected"),
    ENDPOINTS,
    ids=[f"{method} {path}" for method, path, _body, _expected in ENDPOINTS],
)
@pytest.mark.parametrize("role", ROLES)
def test_access_matrix(
    role: str,
    method: str,
    path: str,
    body: Any,
    expected: tuple[int, int, int],
    webhook: Webhook,
    request: pytest.FixtureRequest,
) -> None:
    client = client_for(role, request)
    before = state()
    response = getattr(client, method)(
        path.format(id=webhook.pk), data=body, format="json" if body is not None else None
    )
    status = expected[ROLES.index(role)]
    assert response.status_code == status, response.content
    if status >= 400 or method == "get":
        assert state() == before
    assert SECRET not in response.content.decode()


def test_the_secret_is_shown_only_in_the_answer_that_registers(admin_api: APIClient) -> None:
    given = admin_api.post("/api/v1/webhooks/", {**BODY, "secret": SECRET}, format="json")
    generated = admin_api.post("/api/v1/webhooks/", {**BODY, "name": "Two"}, format="json")
    assert (given.status_code, generated.status_code) == (201, 201)
    assert given.json()["secret"] == SECRET
    stored = Webhook.objects.get(name="Two")
    assert generated.json()["secret"] == stored.secret
    assert len(stored.secret) == 43
    assert generated.json() == {
        "id": stored.pk,
        "name": "Two",
        "url": "https://hooks.example.org/ops",
        "events": ["rollout.halted"],
        "enabled": True,
        "secret": stored.secret,
        "created_at": stored.created_at.isoformat().replace("+00:00", "Z"),
        "updated_at": stored.updated_at.isoformat().replace("+00:00", "Z"),
        "last_attempt": None,
    }
    listed = admin_api.get("/api/v1/webhooks/").json()["results"]
    assert [sorted(item) for item in listed] == [
        ["created_at", "enabled", "events", "id", "last_attempt", "name", "updated_at", "url"]
    ] * 2
    assert stored.secret not in json.dumps(listed)


def test_a_new_secret_replaces_the_old_and_is_not_echoed(
    admin_api: APIClient, webhook: Webhook
) -> None:
    response = admin_api.patch(
        f"/api/v1/webhooks/{webhook.pk}/", {"secret": "new-secret-0123456789abcdef"}, format="json"
    )
    assert response.status_code == 200
    assert "secret" not in response.json()
    webhook.refresh_from_db()
    assert webhook.secret == "new-secret-0123456789abcdef"
    assert AuditEntry.objects.filter(action="portal.webhook.changed").get().changes == {
        "secret": ["set", "replaced"]
    }


@pytest.mark.parametrize(
    ("body", "errors"),
    [
        (
            {**BODY, "url": "https://admin:hunter2@hooks.example.org/"},
            {"url": ["the URL must not hold credentials (user:password@): deliveries are "
                     "signed with the webhook's secret instead"]},
        ),
        (
            {**BODY, "url": "file:///etc/passwd"},
            {"url": ["the URL must start with http:// or https:// (not 'file')"]},
        ),
        ({**BODY, "events": ["rollout.exploded"]},
         {"events": {"0": ['"rollout.exploded" is not a valid choice.']}}),
        ({**BODY, "events": []}, {"events": ["This list may not be empty."]}),
        ({**BODY, "name": "SIEM"}, {"name": ["a webhook named 'SIEM' already exists"]}),
    ],
)  # fmt: skip
def test_a_refusal_is_one_field_error_and_changes_nothing(
    admin_api: APIClient, webhook: Webhook, body: dict[str, Any], errors: dict[str, Any]
) -> None:
    before = state()
    response = admin_api.post("/api/v1/webhooks/", body, format="json")
    assert (response.status_code, response.json()) == (400, errors)
    assert state() == before


def test_a_refused_change_changes_nothing(admin_api: APIClient, webhook: Webhook) -> None:
    before = state()
    response = admin_api.patch(
        f"/api/v1/webhooks/{webhook.pk}/", {"url": "gopher://x/", "name": "New"}, format="json"
    )
    assert (response.status_code, response.json()) == (
        400,
        {"url": ["the URL must start with http:// or https:// (not 'gopher')"]},
    )
    assert state() == before


def test_disabling_twice_is_refused(admin_api: APIClient, webhook: Webhook) -> None:
    assert admin_api.post(f"/api/v1/webhooks/{webhook.pk}/disable/").json()["enabled"] is False
    again = admin_api.post(f"/api/v1/webhooks/{webhook.pk}/disable/")
    assert (again.status_code, again.json()) == (
        400,
        {"enabled": ["the webhook 'SIEM' is already disabled"]},
    )


def test_the_helpdesk_reads_the_attempts_newest_first(
    helpdesk: User, webhook: Webhook, request: pytest.FixtureRequest
) -> None:
    delivery = uuid.UUID("6a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d")
    at = dt.datetime(2026, 12, 6, 22, 0, tzinfo=dt.UTC)
    for attempt, status, error in [(1, None, "no answer within 10 s"), (2, 200, "")]:
        WebhookDelivery.objects.create(
            webhook=webhook, delivery_id=delivery, event="import.refused", attempt=attempt,
            attempted_at=at + dt.timedelta(seconds=30 * attempt), status_code=status,
            error=error, duration_ms=12,
        )  # fmt: skip
    client = client_for("helpdesk", request)
    attempts = client.get(f"/api/v1/webhooks/{webhook.pk}/attempts/").json()
    assert attempts == [
        {"delivery_id": str(delivery), "event": "import.refused", "attempt": 2,
         "attempted_at": "2026-12-06T22:01:00Z", "status_code": 200, "error": "",
         "duration_ms": 12},
        {"delivery_id": str(delivery), "event": "import.refused", "attempt": 1,
         "attempted_at": "2026-12-06T22:00:30Z", "status_code": None,
         "error": "no answer within 10 s", "duration_ms": 12},
    ]  # fmt: skip
    shown = client.get(f"/api/v1/webhooks/{webhook.pk}/").json()
    assert shown["last_attempt"] == attempts[0]
    assert "secret" not in shown
