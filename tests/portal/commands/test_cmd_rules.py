"""`manage.py device_update_rules`: list, and the state machine action by action."""

from __future__ import annotations

import getpass
import io
import json
import uuid

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from portal.device_class import RuleClass
from portal.models import AuditEntry, DeviceUpdateRule, Pool
from portal.services.audit import Actor
from portal.services.rules import (
    rule_approve,
    rule_restore,
    rule_set_pending,
)

pytestmark = pytest.mark.django_db

SETUP = Actor.system("test")
ACTOR_NAME = f"manage.py ({getpass.getuser()})"


def run(*args: str) -> tuple[int, str, str]:
    """Exit status, stdout and stderr of one command."""
    out, err = io.StringIO(), io.StringIO()
    try:
        call_command(*args, stdout=out, stderr=err)
    except SystemExit as stop:
        return (stop.code if isinstance(stop.code, int) else 1), out.getvalue(), err.getvalue()
    return 0, out.getvalue(), err.getvalue()


def make_rule(state: str, model: str = "CX600") -> DeviceUpdateRule:
    """A rule brought to ``state`` through the services, with the setup's audit rows removed."""
    pool = Pool.objects.get()
    device_class = RuleClass("UCPhone", "Polycom", model, "Rev-1", "ENU", "CPE")
    rule_id = uuid.uuid4()

    def pending(version: str) -> DeviceUpdateRule:
        rule, _ = rule_set_pending(
            pool=pool, rule_id=rule_id, device_class=device_class, version=version, actor=SETUP
        )
        return rule

    rule = pending("1.0.0")
    if state in {"approved", "pending+approved", "restored", "not used"}:
        rule = rule_approve(rule=rule, actor=SETUP)
    if state in {"pending+approved", "restored"}:
        rule = pending("2.0.0")
    if state == "restored":
        rule = rule_restore(rule=rule_approve(rule=rule, actor=SETUP), actor=SETUP)
    if state == "not used":
        rule = rule_restore(rule=rule, actor=SETUP)
    AuditEntry.objects.all().delete()
    rule.refresh_from_db()
    assert rule.state == state
    return rule


def versions(rule: DeviceUpdateRule) -> tuple[str, str, str, bool]:
    rule.refresh_from_db()
    return (rule.pending_version, rule.approved_version, rule.restore_version, rule.restored)


def test_list_shows_every_rule_with_its_state_and_versions() -> None:
    pending = make_rule("pending", model="CX300")
    both = make_rule("pending+approved", model="CX600")
    status, out, err = run("device_update_rules", "list")
    width = len(pending.identity)
    assert (status, err) == (0, "")
    assert out.splitlines() == [
        f"{'IDENTITY':<{width}}  STATE             {'DEVICE CLASS':<35}  "
        "PENDING  APPROVED  RESTORE",
        f"{pending.identity}  pending           UCPhone/Polycom/CX300/Rev-1/ENU/CPE  "
        "1.0.0    -         -",
        f"{both.identity}  pending+approved  UCPhone/Polycom/CX600/Rev-1/ENU/CPE  "
        "2.0.0    1.0.0     -",
    ]


def test_list_as_json_with_filters() -> None:
    rule = make_rule("approved", model="CX600")
    make_rule("pending", model="CX300")
    status, out, err = run("device_update_rules", "list", "--state", "approved", "--json")
    assert (status, err) == (0, "")
    assert json.loads(out) == [
        {
            "identity": rule.identity,
            "pool": rule.pool.fqdn,
            "rule_id": str(rule.rule_id),
            "device_type": "UCPhone",
            "brand": "Polycom",
            "model": "CX600",
            "revision": "Rev-1",
            "locale": "ENU",
            "update_type": "CPE",
            "state": "approved",
            "pending_version": "",
            "approved_version": "1.0.0",
            "restore_version": "",
        }
    ]
    pool = rule.pool.fqdn.upper()
    _, out, _ = run("device_update_rules", "list", "--pool", pool, "--brand", "polycom", "--json")
    assert [item["model"] for item in json.loads(out)] == ["CX300", "CX600"]
    assert run("device_update_rules", "list", "--pool", "other.example.com", "--json") == (
        0,
        "[]\n",
        "",
    )
    assert run("device_update_rules", "list", "--brand", "Yealink") == (0, "no rules\n", "")


def test_list_refuses_an_unknown_state() -> None:
    with pytest.raises(CommandError) as error:
        run("device_update_rules", "list", "--state", "done")
    assert str(error.value) == (
        "Error: argument --state: invalid choice: 'done' (choose from 'pending', "
        "'pending+approved', 'approved', 'restored', 'not used')"
    )


# state -> action -> the (P, A, R, restored) after it, or the refusal's ending.
EXPECTED: dict[str, dict[str, tuple[str, str, str, bool] | str]] = {
    "pending": {
        "approve": ("", "1.0.0", "", False),
        "reset": ("", "", "", False),
        "restore": "nothing to restore (no approved version)",
    },
    "pending+approved": {
        "approve": ("", "2.0.0", "1.0.0", False),
        "reset": ("", "1.0.0", "", False),
        "restore": ("2.0.0", "", "", True),
    },
    "approved": {
        "approve": "nothing to approve (no pending version)",
        "reset": "nothing to cancel (no pending version)",
        "restore": ("", "", "", True),
    },
    "restored": {
        "approve": "nothing to approve (no pending version)",
        "reset": "nothing to cancel (no pending version)",
        "restore": ("", "", "", True),
    },
    "not used": {
        "approve": "nothing to approve (no pending version)",
        "reset": "nothing to cancel (no pending version)",
        "restore": "nothing to restore (no approved version)",
    },
}
DONE = {"approve": "approved", "reset": "pending version cancelled", "restore": "restored"}
AUDIT_ACTION = {
    "approve": "portal.rule.approved",
    "reset": "portal.rule.reset",
    "restore": "portal.rule.restored",
}


@pytest.mark.parametrize(
    ("state", "action", "expected"),
    [
        pytest.param(state, action, expected, id=f"{state}-{action}")
        for state, row in EXPECTED.items()
        for action, expected in row.items()
    ],
)
def test_each_action_from_each_state(
    state: str, action: str, expected: tuple[str, str, str, bool] | str
) -> None:
    rule = make_rule(state)
    before = versions(rule)
    status, out, err = run("device_update_rules", action, rule.identity)
    if isinstance(expected, str):
        assert (status, out, err) == (1, "", f"error: {rule.identity}: {expected}\n")
        assert versions(rule) == before
        assert AuditEntry.objects.count() == 0
        return
    assert (status, out, err) == (0, f"{rule.identity}: {DONE[action]}\n", "")
    assert versions(rule) == expected
    entry = AuditEntry.objects.get()
    assert (entry.action, entry.actor_name, entry.object_id) == (
        AUDIT_ACTION[action],
        ACTOR_NAME,
        str(rule.pk),
    )


@pytest.mark.parametrize("state", list(EXPECTED))
def test_remove_is_allowed_from_every_state(state: str) -> None:
    rule = make_rule(state)
    status, out, err = run("device_update_rules", "remove", rule.identity, "--json")
    assert (status, err) == (0, "")
    assert json.loads(out) == [{"identity": rule.identity, "ok": True, "message": "removed"}]
    assert DeviceUpdateRule.objects.count() == 0
    entry = AuditEntry.objects.get()
    assert (entry.action, entry.actor_name) == ("portal.rule.removed", ACTOR_NAME)


def test_bulk_approve_applies_each_rule_on_its_own_and_reports_each_outcome() -> None:
    pending = make_rule("pending", model="CX300")
    approved = make_rule("approved", model="CX600")
    pool = pending.pool.fqdn
    unknown = f"service:WebServer:{pool}/{uuid.UUID(int=7)}"
    status, out, err = run(
        "device_update_rules",
        "approve",
        approved.identity,
        pending.identity,
        unknown,
        "pool-only",
        pending.identity,  # given twice, applied once
    )
    assert status == 1
    assert out == f"{pending.identity}: approved\n"
    assert err.splitlines() == [
        f"error: {approved.identity}: nothing to approve (no pending version)",
        f"error: no rule {unknown}",
        "error: 'pool-only' is not a rule identity (service:WebServer:<pool FQDN>/<rule Id>)",
    ]
    assert versions(pending) == ("", "1.0.0", "", False)
    assert versions(approved) == ("", "1.0.0", "", False)
    assert list(AuditEntry.objects.values_list("action", "object_id")) == [
        ("portal.rule.approved", str(pending.pk))
    ]


def test_bulk_reset_as_json_lists_every_outcome() -> None:
    pending = make_rule("pending", model="CX300")
    approved = make_rule("approved", model="CX600")
    bad_guid = f"service:WebServer:{pending.pool.fqdn}/not-a-guid"
    status, out, err = run(
        "device_update_rules", "reset", pending.identity, approved.identity, bad_guid, "--json"
    )
    assert status == 1
    assert json.loads(out) == [
        {"identity": pending.identity, "ok": True, "message": "pending version cancelled"},
        {
            "identity": approved.identity,
            "ok": False,
            "message": f"{approved.identity}: nothing to cancel (no pending version)",
        },
        {"identity": bad_guid, "ok": False, "message": "'not-a-guid' is not a GUID"},
    ]
    assert err.splitlines() == [
        f"error: {approved.identity}: nothing to cancel (no pending version)",
        "error: 'not-a-guid' is not a GUID",
    ]
    assert versions(pending) == ("", "", "", False)
    assert AuditEntry.objects.count() == 1


def test_an_action_needs_at_least_one_identity() -> None:
    with pytest.raises(CommandError) as error:
        run("device_update_rules", "approve")
    assert str(error.value) == "Error: the following arguments are required: IDENTITY"
