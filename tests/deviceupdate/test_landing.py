"""``/`` leads somewhere, ``/api/v1/`` lists the endpoints, ``/api/docs/`` is Swagger UI
from the project's own static files."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.test import Client

pytestmark = pytest.mark.django_db


def test_the_landing_page_links_the_control_panel_the_api_and_health(client: Client) -> None:
    response = client.get("/")
    assert response.status_code == 200
    body = response.content.decode()
    for href in ('href="/admin/"', 'href="/api/v1/"', 'href="/api/docs/"', 'href="/healthz"'):
        assert href in body
    assert "http://testserver/RequestHandler/ucdevice.upx" in body


def test_the_landing_page_refuses_a_post(client: Client) -> None:
    assert client.post("/").status_code == 405


def test_the_admins_view_site_link_goes_to_the_landing_page(
    client: Client, administrator: User
) -> None:
    client.force_login(administrator)
    page = client.get("/admin/").content.decode()
    assert '<a href="/">View site</a>' in page
    assert client.get("/").status_code == 200


def test_the_api_root_lists_every_endpoint(client: Client, administrator: User) -> None:
    client.force_login(administrator)
    response = client.get("/api/v1/", HTTP_ACCEPT="application/json")
    assert response.status_code == 200
    listed = response.json()
    assert listed["rules"] == "http://testserver/api/v1/rules/"
    assert listed["rollouts"] == "http://testserver/api/v1/rollouts/"
    assert listed["webhooks"] == "http://testserver/api/v1/webhooks/"
    assert len(listed) == 14


def test_the_api_root_is_browsable(client: Client, administrator: User) -> None:
    client.force_login(administrator)
    response = client.get("/api/v1/", HTTP_ACCEPT="text/html")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/html")
    assert "/api/v1/test-devices/" in response.content.decode()


def test_the_api_root_wants_a_signed_in_user(client: Client) -> None:
    response = client.get("/api/v1/", HTTP_ACCEPT="application/json")
    assert response.status_code == 403


def test_the_schema_viewer_is_served_from_the_projects_static_files(
    client: Client, administrator: User
) -> None:
    client.force_login(administrator)
    response = client.get("/api/docs/")
    assert response.status_code == 200
    page = response.content.decode()
    assert "/static/drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js" in page
    assert "/api/schema/" in page
    assert "cdn" not in page.lower()
