"""Check 1, DNS, against Debian's dnsmasq on loopback."""

from __future__ import annotations

from pytest_django.fixtures import Settings

from portal.models import Pool
from portal.readiness.base import CheckResult, Status
from portal.readiness.dns import dns_checks
from tests.portal.readiness.conftest import Network


def test_the_update_name_of_each_domain_leads_to_this_pool(pool: Pool) -> None:
    assert dns_checks(domains=["example.org"], timeout=5) == [
        CheckResult(
            "dns", "ucupdates-r2.example.org", Status.PASS,
            "ucupdates-r2.example.org resolves to 127.0.0.1",
        )
    ]  # fmt: skip


def test_a_name_pointing_elsewhere_or_missing_fails_with_its_fix(pool: Pool) -> None:
    assert dns_checks(domains=["elsewhere.org", "bare.org"], timeout=5) == [
        CheckResult(
            "dns", "ucupdates-r2.elsewhere.org", Status.FAIL,
            "ucupdates-r2.elsewhere.org resolves to 192.0.2.10, not this pool (127.0.0.1)",
            "point ucupdates-r2.elsewhere.org at this pool's servers or set "
            "DEVICEUPDATE_LOAD_BALANCER_ADDRESSES to its load balancer",
        ),
        CheckResult(
            "dns", "ucupdates-r2.bare.org", Status.FAIL,
            "ucupdates-r2.bare.org does not resolve",
            "add an A record ucupdates-r2.bare.org pointing at the pool (or its load balancer)",
        ),
    ]  # fmt: skip


def test_the_load_balancers_address_counts_as_the_pools(pool: Pool, settings: Settings) -> None:
    settings.READINESS_LOAD_BALANCER_ADDRESSES = ["192.0.2.10"]
    [result] = dns_checks(domains=["elsewhere.org"], timeout=5)
    assert (result.status, result.detail) == (
        Status.PASS,
        "ucupdates-r2.elsewhere.org resolves to 192.0.2.10",
    )


def test_a_dhcp_domain_that_is_not_a_sip_domain_is_a_warning(
    pool: Pool, settings: Settings
) -> None:
    settings.READINESS_DHCP_DOMAINS = ["corp.example.org"]
    results = dns_checks(domains=["example.org"], timeout=5)
    assert [(r.status, r.subject, r.fix) for r in results] == [
        (
            Status.WARN, "DHCP domain corp.example.org",
            "phones look up ucupdates-r2.corp.example.org: publish that record and put "
            "UCUpdates-R2.corp.example.org in the certificates too",
        ),
        (Status.PASS, "ucupdates-r2.example.org", ""),
    ]  # fmt: skip


def test_a_dns_server_that_does_not_answer_is_a_warning_saying_so(
    pool: Pool, settings: Settings, network: Network
) -> None:
    settings.READINESS_DNS_PORT = network.ntp_port  # chronyd: UDP, but no DNS answer
    assert dns_checks(domains=["example.org"], timeout=1) == [
        CheckResult(
            "dns", "this pool's addresses", Status.WARN,
            "the DNS server did not answer for fe01.example.org",
            "check DEVICEUPDATE_DNS_SERVERS and that the DNS server answers",
        )
    ]  # fmt: skip


def test_without_a_domain_the_check_says_what_to_configure(pool: Pool) -> None:
    assert dns_checks(domains=[], timeout=5) == [
        CheckResult(
            "dns", "domains", Status.WARN, "no SIP or DHCP domain configured",
            "set DEVICEUPDATE_SIP_DOMAINS and DEVICEUPDATE_DHCP_DOMAINS, or pass --domain",
        )
    ]  # fmt: skip
