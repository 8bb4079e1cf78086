"""django-auth-ldap's settings and python-ldap connections, from ``settings.DIRECTORY``.

Every connection verifies the server's certificate (against ``DEVICEUPDATE_LDAP_CA_FILE``
when set, else the system's trust store) and gives up after the configured timeout, so
a directory that is down costs a sign-in seconds, not minutes.
"""

from __future__ import annotations

from typing import Any

import ldap
from django_auth_ldap.config import (
    ActiveDirectoryGroupType,
    GroupOfNamesType,
    GroupOfUniqueNamesType,
    LDAPGroupType,
    LDAPSearch,
    NestedActiveDirectoryGroupType,
    NestedGroupOfNamesType,
)
from ldap.ldapobject import LDAPObject

from deviceupdate.directory import DirectoryConfig
from portal.directory.search import SignInSearch

# Each group type, and the object class its groups have.
GROUP_TYPES: dict[str, tuple[type[LDAPGroupType], str]] = {
    "active_directory": (ActiveDirectoryGroupType, "group"),
    "nested_active_directory": (NestedActiveDirectoryGroupType, "group"),
    "group_of_names": (GroupOfNamesType, "groupOfNames"),
    "nested_group_of_names": (NestedGroupOfNamesType, "groupOfNames"),
    "group_of_unique_names": (GroupOfUniqueNamesType, "groupOfUniqueNames"),
}
# Groups are named by this attribute (cn), in the role mapping and in the check.
GROUP_NAME_ATTRIBUTE = "cn"


def group_filter(config: DirectoryConfig) -> str:
    return f"(objectClass={GROUP_TYPES[config.group_type][1]})"


def connection_options(config: DirectoryConfig, *, timeout: float) -> dict[int, Any]:
    """python-ldap options for one connection, in the order they must be set."""
    options: dict[int, Any] = {
        # Active Directory answers with referrals that libldap would follow anonymously.
        ldap.OPT_REFERRALS: 0,
        ldap.OPT_PROTOCOL_VERSION: ldap.VERSION3,
        # Connecting, and then each synchronous operation, give up after the timeout.
        ldap.OPT_NETWORK_TIMEOUT: float(timeout),
        ldap.OPT_TIMEOUT: float(timeout),
        ldap.OPT_X_TLS_REQUIRE_CERT: ldap.OPT_X_TLS_DEMAND,
    }
    if config.ca_file is not None:
        options[ldap.OPT_X_TLS_CACERTFILE] = str(config.ca_file)
    # Last: builds this connection's own TLS context from the options above (without
    # it libldap keeps using the process-wide one and ignores them).
    options[ldap.OPT_X_TLS_NEWCTX] = 0
    return options


def auth_ldap_settings(config: DirectoryConfig) -> dict[str, Any]:
    """django-auth-ldap's settings (``AUTH_LDAP_*`` without the prefix)."""
    group_type, _ = GROUP_TYPES[config.group_type]
    return {
        "SERVER_URI": config.url,
        "BIND_DN": config.bind_dn,
        "BIND_PASSWORD": config.bind_password,
        "START_TLS": config.start_tls,
        "CONNECTION_OPTIONS": connection_options(config, timeout=config.timeout),
        "USER_SEARCH": SignInSearch(config),
        "GROUP_SEARCH": LDAPSearch(config.groups_base, ldap.SCOPE_SUBTREE, group_filter(config)),
        "GROUP_TYPE": group_type(name_attr=GROUP_NAME_ATTRIBUTE),
        "USER_ATTR_MAP": {"first_name": "givenName", "last_name": "sn", "email": "mail"},
        "ALWAYS_UPDATE_USER": True,
        # Nothing of the directory is cached by the library: a user removed from a role
        # group loses the role at the next sign-in. (The phones' own short cache of
        # successful sign-ins is in phones.auth.)
        "CACHE_TIMEOUT": 0,
        "FIND_GROUP_PERMS": False,
        "MIRROR_GROUPS": None,
    }


def connect(config: DirectoryConfig, *, timeout: float) -> LDAPObject:
    """A connection to the directory, not bound yet (StartTLS done when configured)."""
    connection = ldap.initialize(config.url)
    for option, value in connection_options(config, timeout=timeout).items():
        connection.set_option(option, value)
    if config.start_tls:
        connection.start_tls_s()
    return connection


def describe_error(error: ldap.LDAPError) -> str:
    """One line from python-ldap's error: its description and the server's details."""
    details = error.args[0] if error.args and isinstance(error.args[0], dict) else {}
    desc = str(details.get("desc") or type(error).__name__)
    info = str(details.get("info") or "").strip()
    return f"{desc} ({info})" if info and info != desc else desc
