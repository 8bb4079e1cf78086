"""Roles of directory accounts: what the user's directory groups grant, at each sign-in."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import Group, User
from django.db import transaction

from portal.roles import ADMINISTRATORS, HELPDESK
from portal.services.audit import Actor, audit_record

DIRECTORY_ACTOR = "directory sign-in"
ROLES = (ADMINISTRATORS, HELPDESK)


def directory_roles_sync(*, user: User, roles: frozenset[str]) -> bool:
    """Give ``user`` exactly ``roles`` of the two (their groups) and staff status with any;
    audited when something changed. Groups other than the roles are left alone. True when
    the user changed."""
    unknown = roles - set(ROLES)
    if unknown:
        raise ValueError(f"not a role: {', '.join(sorted(unknown))}")
    with transaction.atomic():
        current = set(user.groups.filter(name__in=ROLES).values_list("name", flat=True))
        staff = bool(roles)
        if current == roles and user.is_staff == staff:
            return False
        changes: dict[str, list[Any]] = {}
        if current != roles:
            groups = list(Group.objects.filter(name__in=ROLES))
            user.groups.remove(*(group for group in groups if group.name not in roles))
            user.groups.add(*(group for group in groups if group.name in roles))
            changes["roles"] = [sorted(current), sorted(roles)]
        if user.is_staff != staff:
            changes["is_staff"] = [user.is_staff, staff]
            user.is_staff = staff
            user.save(update_fields=["is_staff"])
        audit_record(
            actor=Actor.system(DIRECTORY_ACTOR),
            action="portal.directory.roles_changed",
            obj=user,
            changes=changes,
        )
    return True
