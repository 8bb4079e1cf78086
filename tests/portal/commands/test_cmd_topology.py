"""`manage.py topology`: show sites, pools and servers, and add them."""

from __future__ import annotations

import getpass
import io
import json

import pytest
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import CommandError

from portal.models import AuditEntry, Pool, Server, Site

pytestmark = pytest.mark.django_db

ACTOR_NAME = f"manage.py ({getpass.getuser()})"
FQDN = settings.SERVER_FQDN


def run(*args: str) -> tuple[int, str, str]:
    """Exit status, stdout and stderr of one command."""
    out, err = io.StringIO(), io.StringIO()
    try:
        call_command(*args, stdout=out, stderr=err)
    except SystemExit as stop:
        return (stop.code if isinstance(stop.code, int) else 1), out.getvalue(), err.getvalue()
    return 0, out.getvalue(), err.getvalue()


def topology() -> list[tuple[str, ...]]:
    return [
        *((site.name, site.description) for site in Site.objects.all()),
        *(
            (pool.site.name, pool.fqdn, pool.internal_web_fqdn, pool.external_web_fqdn)
            for pool in Pool.objects.select_related("site")
        ),
        *((server.pool.fqdn, server.fqdn) for server in Server.objects.select_related("pool")),
    ]


def test_show_the_fresh_install() -> None:
    status, out, err = run("topology", "show")
    assert (status, err) == (0, "")
    assert out.splitlines() == [
        "site Default (Created at install)",
        f"  pool service:WebServer:{FQDN}  internal {FQDN}  external -",
        f"    server {FQDN}  queue server.{FQDN}  worker last seen never",
    ]
    _, out, _ = run("topology", "show", "--json")
    assert json.loads(out) == [
        {
            "name": "Default",
            "description": "Created at install",
            "pools": [
                {
                    "identity": f"service:WebServer:{FQDN}",
                    "fqdn": FQDN,
                    "site": "Default",
                    "internal_web_fqdn": FQDN,
                    "external_web_fqdn": "",
                    "servers": [{"fqdn": FQDN, "queue": f"server.{FQDN}", "worker_seen_at": None}],
                }
            ],
        }
    ]


def test_add_a_site_a_pool_and_a_server() -> None:
    status, out, err = run("topology", "add-site", "--name", "Branch", "--description", "Oslo")
    assert (status, out, err) == (0, "added site Branch\n", "")
    status, out, err = run(
        "topology", "add-pool", "--site", "branch", "--fqdn", "pool.branch.example.com",
        "--internal-web-fqdn", "web-int.branch.example.com",
        "--external-web-fqdn", "web.branch.example.com",
    )  # fmt: skip
    assert (status, out, err) == (
        0,
        "added pool service:WebServer:pool.branch.example.com to site Branch\n",
        "",
    )
    status, out, err = run(
        "topology", "add-server", "--pool", "POOL.branch.example.com.",
        "--fqdn", "fe1.branch.example.com", "--json",
    )  # fmt: skip
    assert (status, err) == (0, "")
    assert json.loads(out) == {
        "ok": True,
        "message": "added server fe1.branch.example.com to pool "
        "service:WebServer:pool.branch.example.com (queue server.fe1.branch.example.com)",
        "server": {
            "fqdn": "fe1.branch.example.com",
            "queue": "server.fe1.branch.example.com",
            "worker_seen_at": None,
        },
    }
    _, out, _ = run("topology", "show")
    assert out.splitlines()[:3] == [
        "site Branch (Oslo)",
        "  pool service:WebServer:pool.branch.example.com  internal web-int.branch.example.com  "
        "external web.branch.example.com",
        "    server fe1.branch.example.com  queue server.fe1.branch.example.com  "
        "worker last seen never",
    ]
    entries = AuditEntry.objects.order_by("id")
    assert [(entry.action, entry.actor_name) for entry in entries] == [
        ("portal.site.created", ACTOR_NAME),
        ("portal.pool.created", ACTOR_NAME),
        ("portal.server.created", ACTOR_NAME),
    ]


def test_add_site_and_pool_as_json() -> None:
    _, out, _ = run("topology", "add-site", "--name", "Branch", "--json")
    assert json.loads(out) == {
        "ok": True,
        "message": "added site Branch",
        "site": {"name": "Branch", "description": "", "pools": []},
    }
    _, out, _ = run(
        "topology", "add-pool", "--site", "Branch", "--fqdn", "pool.branch.example.com",
        "--internal-web-fqdn", "pool.branch.example.com", "--json",
    )  # fmt: skip
    assert json.loads(out) == {
        "ok": True,
        "message": "added pool service:WebServer:pool.branch.example.com to site Branch",
        "pool": {
            "identity": "service:WebServer:pool.branch.example.com",
            "fqdn": "pool.branch.example.com",
            "site": "Branch",
            "internal_web_fqdn": "pool.branch.example.com",
            "external_web_fqdn": "",
            "servers": [],
        },
    }


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["add-site", "--name", "Default"], "--name: Site with this Name already exists."),
        (["add-site", "--name", "default"], "--name: a site named 'Default' already exists"),
        (["add-site", "--name", "  "], "--name: This field cannot be blank."),
        (["add-pool", "--site", "Nowhere", "--fqdn", "p.example.com",
          "--internal-web-fqdn", "p.example.com"], "no site named 'Nowhere'"),
        (["add-pool", "--site", "Default", "--fqdn", "bad_name!",
          "--internal-web-fqdn", "p.example.com"], "--fqdn: bad_name! is not a valid host name."),
        (["add-pool", "--site", "Default", "--fqdn", FQDN, "--internal-web-fqdn", FQDN],
         "--fqdn: Pool with this Pool FQDN already exists."),
        (["add-pool", "--site", "Default", "--fqdn", "p.example.com",
          "--internal-web-fqdn", "P.example.com"],
         "--internal-web-fqdn: Write the host name in lower case without a trailing dot: "
         "p.example.com."),
        (["add-pool", "--site", "Default", "--fqdn", "p.example.com",
          "--internal-web-fqdn", "p.example.com", "--external-web-fqdn=-x.example.com"],
         "--external-web-fqdn: -x.example.com is not a valid host name."),
        (["add-server", "--pool", "other.example.com", "--fqdn", "fe.example.com"],
         "no pool 'other.example.com'"),
        (["add-server", "--pool", FQDN, "--fqdn", FQDN],
         "--fqdn: Server with this Server FQDN already exists."),
    ],
)  # fmt: skip
def test_refusals_change_nothing(args: list[str], message: str) -> None:
    before = topology()
    for extra in ([], ["--json"]):
        assert run("topology", *args, *extra) == (1, "", f"error: {message}\n")
    assert topology() == before
    assert AuditEntry.objects.count() == 0


def test_add_pool_needs_its_host_names() -> None:
    with pytest.raises(CommandError) as error:
        run("topology", "add-pool", "--site", "Default", "--fqdn", "p.example.com")
    assert str(error.value) == "Error: the following arguments are required: --internal-web-fqdn"
