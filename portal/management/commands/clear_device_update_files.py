"""`clear_device_update_files --pool FQDN`: remove the files of versions no rule of the
pool refers to any more, from every server of the pool (and centrally when unused)."""

from __future__ import annotations

import getpass
import json
from typing import Any

from django.core.management.base import CommandError, CommandParser

from portal.management.base import ProjectCommand
from portal.models import Pool
from portal.services.audit import Actor
from portal.services.cleanup import unused_files_clear_queue


class Command(ProjectCommand):
    help = (
        "Remove, from every server of the pool (each through its own worker) and then from "
        "the central store, the files of versions no rule refers to any more."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--pool", required=True, metavar="FQDN")
        parser.add_argument("--json", action="store_true", help="machine-readable output")

    def handle(self, *args: Any, **options: Any) -> None:
        pool = Pool.objects.filter(fqdn__iexact=options["pool"].strip().rstrip(".")).first()
        if pool is None:
            raise CommandError(f"no pool {options['pool']}")
        folders = unused_files_clear_queue(
            pool=pool, actor=Actor.system(f"manage.py ({getpass.getuser()})")
        )
        if options["json"]:
            self.stdout.write(json.dumps({"pool": pool.fqdn, "versions": folders}))
            return
        self.stdout.write(
            f"{pool.fqdn}: removal of {len(folders)} unused version(s) queued to its servers"
        )
        for folder in folders:
            self.stdout.write(f"  {folder}")
