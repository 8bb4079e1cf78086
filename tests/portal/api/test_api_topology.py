"""Topology through the API, read-only: sites, pools and servers."""

from __future__ import annotations

import pytest
from django.conf import settings
from rest_framework.test import APIClient

from portal.models import Pool, Server, Site

pytestmark = pytest.mark.django_db


def test_fresh_install_shows_one_site_pool_and_server(admin_api: APIClient) -> None:
    site, pool, server = Site.objects.get(), Pool.objects.get(), Server.objects.get()
    fqdn = settings.SERVER_FQDN

    sites = admin_api.get("/api/v1/sites/")
    pools = admin_api.get("/api/v1/pools/")
    servers = admin_api.get("/api/v1/servers/")

    assert (sites.status_code, pools.status_code, servers.status_code) == (200, 200, 200)
    assert sites.json()["results"] == [
        {"id": site.pk, "name": "Default", "description": "Created at install", "time_zone": "UTC"}
    ]
    assert pools.json()["results"] == [
        {
            "id": pool.pk,
            "identity": f"service:WebServer:{fqdn}",
            "site": "Default",
            "fqdn": fqdn,
            "internal_web_fqdn": fqdn,
            "external_web_fqdn": "",
        }
    ]
    assert servers.json()["results"] == [
        {"id": server.pk, "pool": fqdn, "fqdn": fqdn, "worker_seen_at": None,
         "offer_cap_per_minute": 0}
    ]  # fmt: skip


def test_pool_detail(admin_api: APIClient, pool01: Pool) -> None:
    response = admin_api.get(f"/api/v1/pools/{pool01.pk}/")

    assert response.status_code == 200
    assert response.json() == {
        "id": pool01.pk,
        "identity": "service:WebServer:pool01.example.org",
        "site": "Default",
        "fqdn": "pool01.example.org",
        "internal_web_fqdn": "pool01.example.org",
        "external_web_fqdn": "",
    }
