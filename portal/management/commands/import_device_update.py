"""Import a vendor's update package: `import_device_update PATH.cab [--pool FQDN ...] [--wait]`."""

from __future__ import annotations

import getpass
import json
import time
from pathlib import Path
from typing import Any

from django.core.management.base import CommandError, CommandParser

from portal.choices import ImportStatus
from portal.management.base import ProjectCommand, readable_file, usage_error
from portal.models import ImportJob, Pool
from portal.services.audit import Actor
from portal.services.imports import package_import_start


class Command(ProjectCommand):
    help = (
        "Queue the import of a device update package (.cab) for the given pools (default: "
        "all). With --wait, wait for a worker to finish it and print the outcome; a refused "
        "package prints one 'error: ...' line and exits 1 (a usage error exits 2)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("path", type=Path, help="the package, e.g. UCUpdates.cab")
        parser.add_argument("--pool", action="append", default=[], metavar="FQDN")
        parser.add_argument("--wait", action="store_true", help="wait for the outcome")
        parser.add_argument("--timeout", type=float, default=900.0, help="seconds to wait")
        parser.add_argument("--json", action="store_true", help="machine-readable output")

    def handle(self, *args: Any, **options: Any) -> None:
        path = readable_file(options["path"])
        pools = []
        for fqdn in options["pool"]:
            pool = Pool.objects.filter(fqdn__iexact=fqdn.strip().rstrip(".")).first()
            if pool is None:
                raise usage_error(f"no pool {fqdn}")
            pools.append(pool)
        with path.open("rb") as source:  # a DomainError becomes the one-line refusal
            job = package_import_start(
                source=source,
                filename=path.name,
                pools=pools,
                actor=Actor.system(f"manage.py ({getpass.getuser()})"),
            )
        if options["wait"]:
            job = self._wait(job, timeout=options["timeout"])
        self._report(job, as_json=options["json"])
        if job.status == ImportStatus.FAILED:
            raise CommandError(f"import #{job.pk} refused: {job.error}")

    def _wait(self, job: ImportJob, *, timeout: float) -> ImportJob:
        deadline = time.monotonic() + timeout
        while job.status not in ImportStatus.finished():
            if time.monotonic() > deadline:
                raise CommandError(
                    f"import #{job.pk} is still {job.status} after {timeout:.0f} s; "
                    "is a Celery worker consuming the 'imports' queue?"
                )
            time.sleep(0.5)
            job.refresh_from_db()
        return job

    def _report(self, job: ImportJob, *, as_json: bool) -> None:
        if as_json:
            self.stdout.write(
                json.dumps(
                    {
                        "id": job.pk,
                        "status": job.status,
                        "package_sha256": job.package_sha256,
                        "signer": job.signer,
                        "updates": job.updates,
                        "warnings": job.warnings,
                        "error": job.error,
                    },
                    indent=2,
                )
            )
            return
        if job.status == ImportStatus.FAILED:
            return
        self.stdout.write(
            f"import #{job.pk} {job.status}: {job.package_name} sha256 {job.package_sha256}"
        )
        for update in job.updates:
            rules = ", ".join(rule["identity"] for rule in update["rules"])
            self.stdout.write(f"  {update['folder']} -> pending on {rules}")
        for warning in job.warnings:
            self.stdout.write(f"  warning: {warning}")
