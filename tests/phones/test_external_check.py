"""Outside the firewall: the 403 / 401 / credentials / 429 table of the spec."""

from __future__ import annotations

import base64
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client
from pytest_django.fixtures import Settings

from phones.models import RequestAudit
from phones.services.spool_loader import spool_load_once
from portal.models import DeviceUpdateRule
from tests.phones.test_update_check import A, request_xml, same_offer

URL = "/RequestHandlerExt/ucdevice.upx"
ALICE = "<UserID>sip:alice@contoso.com</UserID>"

pytestmark = pytest.mark.django_db


@pytest.fixture
def alice(db: None) -> User:
    return User.objects.create_user(
        username="alice@contoso.com", email="alice@contoso.com", password="Pa55-word-alice"
    )


@pytest.fixture
def bob(db: None) -> User:
    return User.objects.create_user(
        username="bob", email="bob@contoso.com", password="Pa55-word-bob"
    )


def basic(username: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()


def post(client: Client, *, user_xml: str = ALICE, auth: str | None = None, **extra: Any) -> Any:
    headers: dict[str, Any] = {"HTTP_AUTHORIZATION": auth} if auth else {}
    return client.post(
        URL, data=request_xml(extra=user_xml), content_type="text/xml", **headers, **extra
    )


def error(response: object) -> tuple[int, str]:
    content = response.content.decode()  # type: ignore[attr-defined]
    return response.status_code, content.split("<Code>")[1].split("</Code>")[0]  # type: ignore[attr-defined]


def test_nobody_signed_in_is_403(client: Client, rule: DeviceUpdateRule) -> None:
    assert error(post(client, user_xml="")) == (403, "NoSignedInUser")


def test_a_signed_in_user_without_credentials_is_asked_for_them(
    client: Client, rule: DeviceUpdateRule, alice: User
) -> None:
    response = post(client)
    assert error(response) == (401, "AnonymousNotSupported")
    assert response["WWW-Authenticate"] == 'Basic realm="Device Update"'


@pytest.mark.parametrize("login", ["alice@contoso.com"])
def test_the_users_own_credentials_get_the_answer(
    client: Client, rule: DeviceUpdateRule, alice: User, login: str
) -> None:
    response = post(client, auth=basic(login, "Pa55-word-alice"))
    assert response.status_code == 200
    assert same_offer(response.content.decode(), A)


def test_the_user_may_be_named_by_e_mail(client: Client, rule: DeviceUpdateRule, bob: User) -> None:
    response = post(
        client, user_xml="<UserID>sip:bob@contoso.com</UserID>", auth=basic("bob", "Pa55-word-bob")
    )
    assert response.status_code == 200


@pytest.mark.parametrize(
    "auth",
    [
        basic("alice@contoso.com", "wrong"),
        basic("bob", "Pa55-word-bob"),  # valid, but another user's
        "Bearer abc",
        "Basic !!!not-base64",
    ],
    ids=["wrong password", "another user", "other scheme", "garbage"],
)
def test_bad_credentials_are_401_invalid(
    client: Client, rule: DeviceUpdateRule, alice: User, bob: User, auth: str
) -> None:
    assert error(post(client, auth=auth)) == (401, "InvalidCredentials")


def test_repeated_failures_from_one_address_are_throttled(
    client: Client, rule: DeviceUpdateRule, alice: User, settings: Settings
) -> None:
    settings.EXTERNAL_AUTH_MAX_FAILURES = 3
    settings.EXTERNAL_AUTH_WINDOW = 120
    for _ in range(3):
        assert (
            error(post(client, auth=basic("alice@contoso.com", "x"), REMOTE_ADDR="203.0.113.9"))[0]
            == 401
        )
    response = post(
        client, auth=basic("alice@contoso.com", "Pa55-word-alice"), REMOTE_ADDR="203.0.113.9"
    )
    assert error(response) == (429, "TooManyRequests")
    assert response["Retry-After"] == "120"
    # The same user from elsewhere is throttled too (per user), until the window ends.
    assert (
        error(
            post(
                client,
                auth=basic("alice@contoso.com", "Pa55-word-alice"),
                REMOTE_ADDR="198.51.100.7",
            )
        )[0]
        == 429
    )
    spool_load_once()
    assert RequestAudit.objects.filter(outcome="refused", status=429).count() == 2


def test_forwarded_addresses_count_only_from_trusted_proxies(
    client: Client, rule: DeviceUpdateRule, alice: User, settings: Settings
) -> None:
    settings.TRUSTED_PROXIES = ["127.0.0.1"]
    post(client, user_xml="", REMOTE_ADDR="203.0.113.5", HTTP_X_FORWARDED_FOR="10.9.9.9")
    post(client, user_xml="", REMOTE_ADDR="127.0.0.1", HTTP_X_FORWARDED_FOR="1.2.3.4, 10.9.9.9")
    spool_load_once()
    assert list(
        RequestAudit.objects.order_by("created_at").values_list("client_address", flat=True)
    ) == [
        "203.0.113.5",
        "10.9.9.9",
    ]


def test_an_admin_session_never_stands_for_phone_credentials(
    client: Client, rule: DeviceUpdateRule, administrator: User
) -> None:
    # Phone endpoints follow the phone rules only: a signed-in control-panel session
    # neither passes the external check nor is asked for (no CSRF either).
    client.force_login(administrator)
    response = post(client, user_xml="<UserID>sip:ada</UserID>")
    assert error(response) == (401, "AnonymousNotSupported")
    upload = client.post(
        "/RequestHandlerExt/Files?type=Watson&name=a.dmp&mac=0004F2112233&user=sip:ada",
        data=b"x",
        content_type="application/octet-stream",
    )
    assert upload.status_code == 401
    assert "Basic" in upload["WWW-Authenticate"]
