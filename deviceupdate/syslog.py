"""RFC 5424 syslog messages, sent over UDP (RFC 5426) or TCP (RFC 6587, octet counting).

The standard library's ``SysLogHandler`` writes RFC 3164 lines (no version, no
structured data, a local time without a year), which a SIEM parsing RFC 5424 misreads;
the framing is a few lines, written here. One message per datagram or per connection:
what goes out is the audit trail of people's changes, a low rate, and a fresh
connection needs no reconnect logic when the receiver restarts.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import socket

# RFC 5424 section 6.2.1: the facilities an audit stream sensibly uses.
FACILITIES = {
    "user": 1,
    "auth": 4,
    "authpriv": 10,
    **{f"local{n}": 16 + n for n in range(8)},
}
SEVERITY_NOTICE = 5
NILVALUE = "-"


def parse_host_port(value: str) -> tuple[str, int]:
    """``host:port`` (``[v6]:port`` for an IPv6 address) as a pair; ValueError if not."""
    host, sep, port = value.strip().rpartition(":")
    if not sep or not host:
        raise ValueError(f"{value!r} is not host:port")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
        ipaddress.IPv6Address(host)  # ValueError names the problem
    if not port.isascii() or not port.isdigit() or not 1 <= int(port) <= 65535:
        raise ValueError(f"{value!r}: the port must be a number from 1 to 65535")
    if not host.isascii() or any(c.isspace() or c in "/@" for c in host):
        raise ValueError(f"{value!r}: {host!r} is not a host name or address")
    return host, int(port)


def _header_field(value: str, limit: int) -> str:
    """A header field as RFC 5424 allows it: printable US-ASCII, no spaces, bounded."""
    text = "".join(c for c in value if 33 <= ord(c) <= 126)[:limit]
    return text or NILVALUE


def rfc5424_message(
    *,
    facility: int,
    severity: int,
    timestamp: dt.datetime,
    hostname: str,
    app_name: str,
    procid: str,
    msgid: str,
    message: str,
) -> bytes:
    """``<PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID - MSG`` (no structured data).

    ``message`` must be ASCII (the audit stream's JSON escapes everything else), so no
    byte-order mark is needed before it (MSG-ANY).
    """
    utc = timestamp.astimezone(dt.UTC)
    header = " ".join(
        [
            f"<{facility * 8 + severity}>1",
            utc.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            _header_field(hostname, 255),
            _header_field(app_name, 48),
            _header_field(procid, 128),
            _header_field(msgid, 32),
            NILVALUE,
        ]
    )
    return f"{header} {message}".encode("ascii")


def octet_counted(message: bytes) -> bytes:
    """RFC 6587 section 3.4.1 framing for TCP: ``MSG-LEN SP SYSLOG-MSG``."""
    return b"%d %s" % (len(message), message)


def syslog_send(message: bytes, *, address: tuple[str, int], protocol: str, timeout: float) -> None:
    """Send one message; OSError (the receiver unreachable, a timeout) if it fails."""
    if protocol == "tcp":
        with socket.create_connection(address, timeout=timeout) as connection:
            connection.sendall(octet_counted(message))
        return
    family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
    with socket.socket(family, socket.SOCK_DGRAM) as datagram:
        datagram.settimeout(timeout)
        datagram.sendto(message, address)
