"""Check 3, time: phones set their clocks from the NTP servers the ``_ntp._udp.<domain>``
SRV record names, and a TLS certificate or a sign-in fails when clocks disagree; this
server's clock is compared with those servers by a small SNTP query (RFC 4330)."""

from __future__ import annotations

import socket
import struct
import time
from collections.abc import Callable

import dns.exception
import dns.resolver
from django.conf import settings

from portal.readiness.base import CheckResult, Status
from portal.readiness.network import (
    TIMEOUT_FIX,
    CheckError,
    CheckTimeout,
    Deadline,
    addresses_of,
    resolver,
)

CHECK = "time"
NTP_PORT = 123
# Seconds from 1900-01-01 (NTP's epoch) to 1970-01-01 (Unix's).
NTP_EPOCH_OFFSET = 2208988800


def _ntp_time(data: bytes) -> float:
    seconds, fraction = struct.unpack("!II", data)
    return seconds - NTP_EPOCH_OFFSET + fraction / 2**32


def sntp_offset(
    host: str, port: int, deadline: Deadline, *, clock: Callable[[], float] = time.time
) -> float:
    """The server's clock minus this one's, in seconds (one SNTP exchange)."""
    addresses = addresses_of(host, deadline)
    if not addresses:
        raise CheckError(f"{host} does not resolve")
    family = socket.AF_INET6 if ":" in addresses[0] else socket.AF_INET
    with socket.socket(family, socket.SOCK_DGRAM) as sock:
        sock.settimeout(deadline.left())
        sent = clock()
        seconds = int(sent) + NTP_EPOCH_OFFSET
        fraction = int((sent % 1) * 2**32)
        # LI 0, version 4, mode 3 (client); our transmit time comes back as "originate".
        query = struct.pack("!B39xII", 0x23, seconds, fraction)
        try:
            sock.sendto(query, (addresses[0], port))
            while True:
                data, _ = sock.recvfrom(512)
                if len(data) >= 48 and data[24:32] == query[40:48]:
                    break
        except TimeoutError:
            raise CheckError(f"no NTP answer from {host}:{port}") from None
        except OSError as error:
            raise CheckError(f"no NTP answer from {host}:{port}: {error}") from None
        received = clock()
    mode, stratum = data[0] & 0x7, data[1]
    if mode != 4 or stratum == 0:
        raise CheckError(f"{host}:{port} refused the query (mode {mode}, stratum {stratum})")
    server_received, server_sent = _ntp_time(data[32:40]), _ntp_time(data[40:48])
    return ((server_received - sent) + (server_sent - received)) / 2


def ntp_srv_targets(domain: str, deadline: Deadline) -> list[tuple[str, int]]:
    """The (host, port) pairs ``_ntp._udp.<domain>`` names ([] when there is none)."""
    try:
        answer = resolver(deadline).resolve(f"_ntp._udp.{domain}", "SRV")
    except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
        return []
    except (dns.exception.Timeout, dns.resolver.NoNameservers) as error:
        raise CheckError(f"no DNS answer for _ntp._udp.{domain}: {error}") from None
    return [(record.target.to_text().rstrip("."), int(record.port)) for record in answer]


def parse_server(text: str) -> tuple[str, int]:
    """``host``, ``host:port``, ``[v6]:port``."""
    if text.startswith("["):
        host, _, port = text[1:].partition("]:")
        return host.rstrip("]"), int(port) if port else NTP_PORT
    if text.count(":") == 1:
        host, port = text.split(":")
        return host, int(port)
    return text, NTP_PORT


def time_checks(
    *, domains: list[str], timeout: float, clock: Callable[[], float] = time.time
) -> list[CheckResult]:
    """The SRV record for each domain, and this clock against each NTP server."""
    results: list[CheckResult] = []
    deadline = Deadline(timeout)
    targets: list[tuple[str, int]] = []
    for domain in domains:
        name = f"_ntp._udp.{domain}"
        try:
            found = ntp_srv_targets(domain, deadline)
        except CheckError as error:
            results.append(
                CheckResult(CHECK, name, Status.WARN, str(error), "check the DNS server")
            )
            continue
        if not found:
            results.append(
                CheckResult(
                    CHECK, name, Status.FAIL, f"no SRV record {name}",
                    f"add an SRV record {name} naming the NTP servers phones should use",
                )
            )  # fmt: skip
            continue
        targets += found
        shown = ", ".join(f"{host}:{port}" for host, port in found)
        results.append(CheckResult(CHECK, name, Status.PASS, f"names {shown}"))
    try:
        servers = [parse_server(text) for text in settings.READINESS_NTP_SERVERS]
    except ValueError:
        servers = []
        results.append(
            CheckResult(
                CHECK, "NTP servers", Status.WARN,
                f"cannot read DEVICEUPDATE_NTP_SERVERS={','.join(settings.READINESS_NTP_SERVERS)}",
                "list host or host:port, separated by commas",
            )
        )  # fmt: skip
    servers = list(dict.fromkeys(servers or targets))
    if not servers:
        results.append(
            CheckResult(
                CHECK, "clock", Status.WARN, "no NTP server to compare this clock with",
                "set DEVICEUPDATE_NTP_SERVERS or publish _ntp._udp.<domain>",
            )
        )  # fmt: skip
        return results
    limit = settings.READINESS_NTP_MAX_OFFSET_MS
    for host, port in servers:
        subject = f"clock vs {host}:{port}"
        try:
            offset_ms = sntp_offset(host, port, deadline, clock=clock) * 1000
        except CheckTimeout as error:
            results.append(CheckResult(CHECK, subject, Status.WARN, str(error), TIMEOUT_FIX))
            continue
        except CheckError as error:
            results.append(
                CheckResult(
                    CHECK, subject, Status.FAIL, str(error),
                    "check that the NTP server runs and UDP to it is allowed",
                )
            )  # fmt: skip
            continue
        if abs(offset_ms) > limit:
            results.append(
                CheckResult(
                    CHECK, subject, Status.FAIL,
                    f"this clock is {-offset_ms:+.0f} ms off (limit {limit} ms)",
                    "synchronise this server's clock with the NTP server (chrony)",
                )
            )  # fmt: skip
            continue
        results.append(
            CheckResult(
                CHECK, subject, Status.PASS, f"offset {-offset_ms:+.0f} ms (limit {limit} ms)"
            )
        )
    return results
