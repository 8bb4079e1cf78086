"""Administrators and the helpdesk sign in to the control panel with directory accounts;
their directory groups give the roles, at every sign-in."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import ldap
import pytest
from django.contrib.auth.models import User
from django.test import Client
from pytest_django.fixtures import Settings

from portal.admin.signin import DIRECTORY_UNREACHABLE
from portal.models import AuditEntry
from portal.roles import ADMINISTRATORS, HELPDESK
from tests.directory.slapd import (
    ADMINS_GROUP,
    NESTED_ADMINS_GROUP,
    PASSWORD,
    Slapd,
    group_dn,
    user_dn,
)

STAFF_ONLY = (
    "Please enter the correct username and password for a staff account. Note that both "
    "fields may be case-sensitive."
)


def sign_in(client: Client, username: str, password: str = PASSWORD) -> Any:
    return client.post(
        "/admin/login/", {"username": username, "password": password, "next": "/admin/"}
    )


def signed_in(response: Any) -> bool:
    return response.status_code == 302 and response["Location"] == "/admin/"


def form_errors(response: Any) -> list[str]:
    return list(response.context["form"].non_field_errors())


def roles(user: User) -> list[str]:
    return sorted(user.groups.values_list("name", flat=True))


@pytest.mark.parametrize(
    "login", ["alice", "alice@contoso.com", "CONTOSO\\alice", "sip:alice@contoso.com"]
)
def test_an_administrator_signs_in_with_any_form_of_the_name(
    client: Client, directory: Slapd, login: str
) -> None:
    assert signed_in(sign_in(client, login))
    user = User.objects.get()
    assert (user.username, user.email, user.first_name, user.last_name) == (
        "alice@contoso.com", "alice@contoso.com", "Alice", "Alice",
    )  # fmt: skip
    assert (user.is_staff, user.is_superuser, user.has_usable_password()) == (True, False, False)
    assert roles(user) == [ADMINISTRATORS]
    assert client.get("/admin/portal/deviceupdaterule/").status_code == 200
    entry = AuditEntry.objects.get()
    assert (entry.action, entry.actor_name, entry.object_repr, entry.changes) == (
        "portal.directory.roles_changed",
        "directory sign-in",
        "alice@contoso.com",
        {"roles": [[], [ADMINISTRATORS]], "is_staff": [False, True]},
    )


def test_every_form_of_the_name_is_one_account(client: Client, directory: Slapd) -> None:
    for login in ("alice", "alice@contoso.com", "CONTOSO\\alice", "sip:alice@contoso.com"):
        assert signed_in(sign_in(Client(), login))
    assert list(User.objects.values_list("username", flat=True)) == ["alice@contoso.com"]
    # Roles were given once; signing in again with the same groups changes nothing.
    assert AuditEntry.objects.count() == 1


def test_the_helpdesk_group_gives_the_helpdesk_role(client: Client, directory: Slapd) -> None:
    assert signed_in(sign_in(client, "harry@contoso.com"))
    user = User.objects.get()
    assert (user.username, user.is_staff, roles(user)) == ("harry@contoso.com", True, [HELPDESK])
    assert client.get("/admin/portal/deviceupdaterule/").status_code == 200
    # Read-only: the helpdesk cannot add a rule.
    assert client.get("/admin/portal/deviceupdaterule/add/").status_code == 403


def test_a_user_in_no_role_group_cannot_enter_the_control_panel(
    client: Client, directory: Slapd
) -> None:
    response = sign_in(client, "pat@contoso.com")
    assert response.status_code == 200
    assert form_errors(response) == [STAFF_ONLY]
    user = User.objects.get()
    assert (user.username, user.is_staff, roles(user)) == ("pat@contoso.com", False, [])
    assert AuditEntry.objects.count() == 0


@pytest.mark.parametrize(
    ("login", "password"),
    [
        ("alice@contoso.com", "wrong password"),
        ("alice@contoso.com", ""),
        ("dave@contoso.com", PASSWORD),  # disabled in the directory
        ("nobody@contoso.com", PASSWORD),
        ("NORTHWIND\\alice", PASSWORD),  # a domain not in the map
        ("*", PASSWORD),
        ("alice)(sAMAccountName=*", PASSWORD),
    ],
    ids=["wrong", "empty", "disabled", "unknown", "other domain", "wildcard", "injection"],
)
def test_a_refused_sign_in_creates_no_account(
    client: Client, directory: Slapd, login: str, password: str
) -> None:
    response = sign_in(client, login, password)
    assert response.status_code == 200
    if password:
        assert form_errors(response) == [STAFF_ONLY]
    assert User.objects.count() == 0
    assert AuditEntry.objects.filter(action="portal.directory.roles_changed").count() == 0


@pytest.fixture
def oscar_leaves_the_admins(directory: Slapd) -> Iterator[None]:
    """Oscar is taken out of the administrators' group (and put back afterwards)."""
    member = [user_dn("oscar").encode()]
    directory.modify(group_dn(ADMINS_GROUP), [(ldap.MOD_DELETE, "member", member)])
    yield
    directory.modify(group_dn(ADMINS_GROUP), [(ldap.MOD_ADD, "member", member)])


def test_a_user_moved_out_of_the_admin_group_loses_the_role_at_next_sign_in(
    client: Client, directory: Slapd, request: pytest.FixtureRequest
) -> None:
    assert signed_in(sign_in(client, "oscar"))
    oscar = User.objects.get()
    assert (oscar.is_staff, roles(oscar)) == (True, [ADMINISTRATORS])
    request.getfixturevalue("oscar_leaves_the_admins")

    response = sign_in(Client(), "oscar")
    assert form_errors(response) == [STAFF_ONLY]
    oscar.refresh_from_db()
    assert (oscar.is_staff, roles(oscar)) == (False, [])
    assert list(
        AuditEntry.objects.filter(object_id=str(oscar.pk))
        .order_by("pk")
        .values_list("action", "changes")
    ) == [
        (
            "portal.directory.roles_changed",
            {"roles": [[], [ADMINISTRATORS]], "is_staff": [False, True]},
        ),
        (
            "portal.directory.roles_changed",
            {"roles": [[ADMINISTRATORS], []], "is_staff": [True, False]},
        ),
    ]


def test_other_django_groups_of_a_directory_user_are_left_alone(
    client: Client, directory: Slapd
) -> None:
    from django.contrib.auth.models import Group

    extra = Group.objects.create(name="Report readers")
    assert signed_in(sign_in(client, "alice"))
    alice = User.objects.get()
    alice.groups.add(extra)
    assert signed_in(sign_in(Client(), "alice"))
    assert roles(alice) == [ADMINISTRATORS, "Report readers"]


@pytest.mark.parametrize(
    ("group_type", "kims_roles"),
    [
        ("nested_active_directory", [ADMINISTRATORS]),
        ("active_directory", []),
        ("nested_group_of_names", [ADMINISTRATORS]),
        ("group_of_names", []),
    ],
)
def test_nested_group_types_follow_groups_in_groups(
    client: Client, directory: Slapd, settings: Settings, group_type: str, kims_roles: list[str]
) -> None:
    settings.DIRECTORY = directory.config(
        group_type=group_type, administrators_group=NESTED_ADMINS_GROUP
    )
    response = sign_in(client, "kim@contoso.com")
    assert signed_in(response) == bool(kims_roles)
    assert roles(User.objects.get()) == kims_roles


def test_ldaps_with_the_test_ca(client: Client, directory: Slapd, settings: Settings) -> None:
    settings.DIRECTORY = directory.config(url=directory.ldaps_url, ca_file=directory.ca_file)
    assert signed_in(sign_in(client, "alice@contoso.com"))


def test_starttls_with_the_test_ca(client: Client, directory: Slapd, settings: Settings) -> None:
    settings.DIRECTORY = directory.config(start_tls=True, ca_file=directory.ca_file)
    assert signed_in(sign_in(client, "alice@contoso.com"))


@pytest.mark.parametrize("tls", ["ldaps", "starttls"])
def test_a_directory_certificate_the_service_does_not_trust_is_never_used(
    client: Client, directory: Slapd, settings: Settings, tls: str
) -> None:
    url = directory.ldaps_url if tls == "ldaps" else directory.ldap_url
    settings.DIRECTORY = directory.config(
        url=url, start_tls=tls == "starttls", ca_file=directory.other_ca_file
    )
    response = sign_in(client, "alice@contoso.com")
    assert form_errors(response) == [DIRECTORY_UNREACHABLE]
    assert User.objects.count() == 0


def test_a_local_account_signs_in_beside_the_directory(
    client: Client, directory: Slapd, administrator: User
) -> None:
    assert signed_in(sign_in(client, "ada", "correct horse battery"))
    assert User.objects.count() == 1
