"""django-auth-ldap's user search, for every form of sign-in name."""

from __future__ import annotations

from typing import Any

import ldap
from django_auth_ldap.config import LDAPSearch

from deviceupdate.directory import DirectoryConfig
from portal.directory.names import sign_in_name


class SignInSearch(LDAPSearch):
    """django-auth-ldap's user search, for whichever form the sign-in name has: the
    configured user filter, and the attribute and base that form means."""

    def __init__(self, config: DirectoryConfig) -> None:
        super().__init__(config.user_base, ldap.SCOPE_SUBTREE, config.user_filter)
        self.config = config

    def execute(
        self, connection: Any, filterargs: Any = (), escape: bool = True
    ) -> list[tuple[str, dict[str, list[str]]]]:
        login = filterargs.get("user", "") if isinstance(filterargs, dict) else ""
        name = sign_in_name(login, self.config)
        if name is None:
            return []
        # The value goes in through the library's escaping; a "%" in the configured
        # filter must not be read as a placeholder.
        filterstr = f"(&{self.filterstr.replace('%', '%%')}({name.attribute}=%(value)s))"
        search = LDAPSearch(name.base, self.scope, filterstr, self.attrlist)
        results: list[tuple[str, dict[str, list[str]]]] = search.execute(
            connection, {"value": name.value}
        )
        return results
