"""Phones outside the firewall sign in with directory accounts: the credentials in any
form the phones send, the UserID matched to the directory's SIP address; successes
cached for a short time, failures throttled as before."""

from __future__ import annotations

from collections.abc import Iterator

import ldap
import pytest
from django.core.cache import cache
from django.test import Client
from pytest_django.fixtures import Settings

from phones.auth import _failure_keys, _success_key
from phones.models import RequestAudit
from phones.services.spool_loader import spool_load_once
from portal.admin.signin import DIRECTORY_UNREACHABLE
from portal.models import DeviceUpdateRule
from tests.directory.slapd import PASSWORD, Slapd, user_dn
from tests.directory.test_control_panel import form_errors, sign_in
from tests.directory.test_outage import user_digest
from tests.phones.test_external_check import basic, error, post
from tests.phones.test_update_check import A, same_offer

ALICE = "<UserID>sip:alice@contoso.com</UserID>"
PAT = "<UserID>sip:pat.phone@contoso.com</UserID>"


@pytest.mark.parametrize(
    "login", ["alice@contoso.com", "CONTOSO\\alice", "contoso\\ALICE", "sip:alice@contoso.com"]
)
def test_a_phone_signs_in_with_each_form_phones_send(
    client: Client, rule: DeviceUpdateRule, directory: Slapd, login: str
) -> None:
    response = post(client, user_xml=ALICE, auth=basic(login, PASSWORD))
    assert response.status_code == 200
    assert same_offer(response.content.decode(), A)


def test_the_user_id_is_matched_to_the_sip_address(
    client: Client, rule: DeviceUpdateRule, directory: Slapd
) -> None:
    # Pat's SIP address is not the principal name: the UserID gives the SIP address.
    assert post(client, user_xml=PAT, auth=basic("pat@contoso.com", PASSWORD)).status_code == 200
    assert error(
        post(client, user_xml="<UserID>sip:pat@contoso.com</UserID>",
             auth=basic("pat@contoso.com", PASSWORD))
    ) == (401, "InvalidCredentials")  # fmt: skip


@pytest.mark.parametrize(
    ("user_xml", "login", "password", "cached"),
    [
        (ALICE, "alice@contoso.com", "wrong password", None),
        # Valid, but another user's: Pat's sign-in is cached, and still not Alice's.
        (ALICE, "pat@contoso.com", PASSWORD, ["pat.phone@contoso.com"]),
        ("<UserID>sip:dave@contoso.com</UserID>", "dave@contoso.com", PASSWORD, None),
        (ALICE, "NORTHWIND\\alice", PASSWORD, None),
        (ALICE, "alice)(|(cn=*", PASSWORD, None),
    ],
    ids=["wrong password", "another user", "disabled", "unknown domain", "injection"],
)
def test_credentials_that_do_not_sign_in_this_user_are_401(
    client: Client,
    rule: DeviceUpdateRule,
    directory: Slapd,
    user_xml: str,
    login: str,
    password: str,
    cached: list[str] | None,
) -> None:
    response = post(client, user_xml=user_xml, auth=basic(login, password))
    assert error(response) == (401, "InvalidCredentials")
    assert cache.get(_success_key(login, password)) == cached


def test_failures_keep_the_throttle(
    client: Client, rule: DeviceUpdateRule, directory: Slapd, settings: Settings
) -> None:
    settings.EXTERNAL_AUTH_MAX_FAILURES = 2
    settings.EXTERNAL_AUTH_WINDOW = 120
    for _ in range(2):
        wrong = post(client, user_xml=ALICE, auth=basic("alice@contoso.com", "wrong password"))
        assert error(wrong) == (401, "InvalidCredentials")
    response = post(client, user_xml=ALICE, auth=basic("alice@contoso.com", PASSWORD))
    assert error(response) == (429, "TooManyRequests")
    assert response["Retry-After"] == "120"


@pytest.fixture
def alice_changes_her_password(directory: Slapd) -> Iterator[None]:
    def set_password(password: str) -> None:
        change = (ldap.MOD_REPLACE, "userPassword", [password.encode()])
        directory.modify(user_dn("alice"), [change])

    set_password("A-new-Pa55word")
    yield
    set_password(PASSWORD)


def test_a_success_is_cached_for_a_short_time_under_a_hash_of_the_credentials(
    client: Client, rule: DeviceUpdateRule, directory: Slapd, request: pytest.FixtureRequest
) -> None:
    login = basic("CONTOSO\\alice", PASSWORD)
    assert post(client, user_xml=ALICE, auth=login).status_code == 200
    key = _success_key("CONTOSO\\alice", PASSWORD)
    assert cache.get(key) == ["alice@contoso.com"]
    assert PASSWORD not in key
    assert "alice" not in key
    # The directory is not asked again while the success is cached: the old password
    # still works for that time, even though the directory would now refuse it.
    request.getfixturevalue("alice_changes_her_password")
    assert post(client, user_xml=ALICE, auth=login).status_code == 200
    cache.delete(key)
    assert error(post(client, user_xml=ALICE, auth=login)) == (401, "InvalidCredentials")


def test_with_caching_off_every_sign_in_asks_the_directory(
    client: Client,
    rule: DeviceUpdateRule,
    directory: Slapd,
    settings: Settings,
    request: pytest.FixtureRequest,
) -> None:
    settings.DIRECTORY = directory.config(cache_seconds=0)
    login = basic("alice@contoso.com", PASSWORD)
    assert post(client, user_xml=ALICE, auth=login).status_code == 200
    assert cache.get(_success_key("alice@contoso.com", PASSWORD)) is None
    request.getfixturevalue("alice_changes_her_password")
    assert error(post(client, user_xml=ALICE, auth=login)) == (401, "InvalidCredentials")


def test_an_external_log_upload_signs_in_the_same_way(client: Client, directory: Slapd) -> None:
    response = client.post(
        "/RequestHandlerExt/Files?type=Watson&name=a.dmp&mac=0004F2112233&serial=S1"
        "&user=sip:pat.phone@contoso.com",
        data=b"dump",
        content_type="application/octet-stream",
        HTTP_AUTHORIZATION=basic("CONTOSO\\pat", PASSWORD),
    )
    assert response.status_code == 201


def test_a_directory_that_cannot_be_reached_is_503_counted_for_the_user_only(
    client: Client, rule: DeviceUpdateRule, directory: Slapd, settings: Settings
) -> None:
    # A certificate the service does not trust: the directory cannot be used.
    settings.DIRECTORY = directory.config(url=directory.ldaps_url, ca_file=directory.other_ca_file)
    response = post(
        client, user_xml=ALICE, auth=basic("alice@contoso.com", PASSWORD), REMOTE_ADDR="203.0.113.4"
    )
    assert error(response) == (503, "Busy")
    assert response["Retry-After"] == "45"
    assert "WWW-Authenticate" not in response
    # Counted for the user only, not the address a whole office may share.
    assert cache.get_many(_failure_keys("203.0.113.4", "alice@contoso.com")) == {
        "phones:auth-failures:user:" + user_digest("alice@contoso.com"): 1
    }
    spool_load_once()
    audit = RequestAudit.objects.get()
    assert (audit.status, audit.outcome, audit.message) == (
        503, "refused", "Busy: the directory cannot be reached; try again later",
    )  # fmt: skip


def test_guessing_during_an_outage_is_throttled_per_user(
    client: Client, rule: DeviceUpdateRule, directory: Slapd, settings: Settings
) -> None:
    settings.DIRECTORY = directory.config(url=directory.ldaps_url, ca_file=directory.other_ca_file)
    settings.EXTERNAL_AUTH_MAX_FAILURES = 2
    here = "203.0.113.4"
    for _ in range(2):
        auth = basic("alice@contoso.com", "guess")
        guess = post(client, user_xml=ALICE, auth=auth, REMOTE_ADDR=here)
        assert error(guess) == (503, "Busy")
    throttled = post(client, user_xml=ALICE, auth=basic("alice@contoso.com", PASSWORD))
    assert error(throttled) == (429, "TooManyRequests")
    # The address is not throttled: another user behind it is still told to come back.
    other = post(client, user_xml=PAT, auth=basic("pat@contoso.com", PASSWORD), REMOTE_ADDR=here)
    assert error(other) == (503, "Busy")


def test_a_refused_service_account_is_503_for_phones_and_said_on_the_sign_in_page(
    client: Client, rule: DeviceUpdateRule, directory: Slapd, settings: Settings
) -> None:
    settings.DIRECTORY = directory.config(bind_password="expired")
    response = post(client, user_xml=ALICE, auth=basic("alice@contoso.com", PASSWORD))
    assert error(response) == (503, "Busy")
    assert form_errors(sign_in(Client(), "alice@contoso.com")) == [DIRECTORY_UNREACHABLE]
