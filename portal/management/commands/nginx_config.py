"""Print this server's nginx configuration (deploy/nginx/deviceupdate.conf.template)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import CommandError, CommandParser
from django.db import DatabaseError

from deviceupdate.nginx import TLS_PROFILES, NginxConfigError, TlsFiles, render_nginx_config
from portal.management.base import ProjectCommand
from portal.models import Server


def _default_names() -> tuple[str, str]:
    """This server's names, its pool's web FQDNs and the names phones look up
    (UCUpdates-R2, UCUpdates-R2.<domain>): the internal and the external server names."""
    names = [settings.SERVER_FQDN]
    external = ""
    try:
        server = Server.objects.select_related("pool").filter(fqdn=settings.SERVER_FQDN).first()
    except DatabaseError:  # no database yet: the names from the settings suffice
        server = None
    if server is not None:
        names += [server.pool.fqdn, server.pool.internal_web_fqdn]
        external = server.pool.external_web_fqdn
    domains = [*settings.READINESS_SIP_DOMAINS, *settings.READINESS_DHCP_DOMAINS]
    names += ["ucupdates-r2", *(f"ucupdates-r2.{domain}" for domain in domains)]
    unique = list(dict.fromkeys(name.lower() for name in names if name))
    return " ".join(unique), external


class Command(ProjectCommand):
    help = (
        "Print the nginx configuration of this server (internal HTTP and HTTPS, external "
        "HTTPS), to include in nginx's http block."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--listen", "--listen-http", dest="listen", default="80",
            help="internal plain-HTTP listener: port or address:port (default 80)",
        )  # fmt: skip
        parser.add_argument("--listen-https", default="443", help="internal HTTPS (default 443)")
        parser.add_argument(
            "--listen-external", default="4443",
            help="external HTTPS, on another address or port (default 4443)",
        )  # fmt: skip
        parser.add_argument("--server-name", default=None, help="internal names (default: all)")
        parser.add_argument("--external-server-name", default=None)
        parser.add_argument("--upstream", default="127.0.0.1:8000", help="gunicorn's address")
        parser.add_argument("--certificate", default=settings.TLS_CERTIFICATE)
        parser.add_argument("--certificate-key", default=settings.TLS_CERTIFICATE_KEY)
        parser.add_argument("--external-certificate", default=settings.TLS_EXTERNAL_CERTIFICATE)
        parser.add_argument(
            "--external-certificate-key", default=settings.TLS_EXTERNAL_CERTIFICATE_KEY
        )
        parser.add_argument(
            "--no-external", action="store_true", help="no external listener (no reverse proxy)"
        )
        parser.add_argument(
            "--external-proxy", action="append", default=[], metavar="ADDRESS",
            help="the reverse proxy's address or network, trusted for X-Forwarded-For",
        )  # fmt: skip
        parser.add_argument("--tls-profile", default=settings.TLS_PROFILE, choices=TLS_PROFILES)
        parser.add_argument("--tls-protocols", default=settings.TLS_PROTOCOLS)
        parser.add_argument("--tls-ciphers", default=settings.TLS_CIPHERS)

    def handle(self, *args: Any, **options: Any) -> None:
        internal_tls = _tls("--certificate", options["certificate"], options["certificate_key"])
        external_tls = None
        if not options["no_external"] and internal_tls is not None:
            external_tls = _tls(
                "--external-certificate",
                options["external_certificate"] or options["certificate"],
                options["external_certificate_key"] or options["certificate_key"],
            )
        names, external_name = _default_names()
        try:
            text = render_nginx_config(
                listen=options["listen"],
                server_name=options["server_name"] or names,
                upstream=options["upstream"],
                listen_https=options["listen_https"],
                internal_tls=internal_tls,
                listen_external=options["listen_external"],
                external_server_name=options["external_server_name"] or external_name,
                external_tls=external_tls,
                external_proxies=tuple(options["external_proxy"]),
                tls_profile=options["tls_profile"],
                tls_protocols=options["tls_protocols"],
                tls_ciphers=options["tls_ciphers"],
            )
        except NginxConfigError as error:
            raise CommandError(str(error)) from None
        # nginx opens the download log at start and creates no directory for it.
        settings.DOWNLOAD_ACCESS_LOG.parent.mkdir(parents=True, exist_ok=True)
        if internal_tls is None:
            self.stderr.write(
                "note: no certificate (--certificate or DEVICEUPDATE_TLS_CERTIFICATE): "
                "plain HTTP only, no HTTPS and no external listener"
            )
        self.stdout.write(text)


def _tls(option: str, certificate: str | None, key: str | None) -> TlsFiles | None:
    if not certificate and not key:
        return None
    if not certificate or not key:
        raise CommandError(f"{option} and its key go together: give both or neither")
    return TlsFiles(certificate=Path(certificate), key=Path(key))
