"""The directory authentication backend: django-auth-ldap, told how accounts are named
here and how directory groups map to the two roles.

A sign-in searches the directory with the service account for the one enabled entry the
name designates (``portal.directory.names``), binds as it with the password given, and
then, every time, reads the user's groups: the roles they grant are given, the others
taken away (``directory_roles_sync``). The Django account is named by the user's
principal name (lower case), whichever form the user signed in with.
"""

from __future__ import annotations

import logging
from typing import Any

import ldap
from django.conf import settings
from django.contrib.auth.models import User
from django.core.cache import cache
from django.dispatch import receiver
from django.http import HttpRequest
from django_auth_ldap.backend import LDAPBackend, ldap_error

from portal.directory.connection import auth_ldap_settings, describe_error
from portal.directory.names import sign_in_name
from portal.directory.outage import note_directory_error
from portal.roles import ADMINISTRATORS, HELPDESK
from portal.services.directory import directory_roles_sync

logger = logging.getLogger(__name__)

# Django's username field holds at most this many characters.
MAX_USERNAME = 150
# While the directory is known to be unreachable, sign-ins do not wait for it again
# (for DEVICEUPDATE_LDAP_RETRY_AFTER seconds): each would hold a web worker for the
# timeout, and a boot storm during an outage would take every worker, the internal
# phones' too. Set on network errors only (not, say, a refused service account).
DOWN_KEY = "portal:directory:down"
NETWORK_ERRORS = (ldap.SERVER_DOWN, ldap.TIMEOUT, ldap.CONNECT_ERROR)


class DirectoryBackend(LDAPBackend):
    """Directory accounts: users, administrators and helpdesk by their directory groups."""

    # No Django setting starts with this: every setting comes from settings.DIRECTORY.
    settings_prefix = "DEVICEUPDATE_DIRECTORY_UNUSED_"

    @property
    def default_settings(self) -> dict[str, Any]:
        config = settings.DIRECTORY
        return {} if config is None else auth_ldap_settings(config)

    def authenticate(
        self,
        request: HttpRequest | None,
        username: str | None = None,
        password: str | None = None,
        **kwargs: Any,
    ) -> User | None:
        config = settings.DIRECTORY
        if config is None or not username or sign_in_name(username, config) is None:
            return None
        down = cache.get(DOWN_KEY)
        if down is not None:
            note_directory_error(str(down))
            return None
        user: User | None = super().authenticate(
            request, username=username, password=password, **kwargs
        )
        return user

    def get_or_build_user(self, username: str, ldap_user: Any) -> tuple[User, bool]:
        """The Django account of the entry: named by its principal name, whichever form
        was typed (so ``CONTOSO\\alice`` and ``alice@contoso.com`` are one account)."""
        config = settings.DIRECTORY
        assert config is not None  # authenticate() returned early otherwise
        values = (ldap_user.attrs or {}).get(config.upn_attribute) or [""]
        principal = str(values[0]).strip().lower()
        if not principal or len(principal) > MAX_USERNAME:
            raise ldap_user.AuthenticationFailed(
                f"{ldap_user.dn} has no usable {config.upn_attribute}"
            )
        built: tuple[User, bool] = super().get_or_build_user(principal, ldap_user)
        return built

    def authenticate_ldap_user(self, ldap_user: Any, password: str) -> User | None:
        user: User | None = super().authenticate_ldap_user(ldap_user, password)
        if user is None:
            return None
        config = settings.DIRECTORY
        assert config is not None
        try:
            groups = {str(name).lower() for name in ldap_user.group_names}
        except ldap.LDAPError as error:
            # Roles cannot be known: no sign-in rather than one with stale roles.
            logger.warning("directory: reading the groups of %s failed: %s", ldap_user.dn, error)
            _directory_failed(error)
            return None
        roles: set[str] = set()
        if config.administrators_group.lower() in groups:
            roles.add(ADMINISTRATORS)
        if config.helpdesk_group.lower() in groups:
            roles.add(HELPDESK)
        directory_roles_sync(user=user, roles=frozenset(roles))
        if not user.is_active:
            return None
        # The phones' UserID names a directory user by the SIP address (phones.auth).
        user.directory_names = frozenset(  # type: ignore[attr-defined]
            address
            for value in (ldap_user.attrs or {}).get(config.sip_attribute) or []
            if (address := str(value).strip().lower().removeprefix("sip:"))
        )
        return user


@receiver(ldap_error, sender=DirectoryBackend, dispatch_uid="portal.directory.ldap_error")
def _note_ldap_error(sender: object, exception: ldap.LDAPError, **_: Any) -> None:
    # django-auth-ldap's only report of an LDAP error during a sign-in (it logs it and
    # returns "no user"): remembered so the entry point can answer "unreachable".
    _directory_failed(exception)


def _directory_failed(error: ldap.LDAPError) -> None:
    description = describe_error(error)
    note_directory_error(description)
    config = settings.DIRECTORY
    if config is not None and isinstance(error, NETWORK_ERRORS):
        cache.set(DOWN_KEY, description, timeout=config.retry_after)
