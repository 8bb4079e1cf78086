"""Webhooks in the control panel: administrators register, change, disable and remove
them through the services; the helpdesk looks without ever seeing a secret; every
attempt is listed per webhook."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client

from portal.models import AuditEntry, Webhook, WebhookDelivery
from portal.services.audit import Actor
from portal.services.webhooks import webhook_register

pytestmark = pytest.mark.django_db

CHANGELIST = "/admin/portal/webhook/"
ADD = f"{CHANGELIST}add/"
SECRET = "panel-secret-0123456789abcdef"
FORM = {"name": "Ops", "url": "https://hooks.example.org/ops", "events": ["rollout.halted"],
        "enabled": "on"}  # fmt: skip


@pytest.fixture
def webhook(db: None) -> Webhook:
    return webhook_register(
        name="SIEM", url="https://siem.example.org/in", events=["import.refused"],
        secret=SECRET, actor=Actor.system("setup"),
    )  # fmt: skip


def state() -> list[Any]:
    return [
        list(Webhook.objects.order_by("pk").values()),
        list(AuditEntry.objects.order_by("pk").values_list("action", flat=True)),
    ]


# page -> status for (administrator, helpdesk); anonymous is sent to the sign-in page.
PAGES = [
    ("get", CHANGELIST, (200, 200)),
    ("get", ADD, (200, 403)),
    ("get", f"{CHANGELIST}{{id}}/change/", (200, 200)),
    ("post", f"{CHANGELIST}{{id}}/change/", (302, 403)),
    ("get", f"{CHANGELIST}{{id}}/delete/", (200, 403)),
    ("get", "/admin/portal/webhookdelivery/", (200, 200)),
    ("get", "/admin/portal/webhookdelivery/add/", (403, 403)),
]


@pytest.mark.parametrize(("method", "path", "expected"), PAGES, ids=[p[1] for p in PAGES])
@pytest.mark.parametrize("role", ["administrator", "helpdesk", "anonymous"])
def test_access_matrix(
    role: str,
    method: str,
    path: str,
    expected: tuple[int, int],
    webhook: Webhook,
    client: Client,
    request: pytest.FixtureRequest,
) -> None:
    if role != "anonymous":
        client.force_login(request.getfixturevalue(role))
    before = state()
    response = getattr(client, method)(
        path.format(id=webhook.pk), FORM if method == "post" else None
    )
    if role == "anonymous":
        assert (response.status_code, response["Location"].split("?")[0]) == (
            302,
            "/admin/login/",
        )
    else:
        assert response.status_code == expected[["administrator", "helpdesk"].index(role)]
    if role != "administrator" or method == "get":
        assert state() == before
    assert SECRET not in response.content.decode()


def test_the_helpdesk_sees_the_webhook_but_not_its_secret(
    client: Client, helpdesk: User, webhook: Webhook
) -> None:
    client.force_login(helpdesk)
    page = client.get(f"{CHANGELIST}{webhook.pk}/change/")
    html = page.content.decode()
    assert "https://siem.example.org/in" in html
    assert "•••••••• (hidden)" in html
    assert SECRET not in html
    assert 'name="secret"' not in html


def test_register_with_a_generated_secret_shown_once(
    client: Client,
    administrator: User,
    read_messages: Callable[[Any], list[tuple[str, str]]],
) -> None:
    client.force_login(administrator)
    response = client.post(ADD, FORM)
    assert response.status_code == 302
    webhook = Webhook.objects.get()
    assert (webhook.name, webhook.url, webhook.events, webhook.enabled) == (
        "Ops", "https://hooks.example.org/ops", ["rollout.halted"], True,
    )  # fmt: skip
    assert (
        "warning",
        f"The secret generated for Ops is {webhook.secret} — give it to the receiver now: "
        "it is not shown again.",
    ) in read_messages(response)
    assert list(AuditEntry.objects.values_list("action", "actor_name")) == [
        ("portal.webhook.registered", "ada")
    ]
    # The next page shows the message (once); no page after it shows the secret.
    shown = client.get(f"{CHANGELIST}{webhook.pk}/change/").content.decode()
    assert shown.count(webhook.secret) == 1
    again = client.get(f"{CHANGELIST}{webhook.pk}/change/").content.decode()
    assert webhook.secret not in again


def test_a_refused_url_is_a_form_error_and_saves_nothing(
    client: Client, administrator: User
) -> None:
    client.force_login(administrator)
    response = client.post(ADD, {**FORM, "url": "https://user:pw@hooks.example.org/"})
    assert response.status_code == 200
    assert response.context["adminform"].form.errors == {
        "url": [
            "the URL must not hold credentials (user:password@): deliveries are signed with "
            "the webhook's secret instead"
        ]
    }
    assert (Webhook.objects.count(), AuditEntry.objects.count()) == (0, 0)


def test_a_change_keeps_the_secret_unless_a_new_one_is_given(
    client: Client, administrator: User, webhook: Webhook
) -> None:
    client.force_login(administrator)
    page = f"{CHANGELIST}{webhook.pk}/change/"
    body = {"name": "SIEM", "url": "https://siem.example.org/v2", "events": ["import.refused"],
            "enabled": "on", "secret": ""}  # fmt: skip
    assert client.post(page, body).status_code == 302
    webhook.refresh_from_db()
    assert (webhook.url, webhook.secret) == ("https://siem.example.org/v2", SECRET)
    assert client.post(page, {**body, "secret": "rotated-secret-0123456789"}).status_code == 302
    webhook.refresh_from_db()
    assert webhook.secret == "rotated-secret-0123456789"
    assert list(
        AuditEntry.objects.filter(action="portal.webhook.changed")
        .order_by("pk")
        .values_list("changes", flat=True)
    ) == [
        {"url": ["https://siem.example.org/in", "https://siem.example.org/v2"]},
        {"secret": ["set", "replaced"]},
    ]


def test_disable_action_and_delete_go_through_the_services(
    client: Client, administrator: User, webhook: Webhook
) -> None:
    client.force_login(administrator)
    response = client.post(
        CHANGELIST, {"action": "disable_selected", "_selected_action": [str(webhook.pk)]}
    )
    assert response.status_code == 302
    webhook.refresh_from_db()
    assert webhook.enabled is False
    response = client.post(f"{CHANGELIST}{webhook.pk}/delete/", {"post": "yes"})
    assert response.status_code == 302
    assert Webhook.objects.count() == 0
    assert list(AuditEntry.objects.order_by("pk").values_list("action", flat=True)) == [
        "portal.webhook.registered",
        "portal.webhook.disabled",
        "portal.webhook.removed",
    ]


def test_the_attempts_are_listed_on_the_webhook_and_in_their_own_list(
    client: Client, helpdesk: User, webhook: Webhook
) -> None:
    delivery = uuid.UUID("6a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d")
    at = dt.datetime(2026, 12, 6, 22, 0, tzinfo=dt.UTC)
    for attempt, status in [(1, 500), (2, 200)]:
        WebhookDelivery.objects.create(
            webhook=webhook, delivery_id=delivery, event="import.refused", attempt=attempt,
            attempted_at=at + dt.timedelta(seconds=30 * attempt), status_code=status,
            duration_ms=15,
        )  # fmt: skip
    client.force_login(helpdesk)
    html = client.get(f"{CHANGELIST}{webhook.pk}/change/").content.decode()
    assert (
        "<tr><td>2026-12-06T22:01:00+00:00</td><td>import.refused</td><td>2</td><td>200</td>"
        f"<td>15 ms</td><td>{delivery}</td></tr>"
        "<tr><td>2026-12-06T22:00:30+00:00</td><td>import.refused</td><td>1</td><td>500</td>"
        f"<td>15 ms</td><td>{delivery}</td></tr>"
    ) in html
    listing = client.get(CHANGELIST).content.decode()
    assert "200 (import.refused, attempt 2)" in listing
    attempts = client.get(f"/admin/portal/webhookdelivery/?webhook__id__exact={webhook.pk}")
    assert [row.attempt for row in attempts.context["cl"].result_list] == [2, 1]
