"""Fixtures of the readiness checks: real servers on loopback (dnsmasq as the DNS server
the checks ask, chronyd as an NTP server), the test PKI, and this server's pool named as
the DNS records say."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from pytest_django.fixtures import Settings

from portal.models import Pool, Server, Site
from tests.conftest import free_port
from tests.deploy.servers import start_chronyd, start_dnsmasq, stop
from tests.deploy.tls import Pki, make_pki


@dataclass(frozen=True)
class Network:
    dns_port: int
    ntp_port: int


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="session")
def network(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Network]:
    """chronyd, and dnsmasq with the records of domain example.org (everything in place),
    elsewhere.org (its update name points elsewhere) and bare.org (nothing published)."""
    ntp_port, dns_port = free_port(), free_port()
    chronyd = start_chronyd(tmp_path_factory.mktemp("chrony"), ntp_port)
    dnsmasq = start_dnsmasq(
        dns_port,
        [
            "--local=/example.org/", "--local=/elsewhere.org/", "--local=/bare.org/",
            "--host-record=ucupdates-r2.example.org,127.0.0.1",
            "--host-record=pool01.example.org,127.0.0.1",
            "--host-record=web.example.org,127.0.0.1",
            "--host-record=fe01.example.org,127.0.0.1",
            "--host-record=ntp1.example.org,127.0.0.1",
            f"--srv-host=_ntp._udp.example.org,ntp1.example.org,{ntp_port}",
            "--host-record=ucupdates-r2.elsewhere.org,192.0.2.10",
            "--host-record=silent.example.org,127.0.0.1",
        ],
    )  # fmt: skip
    yield Network(dns_port=dns_port, ntp_port=ntp_port)
    stop(dnsmasq)
    stop(chronyd)


@pytest.fixture
def pool(db: None, settings: Settings, network: Network, pki: Pki) -> Pool:
    """This server is fe01.example.org, alone in pool01.example.org (web FQDNs pool01 and
    web.example.org); the checks ask dnsmasq and trust the test root. (Built here, not
    taken from the migration's default topology, which a transactional test flushes.)"""
    site, _ = Site.objects.get_or_create(name="Readiness")
    pool, _ = Pool.objects.update_or_create(
        fqdn="pool01.example.org",
        defaults={
            "site": site,
            "internal_web_fqdn": "pool01.example.org",
            "external_web_fqdn": "web.example.org",
        },
    )
    server, _ = Server.objects.get_or_create(fqdn="fe01.example.org", defaults={"pool": pool})
    Server.objects.exclude(pk=server.pk).delete()
    Pool.objects.exclude(pk=pool.pk).delete()
    settings.SERVER_FQDN = "fe01.example.org"
    settings.READINESS_DNS_SERVERS = ["127.0.0.1"]
    settings.READINESS_DNS_PORT = network.dns_port
    settings.READINESS_TRUST_BUNDLE = str(pki.bundle)
    settings.READINESS_SIP_DOMAINS = ["example.org"]
    settings.READINESS_DHCP_DOMAINS = ["example.org"]
    settings.READINESS_LOAD_BALANCER_ADDRESSES = []
    settings.READINESS_NTP_SERVERS = []
    settings.READINESS_INTERNAL_HTTP_URL = None
    settings.READINESS_INTERNAL_HTTPS_URL = None
    settings.READINESS_EXTERNAL_HTTPS_URL = None
    return pool
