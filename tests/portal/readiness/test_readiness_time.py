"""Check 3, time, against Debian's chronyd (an NTP server on loopback) and the SRV
record dnsmasq publishes."""

from __future__ import annotations

import re
import time

from pytest_django.fixtures import Settings

from portal.models import Pool
from portal.readiness.base import CheckResult, Status
from portal.readiness.clock import time_checks
from tests.conftest import free_port
from tests.portal.readiness.conftest import Network

IN_TIME = re.compile(r"^offset [+-]\d+ ms \(limit 1000 ms\)$")


def test_the_srv_record_names_a_server_this_clock_agrees_with(pool: Pool, network: Network) -> None:
    srv, clock = time_checks(domains=["example.org"], timeout=5)
    assert srv == CheckResult(
        "time", "_ntp._udp.example.org", Status.PASS, f"names ntp1.example.org:{network.ntp_port}"
    )
    assert (clock.status, clock.subject, clock.fix) == (
        Status.PASS,
        f"clock vs ntp1.example.org:{network.ntp_port}",
        "",
    )
    assert IN_TIME.match(clock.detail), clock.detail


def test_a_clock_two_minutes_off_fails(pool: Pool, network: Network) -> None:
    _srv, clock = time_checks(domains=["example.org"], timeout=5, clock=lambda: time.time() + 120)
    assert (clock.status, clock.fix) == (
        Status.FAIL,
        "synchronise this server's clock with the NTP server (chrony)",
    )
    assert re.match(r"^this clock is \+1(19\d{3}|20\d{3}) ms off \(limit 1000 ms\)$", clock.detail)


def test_configured_servers_are_asked_instead_of_the_srv_targets(
    pool: Pool, network: Network, settings: Settings
) -> None:
    settings.READINESS_NTP_SERVERS = [f"127.0.0.1:{network.ntp_port}"]
    results = time_checks(domains=[], timeout=5)
    assert [(r.status, r.subject) for r in results] == [
        (Status.PASS, f"clock vs 127.0.0.1:{network.ntp_port}")
    ]


def test_a_missing_srv_record_and_a_silent_server_fail(pool: Pool, settings: Settings) -> None:
    closed = free_port()
    settings.READINESS_NTP_SERVERS = [f"silent.example.org:{closed}"]
    srv, clock = time_checks(domains=["bare.org"], timeout=3)
    assert srv == CheckResult(
        "time", "_ntp._udp.bare.org", Status.FAIL, "no SRV record _ntp._udp.bare.org",
        "add an SRV record _ntp._udp.bare.org naming the NTP servers phones should use",
    )  # fmt: skip
    assert (clock.status, clock.subject, clock.fix) == (
        Status.FAIL,
        f"clock vs silent.example.org:{closed}",
        "check that the NTP server runs and UDP to it is allowed",
    )
    assert clock.detail.startswith(f"no NTP answer from silent.example.org:{closed}")


def test_with_no_server_to_ask_the_check_says_so(pool: Pool) -> None:
    assert time_checks(domains=["bare.org"], timeout=3)[1:] == [
        CheckResult(
            "time", "clock", Status.WARN, "no NTP server to compare this clock with",
            "set DEVICEUPDATE_NTP_SERVERS or publish _ntp._udp.<domain>",
        )
    ]  # fmt: skip
