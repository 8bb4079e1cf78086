"""The forms an account is named by at sign-in, and where the directory keeps each.

Phones send what their user typed or what the phone was provisioned with:

- ``user@domain``: the user principal name (``userPrincipalName``);
- ``DOMAIN\\user``: the NetBIOS domain and the account name (``sAMAccountName``), the
  domain looked up in ``DEVICEUPDATE_LDAP_NETBIOS_DOMAINS``;
- ``sip:user@domain``: the SIP address (``msRTCSIP-PrimaryUserAddress``, stored with its
  ``sip:`` prefix);
- ``user``: the account name, as administrators type it in the control panel.
"""

from __future__ import annotations

from dataclasses import dataclass

import ldap.dn

from deviceupdate.directory import DirectoryConfig

# Longer than any UPN, SIP address or DOMAIN\account Active Directory allows.
MAX_SIGN_IN_NAME = 320


@dataclass(frozen=True)
class SignInName:
    """Search ``base`` for the one entry whose ``attribute`` equals ``value``."""

    attribute: str
    value: str
    base: str


def sign_in_name(login: str, config: DirectoryConfig) -> SignInName | None:
    """What ``login`` names in the directory; None when it names no directory account."""
    login = login.strip()
    if not login or len(login) > MAX_SIGN_IN_NAME or not login.isprintable():
        return None
    if login[:4].lower() == "sip:":
        address = login[4:]
        if "@" not in address.strip("@"):
            return None
        return SignInName(config.sip_attribute, "sip:" + address, config.user_base)
    if "\\" in login:
        domain, _, account = login.partition("\\")
        dns_name = config.netbios_domains.get(domain.upper())
        if dns_name is None or not account or "\\" in account or "@" in account:
            return None
        domain_dn = ",".join(f"DC={label}" for label in dns_name.split("."))
        # The configured search base when it lies inside that domain, else the domain.
        base = config.user_base if _within(config.user_base, domain_dn) else domain_dn
        return SignInName(config.account_attribute, account, base)
    if "@" in login:
        return SignInName(config.upn_attribute, login, config.user_base)
    return SignInName(config.account_attribute, login, config.user_base)


def _within(dn: str, ancestor: str) -> bool:
    try:
        inner, outer = _normal(dn), _normal(ancestor)
    except ldap.DECODING_ERROR:
        return False
    return len(inner) >= len(outer) and inner[len(inner) - len(outer) :] == outer


def _normal(dn: str) -> list[tuple[tuple[str, str], ...]]:
    return [
        tuple(sorted((name.lower(), value.lower()) for name, value, _ in rdn))
        for rdn in ldap.dn.str2dn(dn)
    ]
