"""Topology: show the sites, pools and servers, and add new ones."""

from __future__ import annotations

from typing import Any

from deviceupdate.topology_names import normalise_fqdn
from portal.errors import DomainError
from portal.management.base import Actions, Handler, PortalCommand
from portal.models import Pool, Server, Site
from portal.services.audit import Actor
from portal.services.topology import topology_save


def server_json(server: Server) -> dict[str, Any]:
    return {"fqdn": server.fqdn, "queue": server.queue, "worker_seen_at": server.worker_seen_at}


def pool_json(pool: Pool) -> dict[str, Any]:
    return {
        "identity": pool.identity,
        "fqdn": pool.fqdn,
        "site": pool.site.name,
        "internal_web_fqdn": pool.internal_web_fqdn,
        "external_web_fqdn": pool.external_web_fqdn,
        "servers": [server_json(server) for server in pool.servers.all()],
    }


def site_json(site: Site) -> dict[str, Any]:
    return {
        "name": site.name,
        "description": site.description,
        "pools": [pool_json(pool) for pool in site.pools.all()],
    }


def _save(obj: Site | Pool | Server, actor: Actor) -> None:
    try:
        topology_save(obj=obj, actor=actor)
    except DomainError as error:
        # The model's message does not say which input it is about; the option does.
        option = f"--{error.field.replace('_', '-')}: " if error.field else ""
        raise DomainError(f"{option}{error.message}", field=error.field) from None


class Command(PortalCommand):
    help = "Sites hold pools (service:WebServer:<pool FQDN>); pools hold servers (front ends)."

    def add_actions(self, subparsers: Actions) -> None:
        self.action_parser(subparsers, "show", "show every site with its pools and servers")
        site = self.action_parser(subparsers, "add-site", "add a site")
        site.add_argument("--name", required=True)
        site.add_argument("--description", default="")
        pool = self.action_parser(subparsers, "add-pool", "add a pool to a site")
        pool.add_argument("--site", required=True, metavar="NAME", help="the site's name")
        pool.add_argument("--fqdn", required=True, help="the pool FQDN")
        pool.add_argument(
            "--internal-web-fqdn",
            required=True,
            metavar="FQDN",
            help="host name phones inside the firewall use (BaseURL, over http)",
        )
        pool.add_argument(
            "--external-web-fqdn",
            default="",
            metavar="FQDN",
            help="host name of the reverse proxy (ExternalBaseURL, over https); optional",
        )
        server = self.action_parser(subparsers, "add-server", "add a server (front end) to a pool")
        server.add_argument("--pool", required=True, metavar="FQDN", help="the pool FQDN")
        server.add_argument("--fqdn", required=True, help="the server FQDN")

    def handlers(self) -> dict[str, Handler]:
        return {
            "show": self.show,
            "add-site": self.add_site,
            "add-pool": self.add_pool,
            "add-server": self.add_server,
        }

    def show(self, options: dict[str, Any]) -> None:
        sites = list(Site.objects.prefetch_related("pools__site", "pools__servers"))
        if self.as_json:
            self.emit_json([site_json(site) for site in sites])
            return
        if not sites:
            self.emit("no sites")
        for site in sites:
            self.emit(f"site {site.name}" + (f" ({site.description})" if site.description else ""))
            for pool in site.pools.all():
                external = pool.external_web_fqdn or "-"
                self.emit(
                    f"  pool {pool.identity}  internal {pool.internal_web_fqdn}  "
                    f"external {external}"
                )
                for server in pool.servers.all():
                    seen = (
                        f"{server.worker_seen_at:%Y-%m-%d %H:%M:%S %Z}"
                        if server.worker_seen_at
                        else "never"
                    )
                    self.emit(
                        f"    server {server.fqdn}  queue {server.queue}  worker last seen {seen}"
                    )

    def _done(self, message: str, key: str, data: dict[str, Any]) -> None:
        if self.as_json:
            self.emit_json({"ok": True, "message": message, key: data})
        else:
            self.emit(message)

    def add_site(self, options: dict[str, Any]) -> None:
        site = Site(name=options["name"].strip(), description=options["description"].strip())
        _save(site, self.actor)
        self._done(f"added site {site.name}", "site", site_json(site))

    def add_pool(self, options: dict[str, Any]) -> None:
        site = Site.objects.filter(name__iexact=options["site"].strip()).first()
        if site is None:
            raise DomainError(f"no site named {options['site'].strip()!r}", field="site")
        pool = Pool(
            site=site,
            fqdn=options["fqdn"],
            internal_web_fqdn=options["internal_web_fqdn"],
            external_web_fqdn=options["external_web_fqdn"],
        )
        _save(pool, self.actor)
        self._done(f"added pool {pool.identity} to site {site.name}", "pool", pool_json(pool))

    def add_server(self, options: dict[str, Any]) -> None:
        pool = (
            Pool.objects.select_related("site").filter(fqdn=normalise_fqdn(options["pool"])).first()
        )
        if pool is None:
            raise DomainError(f"no pool {options['pool']!r}", field="pool")
        server = Server(pool=pool, fqdn=options["fqdn"])
        _save(server, self.actor)
        self._done(
            f"added server {server.fqdn} to pool {pool.identity} (queue {server.queue})",
            "server",
            server_json(server),
        )
