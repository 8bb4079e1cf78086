"""Readiness check 6: the service account binds, the user base and each role's group
exist; not configured, unreachable, untrusted or silent directories say so in one line."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest
from pytest_django.fixtures import Settings

from portal.readiness.base import CheckResult, Status
from portal.readiness.directory import FIX_BIND, FIX_REACH, FIX_TLS, directory_checks
from portal.roles import ADMINISTRATORS, HELPDESK
from tests.conftest import free_port
from tests.directory.slapd import (
    ADMINS_GROUP,
    GROUPS,
    HELPDESK_GROUP,
    SERVICE_DN,
    STAFF,
    Slapd,
    group_dn,
)


def passing(url: str) -> list[CheckResult]:
    return [
        CheckResult("directory", url, Status.PASS, f"the service account {SERVICE_DN} binds"),
        CheckResult("directory", STAFF, Status.PASS, "the user search base exists"),
        CheckResult(
            "directory", f"{ADMINISTRATORS}: {ADMINS_GROUP}", Status.PASS,
            f"the group exists ({group_dn(ADMINS_GROUP)})",
        ),
        CheckResult(
            "directory", f"{HELPDESK}: {HELPDESK_GROUP}", Status.PASS,
            f"the group exists ({group_dn(HELPDESK_GROUP)})",
        ),
    ]  # fmt: skip


def test_not_configured_is_one_warning(settings: Settings) -> None:
    settings.DIRECTORY = None
    assert directory_checks(timeout=5) == [
        CheckResult(
            check="directory",
            subject="directory",
            status=Status.WARN,
            detail="not configured: only local accounts sign in (phones outside too)",
            fix="set DEVICEUPDATE_LDAP_URL and the other DEVICEUPDATE_LDAP_* settings "
            "(README, Directory accounts) to sign in with directory accounts",
        )
    ]


def test_a_ready_directory_passes(directory: Slapd) -> None:
    assert directory_checks(timeout=5) == passing(directory.ldap_url)


@pytest.mark.parametrize("tls", ["ldaps", "starttls"])
def test_a_ready_directory_over_tls_passes(directory: Slapd, settings: Settings, tls: str) -> None:
    url = directory.ldaps_url if tls == "ldaps" else directory.ldap_url
    settings.DIRECTORY = directory.config(
        url=url, start_tls=tls == "starttls", ca_file=directory.ca_file
    )
    assert directory_checks(timeout=5) == passing(url)


def test_a_refused_service_account_fails(directory: Slapd, settings: Settings) -> None:
    settings.DIRECTORY = directory.config(bind_password="not the password")
    url = directory.ldap_url
    assert directory_checks(timeout=5) == [
        CheckResult(
            "directory", url, Status.FAIL,
            f"{url} refused the service account {SERVICE_DN}: Invalid credentials", FIX_BIND,
        )
    ]  # fmt: skip


def test_a_missing_role_group_and_user_base_fail(directory: Slapd, settings: Settings) -> None:
    settings.DIRECTORY = directory.config(
        helpdesk_group="Service Desk", user_base=f"ou=Gone,{STAFF}"
    )
    results = directory_checks(timeout=5)
    assert results[1:] == [
        CheckResult(
            "directory", f"ou=Gone,{STAFF}", Status.FAIL, "the user search base does not exist",
            "set DEVICEUPDATE_LDAP_USER_SEARCH_BASE to the DN above the user accounts",
        ),
        passing(directory.ldap_url)[2],
        CheckResult(
            "directory", f"{HELPDESK}: Service Desk", Status.FAIL,
            f"no group named 'Service Desk' under {GROUPS}",
            "create the group in the directory, or set DEVICEUPDATE_LDAP_HELPDESK_GROUP to "
            "the name (cn) of the group that holds this role",
        ),
    ]  # fmt: skip
    assert results[0].status == Status.PASS


def test_a_server_nobody_listens_on_fails_naming_it(directory: Slapd, settings: Settings) -> None:
    url = f"ldap://127.0.0.1:{free_port()}"
    settings.DIRECTORY = directory.config(url=url)
    [result] = directory_checks(timeout=5)
    assert (result.subject, result.status, result.fix) == (url, Status.FAIL, FIX_REACH)
    assert result.detail.startswith(f"cannot reach {url}: Can't contact LDAP server")


@pytest.mark.parametrize("tls", ["ldaps", "starttls"])
def test_a_certificate_from_an_untrusted_ca_fails(
    directory: Slapd, settings: Settings, tls: str
) -> None:
    url = directory.ldaps_url if tls == "ldaps" else directory.ldap_url
    settings.DIRECTORY = directory.config(
        url=url, start_tls=tls == "starttls", ca_file=directory.other_ca_file
    )
    assert directory_checks(timeout=5) == [
        CheckResult(
            "directory", url, Status.FAIL,
            f"the certificate of {url} is not trusted: self-signed certificate in certificate "
            "chain",
            FIX_TLS,
        )
    ]  # fmt: skip


@pytest.fixture
def silent_server() -> Iterator[str]:
    """Accepts connections (the kernel's backlog) and never answers."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        yield f"ldap://127.0.0.1:{listener.getsockname()[1]}"


def test_a_server_that_never_answers_fails_at_the_timeout(
    directory: Slapd, settings: Settings, silent_server: str
) -> None:
    settings.DIRECTORY = directory.config(url=silent_server)
    assert directory_checks(timeout=1) == [
        CheckResult(
            "directory", silent_server, Status.FAIL,
            f"no answer from {silent_server} within 1 s", FIX_REACH,
        )
    ]  # fmt: skip


def test_a_check_that_cannot_run_warns_without_a_traceback(
    directory: Slapd, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    import portal.readiness.directory as check

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("libldap is missing")

    monkeypatch.setattr(check, "connect", broken)
    assert directory_checks(timeout=5) == [
        CheckResult(
            "directory", directory.ldap_url, Status.WARN,
            "could not be checked: RuntimeError('libldap is missing')",
            "see the service's log; check the DEVICEUPDATE_LDAP_* settings",
        )
    ]  # fmt: skip
