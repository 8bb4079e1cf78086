"""The audit trail through the API: newest first, filtered, cursor-paginated, read-only."""

from __future__ import annotations

import datetime as dt

import pytest
from rest_framework.test import APIClient

from portal.api.views import AuditCursorPagination
from portal.models import AuditEntry
from portal.services.audit import Actor
from portal.services.testdevices import testdevice_create, testdevice_update

pytestmark = pytest.mark.django_db


@pytest.fixture
def trail(db: None) -> list[AuditEntry]:
    """Three changes by two actors on 1, 2 and 3 March 2025 at noon UTC."""
    device = testdevice_create(
        scope="global",
        name="Lobby",
        identifier_type="SerialNumber",
        identifier="SN-1",
        actor=Actor.system("importer"),
    )
    testdevice_update(device=device, name="Reception", actor=Actor.system("Operator"))
    testdevice_create(
        scope="global",
        name="Desk",
        identifier_type="SerialNumber",
        identifier="SN-2",
        actor=Actor.system("operator"),
    )
    entries = list(AuditEntry.objects.order_by("pk"))
    for day, entry in enumerate(entries, start=1):
        entry.created_at = dt.datetime(2025, 3, day, 12, tzinfo=dt.UTC)
        entry.save(update_fields=["created_at"])
    return entries


def test_audit_list_is_newest_first_with_every_field(
    admin_api: APIClient, trail: list[AuditEntry]
) -> None:
    created, changed, added = trail

    response = admin_api.get("/api/v1/audit/")

    assert response.status_code == 200
    body = response.json()
    assert (body["next"], body["previous"]) == (None, None)
    assert [entry["id"] for entry in body["results"]] == [added.pk, changed.pk, created.pk]
    assert body["results"][1] == {
        "id": changed.pk,
        "created_at": "2025-03-02T12:00:00Z",
        "actor_name": "Operator",
        "action": "portal.test_device.changed",
        "object_type": "portal.testdevice",
        "object_id": changed.object_id,
        "object_repr": "global/Reception",
        "changes": {"name": ["Lobby", "Reception"]},
    }


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("action=portal.test_device.created", [2, 0]),
        ("actor_name=OPERATOR", [2, 1]),
        ("object_type=portal.testdevice", [2, 1, 0]),
        ("object_type=portal.deviceupdaterule", []),
        ("created_at_after=2025-03-02T00:00:00Z", [2, 1]),
        ("created_at_before=2025-03-02T12:00:00Z", [1, 0]),
        ("created_at_after=2025-03-02T00:00:00Z&created_at_before=2025-03-02T23:59:59Z", [1]),
    ],
)
def test_audit_list_filters(
    admin_api: APIClient, trail: list[AuditEntry], query: str, expected: list[int]
) -> None:
    response = admin_api.get(f"/api/v1/audit/?{query}")

    assert response.status_code == 200
    assert [entry["id"] for entry in response.json()["results"]] == [
        trail[index].pk for index in expected
    ]


def test_audit_list_filters_by_object_id(admin_api: APIClient, trail: list[AuditEntry]) -> None:
    response = admin_api.get(f"/api/v1/audit/?object_id={trail[0].object_id}")

    assert [entry["id"] for entry in response.json()["results"]] == [trail[1].pk, trail[0].pk]


def test_audit_list_refuses_a_malformed_date(admin_api: APIClient, trail: list[AuditEntry]) -> None:
    response = admin_api.get("/api/v1/audit/?created_at_after=yesterday")

    assert response.status_code == 400
    assert response.json() == {"created_at": ["Enter a valid date/time."]}


def test_audit_list_pages_with_a_cursor(
    admin_api: APIClient, trail: list[AuditEntry], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(AuditCursorPagination, "page_size", 2)

    first = admin_api.get("/api/v1/audit/").json()
    second = admin_api.get(first["next"]).json()

    assert [entry["id"] for entry in first["results"]] == [trail[2].pk, trail[1].pk]
    assert [entry["id"] for entry in second["results"]] == [trail[0].pk]
    assert second["next"] is None
    assert second["previous"] is not None


def test_audit_entry_detail(admin_api: APIClient, trail: list[AuditEntry]) -> None:
    response = admin_api.get(f"/api/v1/audit/{trail[0].pk}/")

    assert response.status_code == 200
    assert response.json()["action"] == "portal.test_device.created"
    assert response.json()["actor_name"] == "importer"
