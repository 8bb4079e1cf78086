"""The directory (LDAP / Active Directory) settings, read from the environment.

``DirectoryConfig.from_env`` returns None without ``DEVICEUPDATE_LDAP_URL``: then no
directory backend is installed and sign-in works exactly as without this feature. The
settings are plain data here (no ``ldap`` import at settings time); ``portal.directory``
turns them into django-auth-ldap's settings and python-ldap's connection options.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from deviceupdate.env import ConfigError, Env

# Active Directory's defaults: enabled user accounts (bit 2 of userAccountControl is
# ACCOUNTDISABLE; 1.2.840.113556.1.4.803 is the bitwise-AND matching rule).
AD_USER_FILTER = "(&(objectClass=user)(!(userAccountControl:1.2.840.113556.1.4.803:=2)))"
GROUP_TYPES = (
    "active_directory",
    "nested_active_directory",
    "group_of_names",
    "nested_group_of_names",
    "group_of_unique_names",
)
_NETBIOS = re.compile(r"^[A-Za-z0-9][A-Za-z0-9!@#$%^&'().{}~_-]{0,14}$")
_DNS_LABEL = r"[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_DNS_NAME = re.compile(rf"^(?=.{{1,253}}$)({_DNS_LABEL}\.)*{_DNS_LABEL}$")
_ATTRIBUTE = re.compile(r"^[A-Za-z][A-Za-z0-9-]{0,127}$")


@dataclass(frozen=True)
class DirectoryConfig:
    """Where the directory is, how to reach it safely, and how its accounts map here."""

    url: str
    user_base: str
    bind_dn: str = ""
    bind_password: str = field(default="", repr=False)
    user_filter: str = AD_USER_FILTER
    group_base: str = ""
    group_type: str = "active_directory"
    ca_file: Path | None = None
    start_tls: bool = False
    administrators_group: str = "Device update administrators"
    helpdesk_group: str = "Helpdesk"
    upn_attribute: str = "userPrincipalName"
    account_attribute: str = "sAMAccountName"
    sip_attribute: str = "msRTCSIP-PrimaryUserAddress"
    # NetBIOS domain name (upper case) -> the domain's DNS name, for DOMAIN\user.
    netbios_domains: dict[str, str] = field(default_factory=dict)
    cache_seconds: int = 300
    timeout: int = 5
    retry_after: int = 60

    @property
    def groups_base(self) -> str:
        return self.group_base or self.user_base

    @property
    def urls(self) -> list[str]:
        return self.url.split()

    @classmethod
    def from_env(cls, env: Env, *, base: Path) -> DirectoryConfig | None:
        """The directory named by ``DEVICEUPDATE_LDAP_*``; relative paths from ``base``."""
        url = env.optional_str("DEVICEUPDATE_LDAP_URL")
        if url is None:
            return None
        for one in url.split():
            parts = urlsplit(one)
            if parts.scheme.lower() not in ("ldap", "ldaps") or not parts.hostname:
                raise ConfigError(
                    "DEVICEUPDATE_LDAP_URL",
                    f"expected ldap://host[:port] or ldaps://host[:port] (several separated by "
                    f"spaces), got {one!r}",
                )
        user_base = env.optional_str("DEVICEUPDATE_LDAP_USER_SEARCH_BASE")
        if user_base is None:
            raise ConfigError(
                "DEVICEUPDATE_LDAP_USER_SEARCH_BASE", "is required with DEVICEUPDATE_LDAP_URL"
            )
        bind_dn = env.string("DEVICEUPDATE_LDAP_BIND_DN", "")
        bind_password = env.string("DEVICEUPDATE_LDAP_BIND_PASSWORD", "")
        if bind_dn and not bind_password:
            raise ConfigError(
                "DEVICEUPDATE_LDAP_BIND_PASSWORD", "is required with DEVICEUPDATE_LDAP_BIND_DN"
            )
        user_filter = env.string("DEVICEUPDATE_LDAP_USER_FILTER", AD_USER_FILTER)
        if not _balanced_filter(user_filter):
            raise ConfigError(
                "DEVICEUPDATE_LDAP_USER_FILTER",
                f"expected one parenthesised LDAP filter, got {user_filter!r}",
            )
        ca_file = None
        ca_value = env.optional_str("DEVICEUPDATE_LDAP_CA_FILE")
        if ca_value is not None:
            ca_file = env.path("DEVICEUPDATE_LDAP_CA_FILE", Path(ca_value), base=base)
            if not ca_file.is_file():
                raise ConfigError("DEVICEUPDATE_LDAP_CA_FILE", f"no such file: {ca_file}")
        start_tls = env.boolean("DEVICEUPDATE_LDAP_START_TLS", False)
        if start_tls and any(one.lower().startswith("ldaps:") for one in url.split()):
            raise ConfigError(
                "DEVICEUPDATE_LDAP_START_TLS", "is for ldap:// URLs; ldaps:// is TLS already"
            )
        attributes = {
            name: env.string(f"DEVICEUPDATE_LDAP_{name.upper()}", default)
            for name, default in (
                ("upn_attribute", cls.upn_attribute),
                ("account_attribute", cls.account_attribute),
                ("sip_attribute", cls.sip_attribute),
            )
        }
        for name, value in attributes.items():
            if not _ATTRIBUTE.match(value):
                raise ConfigError(
                    f"DEVICEUPDATE_LDAP_{name.upper()}", f"not an attribute name: {value!r}"
                )
        return cls(
            url=url,
            user_base=user_base,
            bind_dn=bind_dn,
            bind_password=bind_password,
            user_filter=user_filter,
            group_base=env.string("DEVICEUPDATE_LDAP_GROUP_SEARCH_BASE", ""),
            group_type=env.choice("DEVICEUPDATE_LDAP_GROUP_TYPE", cls.group_type, GROUP_TYPES),
            ca_file=ca_file,
            start_tls=start_tls,
            administrators_group=env.string(
                "DEVICEUPDATE_LDAP_ADMINISTRATORS_GROUP", cls.administrators_group
            ),
            helpdesk_group=env.string("DEVICEUPDATE_LDAP_HELPDESK_GROUP", cls.helpdesk_group),
            netbios_domains=_netbios_domains(env),
            cache_seconds=env.integer(
                "DEVICEUPDATE_LDAP_CACHE_SECONDS", cls.cache_seconds, minimum=0, maximum=3600
            ),
            timeout=env.integer("DEVICEUPDATE_LDAP_TIMEOUT", cls.timeout, minimum=1, maximum=60),
            retry_after=env.integer(
                "DEVICEUPDATE_LDAP_RETRY_AFTER", cls.retry_after, minimum=1, maximum=3600
            ),
            **attributes,
        )


def _balanced_filter(value: str) -> bool:
    depth = 0
    for position, char in enumerate(value):
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
            if depth < 0 or (depth == 0 and position != len(value) - 1):
                return False
    return value.startswith("(") and depth == 0


def _netbios_domains(env: Env) -> dict[str, str]:
    """``CONTOSO=contoso.com,FABRIKAM=fabrikam.com``."""
    domains: dict[str, str] = {}
    for item in env.csv("DEVICEUPDATE_LDAP_NETBIOS_DOMAINS", []):
        netbios, _, dns_name = item.partition("=")
        netbios, dns_name = netbios.strip(), dns_name.strip().rstrip(".").lower()
        if not _NETBIOS.match(netbios) or not _DNS_NAME.match(dns_name):
            raise ConfigError(
                "DEVICEUPDATE_LDAP_NETBIOS_DOMAINS",
                f"expected NETBIOS=dns.name entries separated by commas, got {item!r}",
            )
        domains[netbios.upper()] = dns_name
    return domains
