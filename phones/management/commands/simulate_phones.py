"""Play a fleet of phones against a running server (loopback only): checks, downloads,
verification and the versions they end up running, round by round."""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import CommandError, CommandParser

from deviceupdate_devtools.demo import DEMO_FACTORY_VERSION
from deviceupdate_devtools.simulator import (
    DEMO_MODELS,
    MAX_CONCURRENCY,
    MAX_PHONES,
    MAX_ROUNDS,
    FleetConfig,
    RoundSummary,
    SimulatorError,
    models_named,
    simulate,
)
from portal.management.base import ProjectCommand


class Command(ProjectCommand):
    help = (
        "Simulate N phones of the demo models against a server on this machine: each round "
        "every phone checks for updates, downloads and verifies what it is offered, and "
        "reports the new version in the next round. Exit status 1 if any error occurred."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--url", default="http://127.0.0.1:8000", help="server origin")
        parser.add_argument("--phones", type=int, default=10, help=f"1..{MAX_PHONES}")
        parser.add_argument(
            "--models",
            nargs="+",
            metavar="MODEL",
            help=f"models to mix (default all: {' '.join(m.model for m in DEMO_MODELS)})",
        )
        parser.add_argument(
            "--firmware-version",
            default=DEMO_FACTORY_VERSION,
            help="the version every phone runs at the start",
        )
        parser.add_argument(
            "--external-users",
            type=int,
            default=0,
            metavar="K",
            help="K of the phones check from outside, each signed in as its own user",
        )
        parser.add_argument("--password", default="", help="the external users' password")
        parser.add_argument(
            "--user-template",
            default="phone{n:04d}@example.org",
            help="user name of external phone n (also its SIP URI without 'sip:')",
        )
        parser.add_argument(
            "--concurrency", type=int, default=8, help=f"phones at once, 1..{MAX_CONCURRENCY}"
        )
        parser.add_argument("--rounds", type=int, default=2, help=f"1..{MAX_ROUNDS}")
        parser.add_argument(
            "--first-index",
            type=int,
            default=1,
            help="index of the first phone (its MAC, in its model's range)",
        )
        parser.add_argument(
            "--spread",
            type=float,
            default=0.0,
            metavar="SECONDS",
            help="start each round's checks evenly over this time (a boot storm)",
        )
        parser.add_argument(
            "--fail-percent",
            type=int,
            default=0,
            metavar="N",
            help="N %% of the phones (by index) download but never install: they keep "
            "reporting the old version",
        )
        parser.add_argument(
            "--round-timeout", type=float, default=600.0, help="seconds a round may take"
        )
        parser.add_argument("--json", action="store_true", help="one JSON summary at the end")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            config = FleetConfig(
                url=options["url"],
                phones=options["phones"],
                models=models_named(options["models"]) if options["models"] else DEMO_MODELS,
                installed_version=options["firmware_version"],
                external_users=options["external_users"],
                password=options["password"],
                user_template=options["user_template"],
                concurrency=options["concurrency"],
                first_index=options["first_index"],
                spread_seconds=options["spread"],
                round_timeout=options["round_timeout"],
                fail_percent=options["fail_percent"],
            )

            def show(summary: RoundSummary) -> None:
                if not options["json"]:
                    self.stdout.write(summary.describe())
                    for sample in summary.error_samples:
                        self.stdout.write(f"  error: {sample}")

            summaries = simulate(config, rounds=options["rounds"], on_round=show)
        except SimulatorError as error:
            raise CommandError(str(error)) from None
        errors = sum(summary.errors for summary in summaries)
        if options["json"]:
            self.stdout.write(
                json.dumps(
                    {
                        "url": config.url,
                        "phones": config.phones,
                        "external_phones": config.external_users,
                        "rounds": [summary.as_dict() for summary in summaries],
                        "errors": errors,
                    },
                    indent=2,
                )
            )
        if errors:
            raise CommandError(f"{errors} error(s) in {len(summaries)} round(s)")
