"""The OpenAPI 3 schema: generated without a single warning, valid, served to signed-in
users only."""

from __future__ import annotations

import json

import pytest
from drf_spectacular.drainage import GENERATOR_STATS
from drf_spectacular.generators import SchemaGenerator
from drf_spectacular.validation import validate_schema
from rest_framework.test import APIClient

from deviceupdate.api_urls import schema_urlconf

pytestmark = pytest.mark.django_db

OPERATIONS = {
    "/api/v1/audit/": {"get"},
    "/api/v1/audit/{id}/": {"get"},
    "/api/v1/device-controls/": {"get", "post"},
    "/api/v1/device-controls/{id}/": {"get", "delete"},
    "/api/v1/device-groups/": {"get", "post"},
    "/api/v1/device-groups/{id}/": {"get", "put", "patch", "delete"},
    "/api/v1/devices/{identity}/outcomes/": {"get"},
    "/api/v1/imports/": {"get", "post"},
    "/api/v1/imports/{id}/": {"get"},
    "/api/v1/log-config/": {"get"},
    "/api/v1/log-config/effective/": {"get"},
    "/api/v1/log-config/{scope}/": {"get", "put", "patch", "delete"},
    "/api/v1/maintenance-windows/": {"get", "post"},
    "/api/v1/maintenance-windows/{id}/": {"get", "delete"},
    "/api/v1/pools/": {"get"},
    "/api/v1/pools/{id}/": {"get"},
    "/api/v1/rollouts/": {"get", "post"},
    "/api/v1/rollouts/{id}/": {"get"},
    "/api/v1/rollouts/{id}/advance/": {"post"},
    "/api/v1/rollouts/{id}/cancel/": {"post"},
    "/api/v1/rollouts/{id}/pause/": {"post"},
    "/api/v1/rollouts/{id}/progress/": {"get"},
    "/api/v1/rollouts/{id}/restore/": {"post"},
    "/api/v1/rollouts/{id}/resume/": {"post"},
    "/api/v1/rules/": {"get"},
    "/api/v1/rules/actions/": {"post"},
    "/api/v1/rules/{id}/": {"get", "delete"},
    "/api/v1/rules/{id}/approve/": {"post"},
    "/api/v1/rules/{id}/reset/": {"post"},
    "/api/v1/rules/{id}/restore/": {"post"},
    "/api/v1/servers/": {"get"},
    "/api/v1/servers/{id}/": {"get", "put", "patch"},
    "/api/v1/sites/": {"get"},
    "/api/v1/sites/{id}/": {"get", "put", "patch"},
    "/api/v1/test-devices/": {"get", "post"},
    "/api/v1/test-devices/{id}/": {"get", "put", "patch", "delete"},
    "/api/v1/trusted-publishers/": {"get", "post"},
    "/api/v1/trusted-publishers/{fingerprint}/": {"get", "delete"},
    "/api/v1/webhooks/": {"get", "post"},
    "/api/v1/webhooks/{id}/": {"get", "put", "patch", "delete"},
    "/api/v1/webhooks/{id}/attempts/": {"get"},
    "/api/v1/webhooks/{id}/disable/": {"post"},
}


def test_schema_generates_without_warnings_and_validates(
    capsys: pytest.CaptureFixture[str],
) -> None:
    GENERATOR_STATS.reset()

    # What `manage.py spectacular --fail-on-warn --validate` checks, for the API's URLs.
    schema = SchemaGenerator(urlconf=schema_urlconf).get_schema(request=None, public=True)

    assert not GENERATOR_STATS, capsys.readouterr().err
    assert capsys.readouterr().err == ""
    validate_schema(schema)
    assert schema["openapi"].startswith("3.")
    assert {path: set(item) for path, item in schema["paths"].items()} == OPERATIONS


def test_schema_endpoint_serves_valid_openapi_to_a_signed_in_user(
    helpdesk_api: APIClient,
) -> None:
    response = helpdesk_api.get("/api/schema/?format=json")

    assert response.status_code == 200
    schema = json.loads(response.content)
    validate_schema(schema)
    assert schema["info"] == {"title": "Device Update Web Service API", "version": "1.0.0"}
    assert set(schema["paths"]) == set(OPERATIONS)


def test_schema_documents_remove_as_delete_and_bulk_actions(admin_api: APIClient) -> None:
    schema = json.loads(admin_api.get("/api/schema/?format=json").content)

    remove = schema["paths"]["/api/v1/rules/{id}/"]["delete"]
    bulk = schema["paths"]["/api/v1/rules/actions/"]["post"]
    assert list(remove["responses"]) == ["204"]
    assert bulk["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/RuleBulkAction"
    }
    assert schema["components"]["schemas"]["RuleBulkAction"]["properties"]["rules"]["items"] == {
        "oneOf": [{"type": "integer"}, {"type": "string"}]
    }


def test_schema_is_refused_to_anonymous_users(anonymous_api: APIClient) -> None:
    response = anonymous_api.get("/api/schema/?format=json")

    assert response.status_code == 403
    assert json.loads(response.content) == {
        "detail": "Authentication credentials were not provided."
    }
