"""``/`` leads somewhere, ``/api/v1/`` lists the endpoints, ``/api/docs/`` is Swagger UI
from the project's own static files."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.test import Client
from rest_framework.authtoken.models import Token

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


def test_a_signed_out_browser_is_sent_to_sign_in_and_back_to_the_api_docs(
    client: Client, administrator: User
) -> None:
    response = client.get("/api/docs/", HTTP_ACCEPT="text/html")
    assert (response.status_code, response["Location"]) == (302, "/admin/login/?next=/api/docs/")

    signed_in = client.post(
        "/admin/login/",
        {"username": "ada", "password": "correct horse battery", "next": "/api/docs/"},
    )
    assert (signed_in.status_code, signed_in["Location"]) == (302, "/api/docs/")
    assert client.get("/api/docs/").status_code == 200


def test_the_helpdesk_reads_the_api_docs(client: Client, helpdesk: User) -> None:
    client.force_login(helpdesk)
    assert client.get("/api/docs/").status_code == 200


def test_a_signed_in_user_without_a_role_is_refused_the_api_docs(client: Client) -> None:
    nobody = User.objects.create_user("nobody", password="correct horse battery", is_staff=True)
    client.force_login(nobody)
    response = client.get("/api/docs/", HTTP_ACCEPT="text/html")
    assert response.status_code == 403
    assert not response.has_header("Location")


def test_a_client_with_a_bad_token_is_refused_the_api_docs_not_redirected(
    client: Client, administrator: User
) -> None:
    Token.objects.create(user=administrator)
    response = client.get("/api/docs/", HTTP_AUTHORIZATION="Token not-the-key")
    assert response.status_code == 403
    assert not response.has_header("Location")


@pytest.mark.parametrize("path", ["/api/v1/rules/", "/api/v1/", "/api/schema/"])
def test_api_clients_signed_out_keep_their_403(client: Client, path: str) -> None:
    response = client.get(path, HTTP_ACCEPT="application/json")
    assert response.status_code == 403
    assert not response.has_header("Location")
    assert response.json() == {"detail": "Authentication credentials were not provided."}
