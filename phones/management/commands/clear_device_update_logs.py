"""`clear_device_update_logs --days-back N`: delete device and audit logs older than N days."""

from __future__ import annotations

import json
from typing import Any

from django.conf import settings
from django.core.management.base import CommandError, CommandParser

from phones.services.log_clearing import MAX_DAYS_BACK, logs_clear_everywhere
from portal.management.base import ProjectCommand, command_actor


class Command(ProjectCommand):
    help = (
        "Delete device logs, request-audit rows and daily audit files older than N days "
        "(1 to 30): here at once, and on every other server through its own queue."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--days-back", type=int, required=True, metavar="N")
        parser.add_argument("--json", action="store_true", help="machine-readable output")

    def handle(self, *args: Any, **options: Any) -> None:
        days = options["days_back"]
        if not 1 <= days <= MAX_DAYS_BACK:
            raise CommandError(f"--days-back must be 1 to {MAX_DAYS_BACK}, not {days}")
        cleared = logs_clear_everywhere(days_back=days, actor=command_actor())
        result, others = cleared.here, cleared.queued_servers
        if options["json"]:
            self.stdout.write(json.dumps({**vars(result), "queued_servers": others}))
            return
        self.stdout.write(
            f"{settings.SERVER_FQDN}: removed {result.device_logs} device logs "
            f"({result.device_log_bytes} bytes), {result.audit_rows} audit rows, "
            f"{result.audit_files} audit files ({result.audit_file_bytes} bytes); "
            f"queued for {len(others)} other server(s)"
        )
