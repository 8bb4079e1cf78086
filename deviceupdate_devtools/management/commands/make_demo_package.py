"""Write the signed demo packages (and trust their demo CA) so a first run has something
to import: the version "See it work" approves and the one "A staged rollout" rolls out."""

from __future__ import annotations

import getpass
import json
from typing import Any

from django.conf import settings
from django.core.management.base import CommandError, CommandParser

from deviceupdate_devtools.demo import DEMO_VERSIONS, demo_package_make
from portal.identifiers import normalise_version
from portal.management.base import ProjectCommand
from portal.services.audit import Actor


class Command(ProjectCommand):
    help = (
        "Write $DEVICEUPDATE_DATA_DIR/demo/UCUpdates-<version>.cab for each demo version "
        f"({', '.join(DEMO_VERSIONS)}, or the one --firmware-version names): three demo "
        "phone models, signed by a demo CA that this command adds to the trusted publishers."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--firmware-version", help="build only this version (default: every demo version)"
        )
        parser.add_argument("--json", action="store_true", help="machine-readable output")

    def handle(self, *args: Any, **options: Any) -> None:
        wanted = options["firmware_version"]
        try:
            versions = [normalise_version(wanted)] if wanted is not None else list(DEMO_VERSIONS)
        except ValueError as error:
            raise CommandError(str(error)) from None
        actor = Actor.system(f"manage.py ({getpass.getuser()})")
        demos = [
            demo_package_make(directory=settings.DATA_DIR / "demo", version=version, actor=actor)
            for version in versions
        ]
        if options["json"]:
            self.stdout.write(
                json.dumps(
                    [
                        {
                            "path": str(demo.path),
                            "version": demo.version,
                            "trusted": demo.trusted_now,
                        }
                        for demo in demos
                    ]
                )
            )
            return
        for demo in demos:
            trusted = "; its demo CA is now a trusted publisher" if demo.trusted_now else ""
            self.stdout.write(f"Demo package {demo.version}: {demo.path}{trusted}")
        self.stdout.write(f"  import: python manage.py import_device_update {demos[0].path} --wait")
