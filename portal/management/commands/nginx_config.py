"""Print this server's nginx configuration (deploy/nginx/deviceupdate.conf.template)."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.base import CommandParser

from deviceupdate.nginx import render_nginx_config
from portal.management.base import ProjectCommand


class Command(ProjectCommand):
    help = "Print the nginx server block for this server, to include in nginx's http block."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--listen", default="80")
        parser.add_argument("--server-name", default=settings.SERVER_FQDN)
        parser.add_argument("--upstream", default="127.0.0.1:8000", help="gunicorn's address")

    def handle(self, *args: Any, **options: Any) -> None:
        # nginx opens the download log at start and creates no directory for it.
        settings.DOWNLOAD_ACCESS_LOG.parent.mkdir(parents=True, exist_ok=True)
        self.stdout.write(
            render_nginx_config(
                listen=options["listen"],
                server_name=options["server_name"],
                upstream=options["upstream"],
            )
        )
