"""The directory stopped mid-run: phones get 503 with Retry-After (never a 401 that would
prompt the user), the control panel says the directory is unreachable, sign-ins cached
before the outage keep working, and local administrators still sign in (break-glass)."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator

import pytest
from django.contrib.auth.models import User
from django.core.cache import cache
from django.test import Client

from phones.auth import _failure_keys
from portal.admin.signin import DIRECTORY_UNREACHABLE
from portal.directory.backend import DOWN_KEY
from portal.models import DeviceUpdateRule
from portal.readiness.base import CheckResult, Status
from portal.readiness.directory import FIX_REACH, directory_checks
from tests.directory.slapd import PASSWORD, Slapd
from tests.directory.test_control_panel import STAFF_ONLY, form_errors, sign_in, signed_in
from tests.phones.test_external_check import basic, error, post


def user_digest(name: str) -> str:
    """How the throttle names a user: a digest, since a UserID may hold any character."""
    return hashlib.sha256(name.encode()).hexdigest()[:32]


ALICE = "<UserID>sip:alice@contoso.com</UserID>"
PAT = "<UserID>sip:pat.phone@contoso.com</UserID>"


@pytest.fixture
def outage(directory: Slapd) -> Iterator[Slapd]:
    """slapd is stopped; started again (same ports, same data) at the latest afterwards."""
    directory.stop()
    yield directory
    directory.start()


def test_the_directory_stopped_mid_run(
    client: Client,
    rule: DeviceUpdateRule,
    directory: Slapd,
    administrator: User,
    request: pytest.FixtureRequest,
) -> None:
    # Before: Pat's phone signs in (and the success is cached); Alice signs in to the
    # control panel.
    assert post(client, user_xml=PAT, auth=basic("pat@contoso.com", PASSWORD)).status_code == 200
    assert signed_in(sign_in(Client(), "alice@contoso.com"))

    request.getfixturevalue("outage")

    # A phone whose sign-in is not cached: 503 Busy with Retry-After, counted for the
    # user only (not for the address).
    response = post(
        client, user_xml=ALICE, auth=basic("CONTOSO\\alice", PASSWORD), REMOTE_ADDR="198.51.100.3"
    )
    assert error(response) == (503, "Busy")
    assert response["Retry-After"] == "45"
    assert "WWW-Authenticate" not in response
    keys = _failure_keys("198.51.100.3", "alice@contoso.com")
    assert keys[1] == "phones:auth-failures:user:" + user_digest("alice@contoso.com")
    assert cache.get_many(keys) == {keys[1]: 1}
    # A wrong password cannot be told from a right one now: 503 too, never a 401.
    wrong = post(client, user_xml=ALICE, auth=basic("alice@contoso.com", "wrong"))
    assert error(wrong) == (503, "Busy")

    # A phone signed in shortly before the outage keeps working from the cache.
    assert post(client, user_xml=PAT, auth=basic("pat@contoso.com", PASSWORD)).status_code == 200

    # The control panel: the sign-in page says the directory is unreachable ...
    refused = sign_in(Client(), "alice@contoso.com")
    assert refused.status_code == 200
    assert form_errors(refused) == [DIRECTORY_UNREACHABLE]
    assert DIRECTORY_UNREACHABLE in refused.content.decode()
    # ... but a local account's wrong password is said as such ...
    local_wrong = sign_in(Client(), "ada", "guess")
    assert form_errors(local_wrong) == [STAFF_ONLY]
    # ... and the local administrator still signs in (break-glass).
    assert signed_in(sign_in(Client(), "ada", "correct horse battery"))

    # The readiness check names the server it cannot reach.
    [result] = directory_checks(timeout=5)
    assert result == CheckResult(
        check="directory",
        subject=directory.ldap_url,
        status=Status.FAIL,
        detail=f"cannot reach {directory.ldap_url}: Can't contact LDAP server "
        "(Transport endpoint is not connected)",
        fix=FIX_REACH,
    )

    # The directory back: it is not asked again until its Retry-After has passed (each
    # sign-in would otherwise wait for it); then Alice's phone signs in again.
    directory.start()
    assert cache.get(DOWN_KEY) == "Can't contact LDAP server (Transport endpoint is not connected)"
    again = post(client, user_xml=ALICE, auth=basic("alice@contoso.com", PASSWORD))
    assert error(again) == (503, "Busy")
    cache.delete(DOWN_KEY)
    again = post(client, user_xml=ALICE, auth=basic("alice@contoso.com", PASSWORD))
    assert again.status_code == 200


def test_a_local_accounts_wrong_password_still_counts_during_an_outage(
    client: Client,
    rule: DeviceUpdateRule,
    directory: Slapd,
    administrator: User,
    request: pytest.FixtureRequest,
) -> None:
    request.getfixturevalue("outage")
    ada = "<UserID>sip:ada</UserID>"
    wrong = post(client, user_xml=ada, auth=basic("ada", "guess"), REMOTE_ADDR="198.51.100.9")
    assert error(wrong) == (401, "InvalidCredentials")
    assert cache.get_many(_failure_keys("198.51.100.9", "ada")) == {
        "phones:auth-failures:addr:198.51.100.9": 1,
        "phones:auth-failures:user:" + user_digest("ada"): 1,
    }
    right = post(client, user_xml=ada, auth=basic("ada", "correct horse battery"))
    assert right.status_code == 200
