"""`clear_device_update_logs --days-back N`: delete device and audit logs older than N days."""

from __future__ import annotations

import datetime as dt
import getpass
import json
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from phones.logs import server_logs_clear
from phones.tasks import server_logs_clear_task
from portal.models import Server
from portal.services.audit import Actor


class Command(BaseCommand):
    help = (
        "Delete device logs, request-audit rows and daily audit files older than N days "
        "(1 to 30): here at once, and on every other server through its own queue."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--days-back", type=int, required=True, metavar="N")
        parser.add_argument("--json", action="store_true", help="machine-readable output")

    def handle(self, *args: Any, **options: Any) -> None:
        days = options["days_back"]
        if not 1 <= days <= 30:
            raise CommandError(f"--days-back must be 1 to 30, not {days}")
        result = server_logs_clear(
            older_than=timezone.now() - dt.timedelta(days=days),
            actor=Actor.system(f"manage.py ({getpass.getuser()})"),
        )
        others = list(
            Server.objects.exclude(fqdn=settings.SERVER_FQDN).values_list("fqdn", flat=True)
        )
        for fqdn in others:
            server_logs_clear_task.delay(server_fqdn=fqdn, days_back=days)
        if options["json"]:
            self.stdout.write(json.dumps({**vars(result), "queued_servers": others}))
            return
        self.stdout.write(
            f"{settings.SERVER_FQDN}: removed {result.device_logs} device logs "
            f"({result.device_log_bytes} bytes), {result.audit_rows} audit rows, "
            f"{result.audit_files} audit files ({result.audit_file_bytes} bytes); "
            f"queued for {len(others)} other server(s)"
        )
