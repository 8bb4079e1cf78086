"""Write a signed demo package (and trust its demo CA) so a first run has something to import."""

from __future__ import annotations

import getpass
import json
from typing import Any

from django.conf import settings
from django.core.management.base import CommandError, CommandParser

from deviceupdate_devtools.demo import demo_package_make
from portal.identifiers import normalise_version
from portal.management.base import ProjectCommand
from portal.services.audit import Actor


class Command(ProjectCommand):
    help = (
        "Write $DEVICEUPDATE_DATA_DIR/demo/UCUpdates-<version>.cab: three demo phone models, "
        "signed by a demo CA that this command adds to the trusted publishers."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--firmware-version", default="4.0.7577.4387", help="version to build")
        parser.add_argument("--json", action="store_true", help="machine-readable output")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            version = normalise_version(options["firmware_version"])
        except ValueError as error:
            raise CommandError(str(error)) from None
        demo = demo_package_make(
            directory=settings.DATA_DIR / "demo",
            version=version,
            actor=Actor.system(f"manage.py ({getpass.getuser()})"),
        )
        if options["json"]:
            self.stdout.write(
                json.dumps(
                    {"path": str(demo.path), "version": demo.version, "trusted": demo.trusted_now}
                )
            )
            return
        trusted = "; its demo CA is now a trusted publisher" if demo.trusted_now else ""
        self.stdout.write(f"Demo package: {demo.path}{trusted}")
        self.stdout.write(f"  import it: python manage.py import_device_update {demo.path} --wait")
