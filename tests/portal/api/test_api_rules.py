"""Device update rules through the API: list, filters, detail, the state machine's
actions (allowed and refused) and bulk actions with per-rule outcomes."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from rest_framework.test import APIClient

from portal.models import AuditEntry, DeviceUpdateRule, Pool
from portal.services.audit import Actor
from portal.services.rules import rule_set_pending
from tests.factories import AASTRA, CX600, RULE_A, RULE_B

pytestmark = pytest.mark.django_db

IDENTITY_A = f"service:WebServer:pool01.example.org/{RULE_A}"
IDENTITY_B = f"service:WebServer:pool01.example.org/{RULE_B}"

# (P, A, R, restored) of every state a rule can be in.
STATES: dict[str, tuple[str, str, str, bool]] = {
    "pending": ("2.0", "", "", False),
    "pending+approved": ("3.0", "2.0", "1.0", False),
    "approved": ("", "2.0", "1.0", False),
    "approved, no restore": ("", "2.0", "", False),
    "restored": ("", "1.0", "", True),
    "not used": ("", "", "", False),
}
NOTHING_TO_APPROVE = "nothing to approve (no pending version)"
NOTHING_TO_CANCEL = "nothing to cancel (no pending version)"
NOTHING_TO_RESTORE = "nothing to restore (no approved version)"

# (state, action) -> (P, A, R, restored, shown state) after it, or the refusal.
TRANSITIONS: list[tuple[str, str, tuple[str, str, str, bool, str] | str]] = [
    ("pending", "approve", ("", "2.0", "", False, "approved")),
    ("pending+approved", "approve", ("", "3.0", "2.0", False, "approved")),
    ("approved", "approve", NOTHING_TO_APPROVE),
    ("restored", "approve", NOTHING_TO_APPROVE),
    ("not used", "approve", NOTHING_TO_APPROVE),
    ("pending", "reset", ("", "", "", False, "not used")),
    ("pending+approved", "reset", ("", "2.0", "1.0", False, "approved")),
    ("approved", "reset", NOTHING_TO_CANCEL),
    ("not used", "reset", NOTHING_TO_CANCEL),
    ("pending+approved", "restore", ("3.0", "1.0", "", True, "pending+approved")),
    ("approved", "restore", ("", "1.0", "", True, "restored")),
    ("approved, no restore", "restore", ("", "", "", True, "not used")),
    ("restored", "restore", ("", "", "", True, "not used")),
    ("pending", "restore", NOTHING_TO_RESTORE),
    ("not used", "restore", NOTHING_TO_RESTORE),
]


def make(pool: Pool, state: str, *, rule_id: uuid.UUID = RULE_A) -> DeviceUpdateRule:
    pending, approved, restore, restored = STATES[state]
    device_class = CX600 if rule_id == RULE_A else AASTRA
    return DeviceUpdateRule.objects.create(
        pool=pool,
        rule_id=rule_id,
        pending_version=pending,
        approved_version=approved,
        restore_version=restore,
        restored=restored,
        **vars(device_class),
    )


def versions(rule: DeviceUpdateRule) -> tuple[str, str, str, bool]:
    rule.refresh_from_db()
    return (rule.pending_version, rule.approved_version, rule.restore_version, rule.restored)


def cx600_json(pk: int, pending: str, approved: str, restore: str, state: str) -> dict[str, Any]:
    return {
        "id": pk,
        "identity": IDENTITY_A,
        "pool": "pool01.example.org",
        "rule_id": str(RULE_A),
        "device_type": "UCPhone",
        "brand": "Polycom",
        "model": "CX600",
        "revision": "Rev-1",
        "locale": "ENU",
        "update_type": "CPE",
        "pending_version": pending,
        "approved_version": approved,
        "restore_version": restore,
        "state": state,
    }


def test_rule_list_shows_every_rule_with_identity_versions_and_state(
    admin_api: APIClient, pool01: Pool
) -> None:
    rule, _ = rule_set_pending(
        pool=pool01,
        rule_id=RULE_A,
        device_class=CX600,
        version="4.0.7577.04387",
        actor=Actor.system("test"),
    )
    other = make(pool01, "approved", rule_id=RULE_B)

    response = admin_api.get("/api/v1/rules/")

    assert response.status_code == 200
    assert response.json() == {
        "next": None,
        "previous": None,
        "results": [
            {
                "id": rule.pk,
                "identity": "service:WebServer:pool01.example.org/"
                "2de8cbf6-8a1e-4bc0-9d9e-0b2b5a1c1f11",
                "pool": "pool01.example.org",
                "rule_id": "2de8cbf6-8a1e-4bc0-9d9e-0b2b5a1c1f11",
                "device_type": "UCPhone",
                "brand": "Polycom",
                "model": "CX600",
                "revision": "Rev-1",
                "locale": "ENU",
                "update_type": "CPE",
                "pending_version": "4.0.7577.4387",
                "approved_version": "",
                "restore_version": "",
                "state": "pending",
            },
            {
                "id": other.pk,
                "identity": IDENTITY_B,
                "pool": "pool01.example.org",
                "rule_id": str(RULE_B),
                "device_type": "UCPhone",
                "brand": "Aastra",
                "model": "6725ip",
                "revision": "Rev-2",
                "locale": "DEU",
                "update_type": "Firmware",
                "pending_version": "",
                "approved_version": "2.0",
                "restore_version": "1.0",
                "state": "approved",
            },
        ],
    }


def test_rule_detail_is_one_rule(admin_api: APIClient, pool01: Pool) -> None:
    rule = make(pool01, "pending+approved")

    response = admin_api.get(f"/api/v1/rules/{rule.pk}/")

    assert response.status_code == 200
    assert response.json() == cx600_json(rule.pk, "3.0", "2.0", "1.0", "pending+approved")


def test_unknown_rule_is_404(admin_api: APIClient, pool01: Pool) -> None:
    response = admin_api.get("/api/v1/rules/999999/")

    assert response.status_code == 404
    assert response.json() == {"detail": "No DeviceUpdateRule matches the given query."}


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("", ["CX600", "6725ip"]),
        ("state=pending", ["CX600"]),
        ("state=approved", ["6725ip"]),
        ("state=not+used", []),
        ("brand=polycom", ["CX600"]),
        ("model=6725IP", ["6725ip"]),
        ("device_type=ucphone", ["CX600", "6725ip"]),
        ("update_type=firmware", ["6725ip"]),
        ("pool=POOL01.example.org", ["CX600", "6725ip"]),
        ("pool=pool02.example.org", []),
        ("ordering=brand", ["6725ip", "CX600"]),
        ("ordering=-id", ["6725ip", "CX600"]),
    ],
)
def test_rule_list_filters_and_orders(
    admin_api: APIClient, pool01: Pool, query: str, expected: list[str]
) -> None:
    make(pool01, "pending", rule_id=RULE_A)
    make(pool01, "approved", rule_id=RULE_B)

    response = admin_api.get(f"/api/v1/rules/?{query}")

    assert response.status_code == 200
    assert [rule["model"] for rule in response.json()["results"]] == expected


def test_rule_list_refuses_an_unknown_state(admin_api: APIClient, pool01: Pool) -> None:
    response = admin_api.get("/api/v1/rules/?state=broken")

    assert response.status_code == 400
    assert response.json() == {
        "state": ["Select a valid choice. broken is not one of the available choices."]
    }


@pytest.mark.parametrize(("state", "action", "expected"), TRANSITIONS)
def test_rule_action_follows_the_state_machine(
    admin_api: APIClient,
    pool01: Pool,
    state: str,
    action: str,
    expected: tuple[str, str, str, bool, str] | str,
) -> None:
    rule = make(pool01, state)
    before = versions(rule)

    response = admin_api.post(f"/api/v1/rules/{rule.pk}/{action}/")

    if isinstance(expected, str):
        assert response.status_code == 400
        assert response.json() == {"non_field_errors": [f"{IDENTITY_A}: {expected}"]}
        assert versions(rule) == before
        assert AuditEntry.objects.count() == 0
        return
    pending, approved, restore, restored, shown = expected
    assert response.status_code == 200
    assert response.json() == cx600_json(rule.pk, pending, approved, restore, shown)
    assert versions(rule) == (pending, approved, restore, restored)
    entry = AuditEntry.objects.get()
    expected_action = {"approve": "approved", "reset": "reset", "restore": "restored"}[action]
    assert (entry.action, entry.actor_name, entry.object_id) == (
        f"portal.rule.{expected_action}",
        "ada",
        str(rule.pk),
    )


def test_approve_records_each_changed_version_in_the_audit(
    admin_api: APIClient, pool01: Pool
) -> None:
    rule = make(pool01, "pending+approved")

    admin_api.post(f"/api/v1/rules/{rule.pk}/approve/")

    assert AuditEntry.objects.get().changes == {
        "approved_version": ["2.0", "3.0"],
        "pending_version": ["3.0", ""],
        "restore_version": ["1.0", "2.0"],
    }


def test_delete_removes_the_rule(admin_api: APIClient, pool01: Pool) -> None:
    rule = make(pool01, "approved")

    response = admin_api.delete(f"/api/v1/rules/{rule.pk}/")

    assert response.status_code == 204
    assert response.content == b""
    assert not DeviceUpdateRule.objects.exists()
    entry = AuditEntry.objects.get()
    assert (entry.action, entry.actor_name, entry.object_repr) == (
        "portal.rule.removed",
        "ada",
        "Polycom CX600 Rev-1 ENU CPE on pool01.example.org",  # the name people read
    )


def test_action_on_an_unknown_rule_is_404_and_changes_nothing(
    admin_api: APIClient, pool01: Pool
) -> None:
    response = admin_api.post("/api/v1/rules/999999/approve/")

    assert response.status_code == 404
    assert AuditEntry.objects.count() == 0


def test_bulk_action_reports_each_rule_on_its_own(admin_api: APIClient, pool01: Pool) -> None:
    pending = make(pool01, "pending", rule_id=RULE_A)
    approved = make(pool01, "approved", rule_id=RULE_B)

    response = admin_api.post(
        "/api/v1/rules/actions/",
        {"action": "approve", "rules": [pending.pk, IDENTITY_B]},
        format="json",
    )

    assert response.status_code == 200
    assert response.json() == {
        "action": "approve",
        "outcomes": [
            {"identity": IDENTITY_A, "ok": True, "message": "approved"},
            {"identity": IDENTITY_B, "ok": False, "message": f"{IDENTITY_B}: {NOTHING_TO_APPROVE}"},
        ],
    }
    assert versions(pending) == ("", "2.0", "", False)
    assert versions(approved) == ("", "2.0", "1.0", False)
    assert list(AuditEntry.objects.values_list("action", "object_id")) == [
        ("portal.rule.approved", str(pending.pk))
    ]


def test_bulk_remove_deletes_every_named_rule_once(admin_api: APIClient, pool01: Pool) -> None:
    first = make(pool01, "pending", rule_id=RULE_A)
    make(pool01, "approved", rule_id=RULE_B)

    response = admin_api.post(
        "/api/v1/rules/actions/",
        {"action": "remove", "rules": [IDENTITY_B, str(first.pk), first.pk]},
        format="json",
    )

    assert response.status_code == 200
    assert response.json() == {
        "action": "remove",
        "outcomes": [
            {"identity": IDENTITY_B, "ok": True, "message": "removed"},
            {"identity": IDENTITY_A, "ok": True, "message": "removed"},
        ],
    }
    assert not DeviceUpdateRule.objects.exists()
    assert AuditEntry.objects.filter(action="portal.rule.removed").count() == 2


@pytest.mark.parametrize(
    ("body", "errors"),
    [
        (
            {"action": "approve", "rules": [999999]},
            {"rules": ["no rule with id 999999"]},
        ),
        (
            {"action": "approve", "rules": ["service:WebServer:pool01.example.org/not-a-guid"]},
            {"rules": ["'not-a-guid' is not a GUID"]},
        ),
        (
            {"action": "approve", "rules": [f"service:WebServer:other.example.org/{RULE_A}"]},
            {"rules": [f"no rule service:WebServer:other.example.org/{RULE_A}"]},
        ),
        (
            {"action": "approve", "rules": ["pool01/whatever"]},
            {
                "rules": [
                    "'pool01/whatever' is not a rule identity "
                    "(service:WebServer:<pool FQDN>/<rule Id>)"
                ]
            },
        ),
        ({"action": "approve", "rules": []}, {"rules": ["This list may not be empty."]}),
        ({"action": "publish", "rules": [1]}, {"action": ['"publish" is not a valid choice.']}),
        ({}, {"action": ["This field is required."], "rules": ["This field is required."]}),
    ],
)
def test_bulk_action_with_bad_input_is_400_and_changes_nothing(
    admin_api: APIClient, pool01: Pool, body: dict[str, Any], errors: dict[str, list[str]]
) -> None:
    rule = make(pool01, "pending")

    response = admin_api.post("/api/v1/rules/actions/", body, format="json")

    assert response.status_code == 400
    assert response.json() == errors
    assert versions(rule) == ("2.0", "", "", False)
    assert AuditEntry.objects.count() == 0


def test_ids_beyond_the_database_range_are_unknown_rules(
    admin_api: APIClient, pool01: Pool
) -> None:
    huge = "9" * 30

    detail = admin_api.get(f"/api/v1/rules/{huge}/")
    bulk = admin_api.post(
        "/api/v1/rules/actions/", {"action": "approve", "rules": [huge]}, format="json"
    )

    assert detail.status_code == 404
    assert bulk.status_code == 400
    assert bulk.json() == {"rules": [f"no rule with id {huge}"]}
