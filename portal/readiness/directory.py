"""Readiness check 6, the directory: the service account binds, the user search base
exists, and each role's group is there. Not configured: one WARN (local accounts only).

Everything runs within ``timeout``: libldap's own timeouts are set to the time left,
and the whole check runs in a thread that is given up on at the deadline, so a server
that accepts a connection and never answers still costs only the timeout.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import ssl
import threading
import time
from urllib.parse import urlsplit

import ldap
import ldap.filter
from django.conf import settings

from deviceupdate.directory import DirectoryConfig
from portal.directory.connection import connect, describe_error, group_filter
from portal.readiness.base import CheckResult, Status
from portal.roles import ADMINISTRATORS, HELPDESK

CHECK = "directory"
logger = logging.getLogger(__name__)

FIX_REACH = (
    "check DEVICEUPDATE_LDAP_URL (host and port), that the directory server runs, and "
    "the firewalls between this server and it"
)
FIX_TLS = (
    "set DEVICEUPDATE_LDAP_CA_FILE to the CA bundle that issued the directory's "
    "certificate, and name the server in DEVICEUPDATE_LDAP_URL as its certificate does"
)
FIX_BIND = (
    "check DEVICEUPDATE_LDAP_BIND_DN and DEVICEUPDATE_LDAP_BIND_PASSWORD (and that the "
    "service account is neither disabled, locked nor expired)"
)


def directory_checks(*, timeout: float) -> list[CheckResult]:
    """The directory's results, within ``timeout`` seconds; never raises."""
    config: DirectoryConfig | None = settings.DIRECTORY
    if config is None:
        return [
            CheckResult(
                check=CHECK,
                subject="directory",
                status=Status.WARN,
                detail="not configured: only local accounts sign in (phones outside too)",
                fix="set DEVICEUPDATE_LDAP_URL and the other DEVICEUPDATE_LDAP_* settings "
                "(README, Directory accounts) to sign in with directory accounts",
            )
        ]
    results: list[CheckResult] = []
    deadline = time.monotonic() + timeout

    def run() -> None:
        try:
            results.extend(_checks(config, deadline, timeout))
        except Exception as error:  # a check reports, it never raises
            logger.exception("readiness: the directory check failed")
            results[:] = [
                CheckResult(
                    check=CHECK,
                    subject=config.url,
                    status=Status.WARN,
                    detail=f"could not be checked: {error!r}",
                    fix="see the service's log; check the DEVICEUPDATE_LDAP_* settings",
                )
            ]

    worker = threading.Thread(target=run, name="readiness-directory", daemon=True)
    worker.start()
    worker.join(max(0.0, deadline - time.monotonic()))
    if worker.is_alive() or not results:
        return [_fail(config.url, f"no answer from {config.url} within {timeout:g} s", FIX_REACH)]
    return list(results)


def _fail(subject: str, detail: str, fix: str) -> CheckResult:
    return CheckResult(check=CHECK, subject=subject, status=Status.FAIL, detail=detail, fix=fix)


def _left(deadline: float) -> float:
    return max(0.1, deadline - time.monotonic())


def _checks(config: DirectoryConfig, deadline: float, timeout: float) -> list[CheckResult]:
    url = config.url
    try:
        connection = connect(config, timeout=_left(deadline))
        connection.simple_bind_s(config.bind_dn, config.bind_password)
    except ldap.INVALID_CREDENTIALS as error:
        who = config.bind_dn or "anonymous"
        detail = f"{url} refused the service account {who}: {describe_error(error)}"
        return [_fail(url, detail, FIX_BIND)]
    except ldap.TIMEOUT:
        return [_fail(url, f"no answer from {url} within {timeout:g} s", FIX_REACH)]
    except (ldap.SERVER_DOWN, ldap.CONNECT_ERROR) as error:
        # libldap says "Can't contact LDAP server" for a failed TLS handshake too: when
        # TLS is in use, shake hands again here to tell an untrusted certificate apart.
        tls = _tls_problem(config, deadline)
        if tls is not None:
            return [_fail(url, tls, FIX_TLS)]
        return [_fail(url, f"cannot reach {url}: {describe_error(error)}", FIX_REACH)]
    except ldap.LDAPError as error:
        return [_fail(url, f"{url} refused the sign-in: {describe_error(error)}", FIX_BIND)]
    results = [
        CheckResult(
            check=CHECK,
            subject=url,
            status=Status.PASS if config.bind_dn else Status.WARN,
            detail=f"the service account {config.bind_dn} binds"
            if config.bind_dn
            else "reached; no service account, so searches are anonymous",
            fix=""
            if config.bind_dn
            else "set DEVICEUPDATE_LDAP_BIND_DN and DEVICEUPDATE_LDAP_BIND_PASSWORD: Active "
            "Directory refuses anonymous searches",
        )
    ]
    try:
        connection.search_ext_s(
            config.user_base, ldap.SCOPE_BASE, "(objectClass=*)", ["1.1"], timeout=_left(deadline)
        )
        results.append(
            CheckResult(
                check=CHECK,
                subject=config.user_base,
                status=Status.PASS,
                detail="the user search base exists",
            )
        )
    except ldap.NO_SUCH_OBJECT:
        results.append(
            _fail(
                config.user_base,
                "the user search base does not exist",
                "set DEVICEUPDATE_LDAP_USER_SEARCH_BASE to the DN above the user accounts",
            )
        )
    except ldap.LDAPError as error:
        detail = f"cannot read the user search base: {describe_error(error)}"
        results.append(_fail(config.user_base, detail, FIX_BIND))
    for role, group, variable in (
        (ADMINISTRATORS, config.administrators_group, "DEVICEUPDATE_LDAP_ADMINISTRATORS_GROUP"),
        (HELPDESK, config.helpdesk_group, "DEVICEUPDATE_LDAP_HELPDESK_GROUP"),
    ):
        subject = f"{role}: {group}"
        search = f"(&{group_filter(config)}(cn={ldap.filter.escape_filter_chars(group)}))"
        try:
            found = connection.search_ext_s(
                config.groups_base, ldap.SCOPE_SUBTREE, search, ["1.1"],
                timeout=_left(deadline), sizelimit=2,
            )  # fmt: skip
            found = [entry for entry in found if entry[0]]
        except ldap.SIZELIMIT_EXCEEDED:
            found = [("", {}), ("", {})]
        except ldap.LDAPError as error:
            detail = f"cannot search for the group: {describe_error(error)}"
            results.append(_fail(subject, detail, FIX_BIND))
            continue
        if len(found) == 1:
            results.append(
                CheckResult(
                    check=CHECK,
                    subject=subject,
                    status=Status.PASS,
                    detail=f"the group exists ({found[0][0]})",
                )  # fmt: skip
            )
        elif not found:
            results.append(
                _fail(
                    subject,
                    f"no group named {group!r} under {config.groups_base}",
                    f"create the group in the directory, or set {variable} to the name "
                    "(cn) of the group that holds this role",
                )
            )
        else:
            results.append(
                CheckResult(
                    check=CHECK,
                    subject=subject,
                    status=Status.WARN,
                    detail=f"several groups named {group!r} under {config.groups_base}: "
                    "the members of each get the role",
                    fix="rename the others, or narrow DEVICEUPDATE_LDAP_GROUP_SEARCH_BASE",
                )  # fmt: skip
            )
    with contextlib.suppress(ldap.LDAPError):
        connection.unbind_s()
    return results


# The StartTLS extended request (RFC 4511 4.14.1) as message 1, in BER.
_STARTTLS_OID = b"1.3.6.1.4.1.1466.20037"
_STARTTLS_REQUEST = (
    b"\x30" + bytes([5 + len(_STARTTLS_OID) + 2]) + b"\x02\x01\x01"
    + b"\x77" + bytes([len(_STARTTLS_OID) + 2]) + b"\x80" + bytes([len(_STARTTLS_OID)])
    + _STARTTLS_OID
)  # fmt: skip


def _tls_problem(config: DirectoryConfig, deadline: float) -> str | None:
    """Why TLS with the (first) server fails, when it is TLS that fails; None when the
    server cannot be reached at all, or TLS is not in use, or the handshake works."""
    parts = urlsplit(config.urls[0])
    ldaps = parts.scheme.lower() == "ldaps"
    if not (ldaps or config.start_tls) or parts.hostname is None:
        return None
    host, port = parts.hostname, parts.port or (636 if ldaps else 389)
    context = ssl.create_default_context(
        cafile=str(config.ca_file) if config.ca_file is not None else None
    )
    try:
        with socket.create_connection((host, port), timeout=_left(deadline)) as raw:
            if not ldaps:
                raw.sendall(_STARTTLS_REQUEST)
                answer = raw.recv(4096)
                # ExtendedResponse (0x78) whose resultCode (ENUMERATED 0x0a) is success.
                if b"\x78" not in answer[:8] or b"\x0a\x01\x00" not in answer[:16]:
                    return f"{config.urls[0]} refused StartTLS"
            with context.wrap_socket(raw, server_hostname=host):
                return None
    except ssl.SSLCertVerificationError as error:
        return f"the certificate of {config.urls[0]} is not trusted: {error.verify_message}"
    except ssl.SSLError as error:
        return f"TLS with {config.urls[0]} failed: {error.reason or error}"
    except OSError:
        return None
