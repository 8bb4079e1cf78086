"""Print the mode the service runs in and where to reach it (used by `make run`)."""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import CommandParser

from deviceupdate.runtime import describe_runtime
from portal.management.base import ProjectCommand


class Command(ProjectCommand):
    help = "Print the database, broker and file store in use, and the service's URLs."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--base-url", default="http://127.0.0.1:8000")
        parser.add_argument("--json", action="store_true", help="machine-readable output")

    def handle(self, *args: Any, **options: Any) -> None:
        info = describe_runtime()
        base = options["base_url"].rstrip("/")
        info["control panel"] = f"{base}/admin/"
        info["phone endpoint"] = f"{base}/RequestHandler/ucdevice.upx"
        info["health"] = f"{base}/healthz"
        # gunicorn alone gives a slow client one of its few threads for as long as it
        # sends: the deployment puts nginx in front, which reads each body first.
        info["exposure"] = (
            "for this machine only: not for phones or a network without nginx in front "
            "(manage.py nginx_config); slow clients hold up gunicorn on its own"
        )
        if options["json"]:
            self.stdout.write(json.dumps(info, indent=2))
            return
        width = max(len(key) for key in info)
        for key, value in info.items():
            self.stdout.write(f"  {key:<{width}}  {value}")
