"""directory_roles_sync: a directory user holds exactly the roles its groups grant."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group, User

from portal.models import AuditEntry
from portal.roles import ADMINISTRATORS, HELPDESK
from portal.services.directory import directory_roles_sync

pytestmark = pytest.mark.django_db


def roles(user: User) -> list[str]:
    return sorted(user.groups.values_list("name", flat=True))


def test_a_changed_role_is_given_and_the_old_one_taken_away(helpdesk: User) -> None:
    assert directory_roles_sync(user=helpdesk, roles=frozenset({ADMINISTRATORS})) is True
    helpdesk.refresh_from_db()
    assert (helpdesk.is_staff, roles(helpdesk)) == (True, [ADMINISTRATORS])
    entry = AuditEntry.objects.get()
    assert (entry.action, entry.actor_name, entry.changes) == (
        "portal.directory.roles_changed",
        "directory sign-in",
        {"roles": [[HELPDESK], [ADMINISTRATORS]]},
    )


def test_the_same_roles_change_nothing(administrator: User) -> None:
    assert directory_roles_sync(user=administrator, roles=frozenset({ADMINISTRATORS})) is False
    assert AuditEntry.objects.count() == 0


def test_no_role_takes_staff_status_away_and_leaves_other_groups(administrator: User) -> None:
    administrator.groups.add(Group.objects.create(name="Report readers"))
    assert directory_roles_sync(user=administrator, roles=frozenset()) is True
    administrator.refresh_from_db()
    assert (administrator.is_staff, roles(administrator)) == (False, ["Report readers"])
    assert AuditEntry.objects.get().changes == {
        "roles": [[ADMINISTRATORS], []],
        "is_staff": [True, False],
    }


def test_a_group_that_is_no_role_is_refused_and_nothing_changes(helpdesk: User) -> None:
    with pytest.raises(ValueError, match="^not a role: Report readers$"):
        directory_roles_sync(user=helpdesk, roles=frozenset({"Report readers"}))
    helpdesk.refresh_from_db()
    assert (helpdesk.is_staff, roles(helpdesk)) == (True, [HELPDESK])
    assert AuditEntry.objects.count() == 0
