"""Local accounts beside the directory's."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import UNUSABLE_PASSWORD_PREFIX


def local_password_account(username: str) -> bool:
    """A local account of that name signs in with its own password (accounts made from
    the directory have none: django-auth-ldap marks their passwords unusable)."""
    model = get_user_model()
    return (
        model._default_manager.filter(**{model.USERNAME_FIELD: username})
        .exclude(password__startswith=UNUSABLE_PASSWORD_PREFIX)
        .exists()
    )
