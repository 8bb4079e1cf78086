"""The loader: write this server's spool (the phone records its web processes appended)
to the database, in large batches, until stopped (SIGTERM/SIGINT finish the batch)."""

from __future__ import annotations

import signal
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from phones.services.spool_loader import spool_load_once, spool_loader_run


class Command(BaseCommand):
    help = (
        "Write this server's phone records (the web processes' spool files) to the "
        "database: at least every LogFlushInterval, sooner when MaxLogCacheLimit bytes or "
        "a stored log wait. One per server, like the worker."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--once", action="store_true", help="write one batch, print how many records, stop"
        )
        parser.add_argument(
            "--interval",
            type=float,
            default=None,
            help="seconds between batches (default: LogFlushInterval)",
        )
        parser.add_argument(
            "--poll", type=float, default=1.0, help="seconds between two looks at the spool"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if options["once"]:
            self.stdout.write(f"{spool_load_once()} records written")
            return
        interval, poll = options["interval"], options["poll"]
        if (interval is not None and interval <= 0) or poll <= 0:
            self.stderr.write("--interval and --poll must be positive")
            raise SystemExit(2)
        stop: list[bool] = []

        def finish(signum: int, frame: Any) -> None:
            stop.append(True)

        signal.signal(signal.SIGTERM, finish)
        signal.signal(signal.SIGINT, finish)
        spool_loader_run(stop=stop, interval=interval, poll=poll)
