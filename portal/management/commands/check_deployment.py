"""Deployment readiness: DNS, certificates, time, a synthetic phone and the pool, each
PASS / WARN / FAIL with the fix in one line; exit status 1 when anything FAILs."""

from __future__ import annotations

import json
import re
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from portal.management.base import one_line
from portal.readiness.runner import readiness_run, readiness_summary

_DOMAIN = re.compile(r"^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z0-9-]{2,63}$")


class Command(BaseCommand):
    help = (
        "Check that this deployment is ready for phones: DNS, certificates, time, a "
        "synthetic phone and the pool. Exit status 1 when a check FAILs."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--domain", action="append", default=[], metavar="DOMAIN",
            help="a SIP or DHCP domain to check (repeatable; default: "
            "DEVICEUPDATE_SIP_DOMAINS and DEVICEUPDATE_DHCP_DOMAINS)",
        )  # fmt: skip
        parser.add_argument(
            "--timeout", type=float, default=settings.READINESS_TIMEOUT,
            help="seconds each check may take",
        )  # fmt: skip
        parser.add_argument("--json", action="store_true", help="print JSON on stdout")

    def handle(self, *args: Any, **options: Any) -> None:
        domains = [domain.lower().rstrip(".") for domain in options["domain"]]
        for domain in domains:
            if not _DOMAIN.match(domain):
                raise CommandError(f"--domain {domain!r} is not a DNS domain")
        if not 0 < options["timeout"] <= 300:
            raise CommandError("--timeout must be more than 0 and at most 300 seconds")
        results = readiness_run(domains=domains or None, timeout=options["timeout"])
        summary = readiness_summary(results)
        if options["json"]:
            self.stdout.write(
                json.dumps({"results": [r.as_dict() for r in results], "summary": summary})
            )
        else:
            for result in results:
                line = f"{result.status.value:<4}  {result.check:<12} "
                line += f"{result.subject}: {result.detail}"
                if result.fix:
                    line += f" -> {result.fix}"
                self.stdout.write(one_line(line))
            self.stdout.write(
                f"PASS {summary['PASS']}, WARN {summary['WARN']}, FAIL {summary['FAIL']}"
            )
        if summary["FAIL"]:
            raise SystemExit(1)
