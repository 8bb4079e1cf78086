"""Device update rules in the control panel: the list, and approve / cancel pending /
restore / remove, each confirmed on a page that says what will reach phones."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.contrib.auth.models import Permission, User
from django.test import Client

from portal.models import AuditEntry, DeviceUpdateRule
from tests.factories import CX700
from tests.factories import RULE_B as CX700_RULE_ID

pytestmark = pytest.mark.django_db

CHANGELIST = "/admin/portal/deviceupdaterule/"
Messages = Callable[[Any], list[tuple[str, str]]]

# (P, A, R, restored)
PENDING_APPROVED = ("4.0.2", "4.0.1", "4.0.0", False)
APPROVED = ("", "4.0.1", "4.0.0", False)
PENDING_ONLY = ("4.0.2", "", "", False)


def rule_in(
    make_rule: Callable[..., DeviceUpdateRule], state: tuple[str, str, str, bool]
) -> DeviceUpdateRule:
    pending, approved, restore, restored = state
    return make_rule(pending=pending, approved=approved, restore=restore, restored=restored)


def versions(rule: DeviceUpdateRule) -> tuple[str, str, str, bool]:
    rule.refresh_from_db()
    return (rule.pending_version, rule.approved_version, rule.restore_version, rule.restored)


def test_list_shows_every_column_of_a_rule(
    client: Client, administrator: User, make_rule: Callable[..., DeviceUpdateRule]
) -> None:
    rule = rule_in(make_rule, PENDING_APPROVED)
    client.force_login(administrator)
    response = client.get(CHANGELIST)
    assert response.status_code == 200
    changelist = response.context["cl"]
    assert list(changelist.list_display) == [
        "action_checkbox",
        "name",
        "approved_version",
        "pending_version",
        "restore_version",
        "state",
        "active_rollout",
    ]
    assert list(changelist.result_list) == [rule]
    page = response.content.decode()
    assert rule.name == "Polycom CX600 Rev-1 ENU CPE on pool01.example.org"
    for text in (rule.name, "4.0.2", "4.0.1", "4.0.0", "pending+approved"):
        assert text in page


def test_administrator_sees_the_four_actions(client: Client, administrator: User) -> None:
    client.force_login(administrator)
    response = client.get(CHANGELIST)
    choices = [
        (name, str(label))
        for name, label in response.context["action_form"].fields["action"].choices
    ]
    assert choices == [
        ("", "---------"),
        ("approve_rules", "Approve selected rules"),
        ("reset_rules", "Cancel pending versions of selected rules"),
        ("restore_rules", "Restore selected rules"),
        ("remove_rules", "Remove selected rules"),
    ]


def test_helpdesk_sees_no_action(client: Client, helpdesk: User) -> None:
    client.force_login(helpdesk)
    response = client.get(CHANGELIST)
    assert response.status_code == 200
    assert response.context["action_form"] is None
    assert 'name="action"' not in response.content.decode()


@pytest.mark.parametrize(
    ("query", "expected_models"),
    [
        ("state=pending", ["CX700"]),
        ("state=pending%2Bapproved", ["CX600"]),
        ("state=approved", []),
        ("state=not+used", []),
        ("brand=Polycom", ["CX600", "CX700"]),
        ("model=CX700", ["CX700"]),
        ("q=4.0.1", ["CX600"]),
        (f"q={CX700_RULE_ID}", ["CX700"]),
    ],
)
def test_list_filters_and_search(
    client: Client,
    administrator: User,
    make_rule: Callable[..., DeviceUpdateRule],
    query: str,
    expected_models: list[str],
) -> None:
    rule_in(make_rule, PENDING_APPROVED)
    make_rule(pending="5.0", device_class=CX700, rule_id=CX700_RULE_ID)
    client.force_login(administrator)
    response = client.get(f"{CHANGELIST}?{query}")
    assert response.status_code == 200
    assert [rule.model for rule in response.context["cl"].result_list] == expected_models


def test_an_unknown_state_filter_is_refused_without_an_error_page(
    client: Client, administrator: User
) -> None:
    client.force_login(administrator)
    response = client.get(f"{CHANGELIST}?state=bogus")
    assert response.status_code == 302
    assert response["Location"] == f"{CHANGELIST}?e=1"


def test_rules_are_not_added_or_edited_by_hand(
    client: Client, administrator: User, make_rule: Callable[..., DeviceUpdateRule]
) -> None:
    rule = rule_in(make_rule, PENDING_APPROVED)
    client.force_login(administrator)
    assert client.get(f"{CHANGELIST}add/").status_code == 403
    page = client.get(f"{CHANGELIST}{rule.pk}/change/")
    assert page.status_code == 200
    assert 'name="_save"' not in page.content.decode()
    assert rule.identity in page.content.decode()
    response = client.post(
        f"{CHANGELIST}{rule.pk}/change/", {"approved_version": "9.9", "pending_version": ""}
    )
    assert response.status_code == 403
    assert client.post(f"{CHANGELIST}{rule.pk}/delete/", {"post": "yes"}).status_code == 403
    assert versions(rule) == PENDING_APPROVED
    assert AuditEntry.objects.count() == 0


# action, state before, confirmation line, message, state after (None: removed), audit code
ALLOWED = [
    (
        "approve_rules",
        PENDING_APPROVED,
        "everyone gets 4.0.2 (was 4.0.1), test devices follow; 4.0.1 kept for a restore",
        "approved",
        ("", "4.0.2", "4.0.1", False),
        "portal.rule.approved",
    ),
    (
        "approve_rules",
        PENDING_ONLY,
        "everyone gets 4.0.2 (was nothing), test devices follow",
        "approved",
        ("", "4.0.2", "", False),
        "portal.rule.approved",
    ),
    (
        "reset_rules",
        PENDING_APPROVED,
        "test devices go back to 4.0.1 (4.0.2 cancelled)",
        "pending version cancelled",
        ("", "4.0.1", "4.0.0", False),
        "portal.rule.reset",
    ),
    (
        "restore_rules",
        APPROVED,
        "everyone goes back to 4.0.0 (was 4.0.1), test devices follow",
        "restored",
        ("", "4.0.0", "", True),
        "portal.rule.restored",
    ),
    (
        "restore_rules",
        ("", "4.0.0", "", True),
        "nothing is offered any more (was 4.0.0), test devices follow",
        "restored",
        ("", "", "", True),
        "portal.rule.restored",
    ),
    (
        "restore_rules",
        PENDING_APPROVED,
        "everyone goes back to 4.0.0 (was 4.0.1), test devices keep 4.0.2",
        "restored",
        ("4.0.2", "4.0.0", "", True),
        "portal.rule.restored",
    ),
    (
        "remove_rules",
        PENDING_APPROVED,
        "rule deleted: nothing is offered any more (was 4.0.1), pending 4.0.2 dropped",
        "removed",
        None,
        "portal.rule.removed",
    ),
]


@pytest.mark.parametrize(("action", "before", "line", "done", "after", "code"), ALLOWED)
def test_allowed_action_is_confirmed_then_applied_and_audited(
    client: Client,
    administrator: User,
    make_rule: Callable[..., DeviceUpdateRule],
    read_messages: Messages,
    action: str,
    before: tuple[str, str, str, bool],
    line: str,
    done: str,
    after: tuple[str, str, str, bool] | None,
    code: str,
) -> None:
    rule = rule_in(make_rule, before)
    client.force_login(administrator)

    confirmation = client.post(CHANGELIST, {"action": action, "_selected_action": [rule.pk]})

    assert confirmation.status_code == 200
    assert [
        (preview.rule.pk, preview.refused, preview.effect)
        for preview in confirmation.context["previews"]
    ] == [(rule.pk, False, line)]
    page = confirmation.content.decode()
    assert line in page
    assert f'<input type="hidden" name="action" value="{action}">' in page
    assert f'<input type="hidden" name="_selected_action" value="{rule.pk}">' in page
    assert versions(rule) == before  # nothing happens before the confirmation
    assert AuditEntry.objects.count() == 0

    response = client.post(
        CHANGELIST, {"action": action, "_selected_action": [rule.pk], "post": "yes"}
    )

    assert response.status_code == 302
    assert response["Location"] == CHANGELIST
    assert read_messages(response) == [("success", f"{rule.name}: {done}")]
    if after is None:
        assert not DeviceUpdateRule.objects.filter(pk=rule.pk).exists()
    else:
        assert versions(rule) == after
    entry = AuditEntry.objects.get()
    assert (entry.action, entry.actor_name, entry.actor, entry.object_repr) == (
        code,
        "ada",
        administrator,
        rule.name,
    )


REFUSED = [
    (
        "approve_rules",
        APPROVED,
        "refused: no pending version to approve",
        "nothing to approve (no pending version)",
    ),
    (
        "reset_rules",
        APPROVED,
        "refused: no pending version to cancel",
        "nothing to cancel (no pending version)",
    ),
    (
        "restore_rules",
        PENDING_ONLY,
        "refused: no approved version to restore",
        "nothing to restore (no approved version)",
    ),
    (
        "approve_rules",
        ("", "", "", False),
        "refused: no pending version to approve",
        "nothing to approve (no pending version)",
    ),
]


@pytest.mark.parametrize(("action", "before", "line", "reason"), REFUSED)
def test_refused_action_is_flagged_then_reported_and_changes_nothing(
    client: Client,
    administrator: User,
    make_rule: Callable[..., DeviceUpdateRule],
    read_messages: Messages,
    action: str,
    before: tuple[str, str, str, bool],
    line: str,
    reason: str,
) -> None:
    rule = rule_in(make_rule, before)
    client.force_login(administrator)

    confirmation = client.post(CHANGELIST, {"action": action, "_selected_action": [rule.pk]})

    assert confirmation.status_code == 200
    assert [
        (preview.rule.pk, preview.refused, preview.effect)
        for preview in confirmation.context["previews"]
    ] == [(rule.pk, True, line)]
    assert "1 rule will be refused and left as it is." in confirmation.content.decode()

    response = client.post(
        CHANGELIST, {"action": action, "_selected_action": [rule.pk], "post": "yes"}
    )

    assert response.status_code == 302
    assert read_messages(response) == [("error", f"{rule.name}: {reason}")]
    assert versions(rule) == before
    assert AuditEntry.objects.count() == 0


def test_bulk_approve_reports_each_rule_on_its_own(
    client: Client,
    administrator: User,
    make_rule: Callable[..., DeviceUpdateRule],
    read_messages: Messages,
) -> None:
    pending = rule_in(make_rule, PENDING_APPROVED)
    approved = make_rule(approved="3.0", device_class=CX700, rule_id=CX700_RULE_ID)
    client.force_login(administrator)
    selected = [pending.pk, approved.pk]

    confirmation = client.post(
        CHANGELIST, {"action": "approve_rules", "_selected_action": selected}
    )
    assert [(p.rule.model, p.refused) for p in confirmation.context["previews"]] == [
        ("CX600", False),
        ("CX700", True),
    ]
    response = client.post(
        CHANGELIST, {"action": "approve_rules", "_selected_action": selected, "post": "yes"}
    )

    assert read_messages(response) == [
        ("success", f"{pending.name}: approved"),
        ("error", f"{approved.name}: nothing to approve (no pending version)"),
    ]
    assert versions(pending) == ("", "4.0.2", "4.0.1", False)
    assert versions(approved) == ("", "3.0", "", False)
    assert list(AuditEntry.objects.values_list("action", "object_repr")) == [
        ("portal.rule.approved", pending.name)
    ]


@pytest.mark.parametrize(
    "action", ["approve_rules", "reset_rules", "restore_rules", "remove_rules"]
)
def test_helpdesk_cannot_run_an_action(
    client: Client,
    helpdesk: User,
    make_rule: Callable[..., DeviceUpdateRule],
    action: str,
) -> None:
    rule = rule_in(make_rule, PENDING_APPROVED)
    client.force_login(helpdesk)

    confirmation = client.post(CHANGELIST, {"action": action, "_selected_action": [rule.pk]})
    response = client.post(
        CHANGELIST, {"action": action, "_selected_action": [rule.pk], "post": "yes"}
    )

    # The helpdesk has no action at all: the POST just shows the list again.
    assert (confirmation.status_code, response.status_code) == (200, 200)
    assert "previews" not in response.context
    assert versions(rule) == PENDING_APPROVED
    assert AuditEntry.objects.count() == 0


def test_an_administrator_without_delete_permission_cannot_remove(
    client: Client,
    administrator: User,
    make_rule: Callable[..., DeviceUpdateRule],
    read_messages: Messages,
) -> None:
    administrator.user_permissions.add(
        *Permission.objects.filter(
            codename__in=["change_deviceupdaterule", "view_deviceupdaterule"]
        )
    )
    administrator.groups.clear()
    rule = rule_in(make_rule, PENDING_APPROVED)
    client.force_login(administrator)

    response = client.post(
        CHANGELIST, {"action": "remove_rules", "_selected_action": [rule.pk], "post": "yes"}
    )

    assert response.status_code == 302
    assert read_messages(response) == [("warning", "No action selected.")]
    assert versions(rule) == PENDING_APPROVED
    assert AuditEntry.objects.count() == 0


def test_a_rules_page_has_its_actions_each_to_its_confirmation_page(
    client: Client, administrator: User, make_rule: Callable[..., DeviceUpdateRule]
) -> None:
    rule = rule_in(make_rule, PENDING_APPROVED)
    client.force_login(administrator)

    response = client.get(f"{CHANGELIST}{rule.pk}/change/")

    assert response.context["rule_actions"] == [
        ("approve_rules", "Approve", None),
        ("approve-in-waves", "Approve in waves", f"/admin/portal/rollout/plan/{rule.pk}/"),
        ("reset_rules", "Cancel pending", None),
        ("restore_rules", "Restore", None),
        ("remove_rules", "Remove", None),
    ]
    page = response.content.decode()
    assert rule.identity in page  # the identity stays on the detail page
    for action in ("approve_rules", "reset_rules", "restore_rules", "remove_rules"):
        assert f'<button type="submit" id="rule-{action}">' in page
    # The button's form is the list action's: it opens the confirmation, changing nothing.
    confirmation = client.post(
        CHANGELIST, {"action": "restore_rules", "_selected_action": [str(rule.pk)]}
    )
    assert confirmation.status_code == 200
    assert [preview.rule for preview in confirmation.context["previews"]] == [rule]
    assert versions(rule) == PENDING_APPROVED
    assert AuditEntry.objects.count() == 0


def test_a_rules_page_offers_only_what_its_state_allows(
    client: Client, administrator: User, helpdesk: User, make_rule: Callable[..., DeviceUpdateRule]
) -> None:
    rule = rule_in(make_rule, APPROVED)
    client.force_login(administrator)
    response = client.get(f"{CHANGELIST}{rule.pk}/change/")
    assert response.context["rule_actions"] == [
        ("restore_rules", "Restore", None),
        ("remove_rules", "Remove", None),
    ]
    client.force_login(helpdesk)
    response = client.get(f"{CHANGELIST}{rule.pk}/change/")
    assert response.context["rule_actions"] == []
    assert 'class="rule-action"' not in response.content.decode()
