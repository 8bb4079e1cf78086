"""The readiness report: runs every registered check group with its timeout and turns
anything a check could not do into a WARN that says why (never a traceback).

A check group is a function returning a list of ``CheckResult``, called with
``timeout=`` and, when it asks for them, ``domains=``. Registering one more is one line
in ``CHECKS``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from django.conf import settings

from portal.readiness.base import CheckResult, Status
from portal.readiness.certificates import certificate_checks
from portal.readiness.clock import time_checks
from portal.readiness.directory import directory_checks
from portal.readiness.dns import dns_checks
from portal.readiness.network import CheckError
from portal.readiness.phone import phone_checks
from portal.readiness.pool import pool_checks

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Check:
    """One check group: its name in the report, and the function that runs it."""

    name: str
    run: Callable[..., list[CheckResult]]
    takes_domains: bool = False


CHECKS: tuple[Check, ...] = (
    Check("dns", dns_checks, takes_domains=True),
    Check("certificates", certificate_checks, takes_domains=True),
    Check("time", time_checks, takes_domains=True),
    Check("phone", phone_checks, takes_domains=True),
    Check("pool", pool_checks),
    Check("directory", directory_checks),
)


def configured_domains() -> list[str]:
    """The SIP domains, then the DHCP domains not among them."""
    domains = [*settings.READINESS_SIP_DOMAINS, *settings.READINESS_DHCP_DOMAINS]
    return list(dict.fromkeys(domain.lower().rstrip(".") for domain in domains))


def readiness_run(
    *,
    domains: list[str] | None = None,
    timeout: float | None = None,
    checks: Sequence[Check] | None = None,
) -> list[CheckResult]:
    """Every check's results (``CHECKS`` unless given), in order; reads only (the
    synthetic phone's requests are recorded by the service like any phone's)."""
    checks = CHECKS if checks is None else checks
    domains = [d.lower().rstrip(".") for d in domains] if domains else configured_domains()
    timeout = float(timeout or settings.READINESS_TIMEOUT)
    results: list[CheckResult] = []
    for check in checks:
        kwargs: dict[str, object] = {"timeout": timeout}
        if check.takes_domains:
            kwargs["domains"] = domains
        try:
            results += check.run(**kwargs)
        except CheckError as error:
            results.append(
                CheckResult(
                    check.name,
                    check.name,
                    Status.WARN,
                    f"could not run: {error}",
                    "fix what stopped the check and run it again",
                )  # fmt: skip
            )
        except Exception as error:  # a check that cannot run says why, never a traceback
            logger.warning("readiness check %s could not run: %r", check.name, error)
            results.append(
                CheckResult(
                    check.name, check.name, Status.WARN,
                    f"could not run: {type(error).__name__}: {error}"[:300],
                    "fix what stopped the check and run it again",
                )
            )  # fmt: skip
    return results


def readiness_summary(results: list[CheckResult]) -> dict[str, int]:
    """How many results of each status."""
    return {status.value: sum(r.status == status for r in results) for status in Status}
