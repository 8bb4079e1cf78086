"""Check 1, DNS: phones find the update service as ``ucupdates-r2.<domain>`` (the domain
DHCP gives them, and their SIP domain); each name must lead to this pool."""

from __future__ import annotations

from django.conf import settings

from portal.readiness.base import CheckResult, Status
from portal.readiness.network import CheckError, Deadline, addresses_of, this_pool

CHECK = "dns"


def pool_addresses(deadline: Deadline) -> set[str]:
    """Addresses of this pool: its servers', its own and its internal web FQDN's, and the
    configured load balancer's."""
    found = set(settings.READINESS_LOAD_BALANCER_ADDRESSES)
    pool = this_pool()
    if pool is None:
        return found
    names = {pool.fqdn, pool.internal_web_fqdn, *pool.servers.values_list("fqdn", flat=True)}
    for name in sorted(filter(None, names)):
        found.update(addresses_of(name, deadline))
    return found


def dns_checks(*, domains: list[str], timeout: float) -> list[CheckResult]:
    """``ucupdates-r2.<domain>`` resolves to an address of this pool, for each domain; a
    warning when the DHCP domain is not a SIP domain."""
    results: list[CheckResult] = []
    sip = {domain.lower() for domain in settings.READINESS_SIP_DOMAINS}
    for dhcp in settings.READINESS_DHCP_DOMAINS:
        if sip and dhcp.lower() not in sip:
            results.append(
                CheckResult(
                    CHECK, f"DHCP domain {dhcp}", Status.WARN,
                    f"the DHCP domain {dhcp} is not a SIP domain ({', '.join(sorted(sip))})",
                    f"phones look up ucupdates-r2.{dhcp}: publish that record and put "
                    f"UCUpdates-R2.{dhcp} in the certificates too",
                )
            )  # fmt: skip
    if not domains:
        results.append(
            CheckResult(
                CHECK, "domains", Status.WARN, "no SIP or DHCP domain configured",
                "set DEVICEUPDATE_SIP_DOMAINS and DEVICEUPDATE_DHCP_DOMAINS, or pass --domain",
            )
        )  # fmt: skip
        return results
    deadline = Deadline(timeout)
    try:
        pool = pool_addresses(deadline)
    except CheckError as error:
        results.append(
            CheckResult(
                CHECK, "this pool's addresses", Status.WARN, str(error),
                "check DEVICEUPDATE_DNS_SERVERS and that the DNS server answers",
            )
        )  # fmt: skip
        return results
    for domain in domains:
        name = f"ucupdates-r2.{domain}"
        try:
            found = addresses_of(name, deadline)
        except CheckError as error:
            results.append(
                CheckResult(
                    CHECK, name, Status.WARN, str(error),
                    "check DEVICEUPDATE_DNS_SERVERS and that the DNS server answers",
                )
            )  # fmt: skip
            continue
        if not found:
            results.append(
                CheckResult(
                    CHECK, name, Status.FAIL, f"{name} does not resolve",
                    f"add an A record {name} pointing at the pool (or its load balancer)",
                )
            )  # fmt: skip
            continue
        stray = sorted(set(found) - pool)
        if stray:
            known = ", ".join(sorted(pool)) or "none known"
            results.append(
                CheckResult(
                    CHECK, name, Status.FAIL,
                    f"{name} resolves to {', '.join(sorted(found))}, not this pool ({known})",
                    f"point {name} at this pool's servers or set "
                    "DEVICEUPDATE_LOAD_BALANCER_ADDRESSES to its load balancer",
                )
            )  # fmt: skip
            continue
        results.append(
            CheckResult(CHECK, name, Status.PASS, f"{name} resolves to {', '.join(sorted(found))}")
        )
    return results
