"""The directory's settings (DEVICEUPDATE_LDAP_*) and the sign-in name forms."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.conf import settings

from deviceupdate.directory import AD_USER_FILTER, DirectoryConfig
from deviceupdate.env import ConfigError, Env
from portal.directory.names import SignInName, sign_in_name

BASE = {
    "DEVICEUPDATE_LDAP_URL": "ldaps://dc1.contoso.com ldaps://dc2.contoso.com:636",
    "DEVICEUPDATE_LDAP_USER_SEARCH_BASE": "OU=Staff,DC=contoso,DC=com",
}


def config(tmp_path: Path, **values: str) -> DirectoryConfig | None:
    return DirectoryConfig.from_env(Env({**BASE, **values}), base=tmp_path)


def test_without_a_url_there_is_no_directory_and_sign_in_is_as_before(tmp_path: Path) -> None:
    assert DirectoryConfig.from_env(Env({}), base=tmp_path) is None
    assert settings.DIRECTORY is None
    assert settings.AUTHENTICATION_BACKENDS == [
        "portal.admin.lockouts.SigninGuardBackend",
        "django.contrib.auth.backends.ModelBackend",
    ]


def test_defaults_are_active_directorys(tmp_path: Path) -> None:
    assert config(tmp_path) == DirectoryConfig(
        url="ldaps://dc1.contoso.com ldaps://dc2.contoso.com:636",
        user_base="OU=Staff,DC=contoso,DC=com",
        bind_dn="",
        bind_password="",
        user_filter=AD_USER_FILTER,
        group_base="",
        group_type="active_directory",
        ca_file=None,
        start_tls=False,
        administrators_group="Device update administrators",
        helpdesk_group="Helpdesk",
        upn_attribute="userPrincipalName",
        account_attribute="sAMAccountName",
        sip_attribute="msRTCSIP-PrimaryUserAddress",
        netbios_domains={},
        cache_seconds=300,
        timeout=5,
        retry_after=60,
    )


def test_every_setting_is_read(tmp_path: Path) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_text("-----BEGIN CERTIFICATE-----\n")
    read = config(
        tmp_path,
        DEVICEUPDATE_LDAP_URL="ldap://dc1.contoso.com:389",
        DEVICEUPDATE_LDAP_BIND_DN="CN=svc,OU=Service,DC=contoso,DC=com",
        DEVICEUPDATE_LDAP_BIND_PASSWORD="s3cret",
        DEVICEUPDATE_LDAP_USER_FILTER="(objectClass=person)",
        DEVICEUPDATE_LDAP_GROUP_SEARCH_BASE="OU=Groups,DC=contoso,DC=com",
        DEVICEUPDATE_LDAP_GROUP_TYPE="nested_active_directory",
        DEVICEUPDATE_LDAP_CA_FILE="ca.pem",
        DEVICEUPDATE_LDAP_START_TLS="true",
        DEVICEUPDATE_LDAP_ADMINISTRATORS_GROUP="Phone Admins",
        DEVICEUPDATE_LDAP_HELPDESK_GROUP="Service Desk",
        DEVICEUPDATE_LDAP_UPN_ATTRIBUTE="mail",
        DEVICEUPDATE_LDAP_ACCOUNT_ATTRIBUTE="uid",
        DEVICEUPDATE_LDAP_SIP_ATTRIBUTE="sipAddress",
        DEVICEUPDATE_LDAP_NETBIOS_DOMAINS="contoso=contoso.com, FABRIKAM=Fabrikam.COM.",
        DEVICEUPDATE_LDAP_CACHE_SECONDS="0",
        DEVICEUPDATE_LDAP_TIMEOUT="3",
        DEVICEUPDATE_LDAP_RETRY_AFTER="120",
    )
    assert read == DirectoryConfig(
        url="ldap://dc1.contoso.com:389",
        user_base="OU=Staff,DC=contoso,DC=com",
        bind_dn="CN=svc,OU=Service,DC=contoso,DC=com",
        bind_password="s3cret",
        user_filter="(objectClass=person)",
        group_base="OU=Groups,DC=contoso,DC=com",
        group_type="nested_active_directory",
        ca_file=ca,
        start_tls=True,
        administrators_group="Phone Admins",
        helpdesk_group="Service Desk",
        upn_attribute="mail",
        account_attribute="uid",
        sip_attribute="sipAddress",
        netbios_domains={"CONTOSO": "contoso.com", "FABRIKAM": "fabrikam.com"},
        cache_seconds=0,
        timeout=3,
        retry_after=120,
    )
    assert "s3cret" not in repr(read)


@pytest.mark.parametrize(
    ("values", "message"),
    [
        (
            {"DEVICEUPDATE_LDAP_URL": "https://dc1.contoso.com"},
            "DEVICEUPDATE_LDAP_URL: expected ldap://host[:port] or ldaps://host[:port] "
            "(several separated by spaces), got 'https://dc1.contoso.com'",
        ),
        (
            {"DEVICEUPDATE_LDAP_USER_SEARCH_BASE": ""},
            "DEVICEUPDATE_LDAP_USER_SEARCH_BASE: is required with DEVICEUPDATE_LDAP_URL",
        ),
        (
            {"DEVICEUPDATE_LDAP_BIND_DN": "CN=svc,DC=contoso,DC=com"},
            "DEVICEUPDATE_LDAP_BIND_PASSWORD: is required with DEVICEUPDATE_LDAP_BIND_DN",
        ),
        (
            {"DEVICEUPDATE_LDAP_USER_FILTER": "(objectClass=user))(cn=*"},
            "DEVICEUPDATE_LDAP_USER_FILTER: expected one parenthesised LDAP filter, got "
            "'(objectClass=user))(cn=*'",
        ),
        (
            {"DEVICEUPDATE_LDAP_CA_FILE": "/nonexistent/ca.pem"},
            "DEVICEUPDATE_LDAP_CA_FILE: no such file: /nonexistent/ca.pem",
        ),
        (
            {"DEVICEUPDATE_LDAP_START_TLS": "true"},
            "DEVICEUPDATE_LDAP_START_TLS: is for ldap:// URLs; ldaps:// is TLS already",
        ),
        (
            {"DEVICEUPDATE_LDAP_GROUP_TYPE": "posix"},
            "DEVICEUPDATE_LDAP_GROUP_TYPE: expected one of active_directory, "
            "nested_active_directory, group_of_names, nested_group_of_names, "
            "group_of_unique_names, got 'posix'",
        ),
        (
            {"DEVICEUPDATE_LDAP_SIP_ATTRIBUTE": "msRTCSIP-PrimaryUserAddress)(cn=*"},
            "DEVICEUPDATE_LDAP_SIP_ATTRIBUTE: not an attribute name: "
            "'msRTCSIP-PrimaryUserAddress)(cn=*'",
        ),
        (
            {"DEVICEUPDATE_LDAP_NETBIOS_DOMAINS": "CONTOSO"},
            "DEVICEUPDATE_LDAP_NETBIOS_DOMAINS: expected NETBIOS=dns.name entries separated "
            "by commas, got 'CONTOSO'",
        ),
        (
            {"DEVICEUPDATE_LDAP_CACHE_SECONDS": "86400"},
            "DEVICEUPDATE_LDAP_CACHE_SECONDS: expected 0 to 3600, got 86400",
        ),
    ],
    ids=[
        "scheme", "no base", "bind without password", "filter", "ca file", "starttls on ldaps",
        "group type", "attribute", "netbios", "cache",
    ],
)  # fmt: skip
def test_a_bad_setting_stops_start_up_with_one_line(
    tmp_path: Path, values: dict[str, str], message: str
) -> None:
    with pytest.raises(ConfigError) as raised:
        config(tmp_path, **values)
    assert str(raised.value) == f"configuration error: {message}"


AD = DirectoryConfig(
    url="ldap://dc1.contoso.com",
    user_base="OU=Staff,DC=contoso,DC=com",
    netbios_domains={"CONTOSO": "contoso.com", "FABRIKAM": "fabrikam.com"},
)


@pytest.mark.parametrize(
    ("login", "expected"),
    [
        ("alice@contoso.com", SignInName("userPrincipalName", "alice@contoso.com", AD.user_base)),
        ("CONTOSO\\alice", SignInName("sAMAccountName", "alice", AD.user_base)),
        ("contoso\\alice", SignInName("sAMAccountName", "alice", AD.user_base)),
        # Another domain of the forest: its own partition, not the configured base.
        ("FABRIKAM\\bob", SignInName("sAMAccountName", "bob", "DC=fabrikam,DC=com")),
        (
            "sip:alice@contoso.com",
            SignInName("msRTCSIP-PrimaryUserAddress", "sip:alice@contoso.com", AD.user_base),
        ),
        (
            "SIP:Alice@Contoso.com",
            SignInName("msRTCSIP-PrimaryUserAddress", "sip:Alice@Contoso.com", AD.user_base),
        ),
        ("alice", SignInName("sAMAccountName", "alice", AD.user_base)),
        (" alice ", SignInName("sAMAccountName", "alice", AD.user_base)),
        ("NORTHWIND\\alice", None),  # a domain not in the map
        ("CONTOSO\\", None),
        ("CONTOSO\\a\\b", None),
        ("sip:alice", None),
        ("sip:", None),
        ("", None),
        ("alice\x00", None),
        ("a" * 321, None),
    ],
)
def test_sign_in_names(login: str, expected: SignInName | None) -> None:
    assert sign_in_name(login, AD) == expected


def test_every_directory_setting_is_documented_in_env_example() -> None:
    import re

    project = Path(__file__).resolve().parents[2]
    source = (project / "deviceupdate" / "directory.py").read_text()
    read = set(re.findall(r'"(DEVICEUPDATE_LDAP_[A-Z_]+)"', source)) | {
        f"DEVICEUPDATE_LDAP_{name.upper()}"
        for name in ("upn_attribute", "account_attribute", "sip_attribute")
    }
    documented = set(
        re.findall(r"^(DEVICEUPDATE_LDAP_[A-Z_]+)=", (project / ".env.example").read_text(), re.M)
    )
    assert read == documented
    assert len(read) == 18
