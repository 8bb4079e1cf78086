"""Control-panel sign-ins lock after repeated failures (django-axes), per username and
address and per address; the lockout is audited and only an administrator lifts it."""

from __future__ import annotations

import base64
import datetime as dt
import json
from collections.abc import Callable
from typing import Any

import pytest
from axes.models import AccessAttempt
from django.conf import settings
from django.contrib.auth.models import User
from django.contrib.messages import get_messages
from django.core.cache import cache
from django.test import Client
from django.utils import timezone
from pytest_django.fixtures import Settings

from phones.services.spool_loader import spool_load_once
from portal.errors import DomainError
from portal.models import AuditEntry
from portal.services.audit import Actor
from portal.services.signin import signin_lockout_lift
from tests.phones.test_update_check import request_xml

pytestmark = pytest.mark.django_db

PASSWORD = "correct horse battery"  # what tests.conftest gives its users
HERE = "203.0.113.9"
THERE = "198.51.100.7"
LIST = "/admin/axes/accessattempt/"
LOCKED_LINE = (
    "Too many failed sign-ins: locked for up to 15 minutes, unless an administrator lifts "
    "it sooner."
)


@pytest.fixture
def carol(db: None) -> User:
    return User.objects.create_user("carol", password=PASSWORD, is_staff=True)


def sign_in(
    client: Client, username: str, password: str, *, address: str = HERE, **headers: Any
) -> Any:
    return client.post(
        "/admin/login/",
        {"username": username, "password": password, "next": "/admin/"},
        REMOTE_ADDR=address,
        **headers,
    )


def fail(client: Client, username: str, times: int, *, address: str = HERE) -> list[int]:
    return [sign_in(client, username, "wrong", address=address).status_code for _ in range(times)]


def signed_in(response: Any) -> bool:
    return response.status_code == 302 and response["Location"] == "/admin/"


def lift(client: Client, *attempts: AccessAttempt) -> Any:
    return client.post(
        LIST, {"action": "lift_lockouts", "_selected_action": [a.pk for a in attempts]}
    )


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Callable[[dt.timedelta], None]:
    """Stops the clock (Django's and the one axes stamps requests with); ``clock(delta)``
    moves it on."""
    moment = [timezone.now()]

    def now() -> dt.datetime:
        return moment[0]

    monkeypatch.setattr(timezone, "now", now)
    monkeypatch.setattr("axes.handlers.proxy.now", now)

    def advance(delta: dt.timedelta) -> None:
        moment[0] += delta

    return advance


def test_the_limit_th_failure_locks_with_429_and_one_line(client: Client, carol: User) -> None:
    limit = settings.SIGNIN_FAILURE_LIMIT
    assert (limit, settings.AXES_FAILURE_LIMIT) == (5, 5)  # the documented default

    assert fail(client, "carol", limit - 1) == [200] * (limit - 1)
    response = sign_in(client, "carol", "wrong")

    assert response.status_code == 429
    assert response["Retry-After"] == "900"
    assert f'<p class="errornote">{LOCKED_LINE}</p>' in response.content.decode()
    assert list(
        AccessAttempt.objects.values_list("username", "ip_address", "failures_since_start")
    ) == [("carol", HERE, limit)]


def test_the_right_password_while_locked_is_refused_and_not_counted(
    client: Client, carol: User
) -> None:
    fail(client, "carol", settings.SIGNIN_FAILURE_LIMIT)

    response = sign_in(client, "carol", PASSWORD)

    assert response.status_code == 429
    assert "_auth_user_id" not in client.session
    # Refused before the password was checked: the count and the lockout's start stay.
    assert AccessAttempt.objects.get().failures_since_start == settings.SIGNIN_FAILURE_LIMIT


def test_a_client_asking_for_json_gets_the_line_as_json(client: Client, carol: User) -> None:
    fail(client, "carol", settings.SIGNIN_FAILURE_LIMIT)

    response = sign_in(client, "carol", PASSWORD, HTTP_ACCEPT="application/json")

    assert (response.status_code, response["Content-Type"]) == (429, "application/json")
    assert json.loads(response.content) == {"detail": LOCKED_LINE}


def test_the_username_rule_locks_that_address_only(client: Client, carol: User) -> None:
    fail(client, "carol", settings.SIGNIN_FAILURE_LIMIT, address=HERE)

    assert sign_in(client, "carol", PASSWORD, address=HERE).status_code == 429
    assert signed_in(sign_in(client, "carol", PASSWORD, address=THERE))


def test_the_address_rule_locks_an_address_trying_many_usernames(
    client: Client, carol: User
) -> None:
    limit = settings.SIGNIN_FAILURE_LIMIT
    statuses = [
        sign_in(client, f"guess-{n}", "wrong", address=THERE).status_code for n in range(limit)
    ]

    assert statuses == [200] * (limit - 1) + [429]
    # Every username from there is refused now, a real one with its password too ...
    assert sign_in(client, "carol", PASSWORD, address=THERE).status_code == 429
    # ... and only from there.
    assert signed_in(sign_in(client, "carol", PASSWORD, address=HERE))


def test_the_forwarded_address_counts_only_from_a_trusted_proxy(
    client: Client, carol: User
) -> None:
    limit = settings.SIGNIN_FAILURE_LIMIT
    # From the proxy on this machine (DEVICEUPDATE_TRUSTED_PROXIES): the client behind it.
    for _ in range(limit):
        sign_in(client, "carol", "wrong", address="127.0.0.1", HTTP_X_FORWARDED_FOR=HERE)
    # From anyone else the header is ignored: changing it does not dodge the lockout.
    for forwarded in ("10.0.0.1", "10.0.0.2"):
        response = sign_in(client, "carol", PASSWORD, address=HERE, HTTP_X_FORWARDED_FOR=forwarded)
        assert response.status_code == 429
    assert list(AccessAttempt.objects.values_list("ip_address", flat=True)) == [HERE]


def test_the_lockout_is_audited_once_as_the_system_naming_the_username(
    client: Client, carol: User
) -> None:
    limit = settings.SIGNIN_FAILURE_LIMIT
    fail(client, "carol", limit + 3)  # three more tries while locked: refused, not audited
    sign_in(client, "carol", PASSWORD)

    entry = AuditEntry.objects.get()
    assert (entry.action, entry.actor, entry.actor_name) == (
        "portal.signin.locked_out",
        None,
        "sign-in lockout",
    )
    assert (entry.object_type, entry.object_id, entry.object_repr) == (
        "auth.user",
        str(carol.pk),
        "carol",
    )
    assert entry.changes == {
        "address": [None, HERE],
        "failures": [None, limit],
        "cooloff_minutes": [None, 15],
    }


def test_a_lockout_on_a_username_without_account_still_names_it(client: Client) -> None:
    fail(client, "nobody-here", settings.SIGNIN_FAILURE_LIMIT)

    entry = AuditEntry.objects.get()
    assert (entry.action, entry.object_type, entry.object_id, entry.object_repr) == (
        "portal.signin.locked_out",
        "auth.user",
        "None",
        "nobody-here",
    )


def test_the_lockout_ends_after_the_cooloff_without_anyone_lifting_it(
    client: Client, carol: User, clock: Callable[[dt.timedelta], None]
) -> None:
    fail(client, "carol", settings.SIGNIN_FAILURE_LIMIT)

    clock(dt.timedelta(minutes=15) - dt.timedelta(seconds=1))
    assert sign_in(client, "carol", PASSWORD).status_code == 429
    clock(dt.timedelta(seconds=2))
    assert signed_in(sign_in(client, "carol", PASSWORD))
    # The failures ran out with the cool-off; the lockout's audit row stays.
    assert AccessAttempt.objects.count() == 0
    assert list(AuditEntry.objects.values_list("action", flat=True)) == ["portal.signin.locked_out"]


def test_an_administrator_lifts_the_lockout_audited(
    client: Client, carol: User, administrator: User
) -> None:
    fail(client, "carol", settings.SIGNIN_FAILURE_LIMIT)
    attempt = AccessAttempt.objects.get()
    panel = Client()
    panel.force_login(administrator)

    page = panel.get(LIST)
    response = lift(panel, attempt)

    assert page.status_code == 200
    assert "locked until" in page.content.decode()
    assert response.status_code == 302
    assert [m.message for m in get_messages(response.wsgi_request)] == [
        f"Lifted the lockout of 'carol' from {HERE}: 5 failed sign-ins cleared."
    ]
    assert AccessAttempt.objects.count() == 0
    entry = AuditEntry.objects.get(action="portal.signin.lockout_lifted")
    assert (entry.actor, entry.actor_name, entry.object_id, entry.object_repr) == (
        administrator,
        "ada",
        str(carol.pk),
        "carol",
    )
    assert entry.changes == {"address": [HERE, None], "failures": [5, 0]}
    assert signed_in(sign_in(client, "carol", PASSWORD))


@pytest.mark.parametrize("role", ["helpdesk", "staff without a role", "anonymous"])
def test_only_an_administrator_lifts_a_lockout(
    client: Client, carol: User, request: pytest.FixtureRequest, role: str
) -> None:
    fail(client, "carol", settings.SIGNIN_FAILURE_LIMIT)
    attempt = AccessAttempt.objects.get()
    panel = Client()
    if role == "helpdesk":
        panel.force_login(request.getfixturevalue("helpdesk"))
    elif role == "staff without a role":
        panel.force_login(User.objects.create_user("stan", password=PASSWORD, is_staff=True))

    page = panel.get(LIST)
    response = lift(panel, attempt)

    expected = {"helpdesk": 200, "staff without a role": 403, "anonymous": 302}[role]
    assert (page.status_code, response.status_code) == (expected, expected)
    if role == "helpdesk":  # may look, with no action to run
        assert "locked until" in page.content.decode()
        assert page.context["action_form"] is None
    assert AccessAttempt.objects.get().failures_since_start == settings.SIGNIN_FAILURE_LIMIT
    assert list(AuditEntry.objects.values_list("action", flat=True)) == ["portal.signin.locked_out"]
    assert sign_in(client, "carol", PASSWORD).status_code == 429


def test_lifting_clears_every_username_tried_from_the_address(
    client: Client, carol: User, administrator: User
) -> None:
    # Locked by the address rule: carol's own count is under the limit.
    fail(client, "carol", 2)
    fail(client, "mallory", settings.SIGNIN_FAILURE_LIMIT - 2)
    assert sign_in(client, "carol", PASSWORD).status_code == 429

    cleared = signin_lockout_lift(
        username="carol", address=HERE, actor=Actor.of_user(administrator)
    )

    assert cleared == settings.SIGNIN_FAILURE_LIMIT
    assert AccessAttempt.objects.count() == 0
    assert signed_in(sign_in(client, "carol", PASSWORD))


def test_lifting_nothing_is_refused_and_not_audited(administrator: User) -> None:
    with pytest.raises(DomainError) as error:
        signin_lockout_lift(username="carol", address=HERE, actor=Actor.of_user(administrator))

    assert error.value.message == f"no failed sign-ins of 'carol' from {HERE} are recorded"
    assert AuditEntry.objects.count() == 0


def test_phone_sign_ins_never_lock_the_user_out_of_the_control_panel(
    client: Client, settings: Settings
) -> None:
    settings.EXTERNAL_AUTH_MAX_FAILURES = 10
    cache.clear()  # the phones' own failure counts
    User.objects.create_user("alice", password=PASSWORD, is_staff=True)
    wrong = "Basic " + base64.b64encode(b"alice:wrong").decode()
    body = request_xml(extra="<UserID>sip:alice</UserID>")

    statuses = [
        client.post(
            "/RequestHandlerExt/ucdevice.upx",
            data=body,
            content_type="text/xml",
            HTTP_AUTHORIZATION=wrong,
            REMOTE_ADDR=HERE,
        ).status_code
        for _ in range(5)
    ] + [
        client.post(
            "/RequestHandlerExt/Files?type=log&name=a.log&user=sip:alice",
            data=b"log",
            content_type="application/octet-stream",
            HTTP_AUTHORIZATION=wrong,
            REMOTE_ADDR=HERE,
        ).status_code
        for _ in range(5)
    ]
    spool_load_once()

    assert statuses == [401] * 10
    assert AccessAttempt.objects.count() == 0
    assert signed_in(sign_in(client, "alice", PASSWORD))
    cache.clear()
