"""The control panel in real headless Chromium: sign in, add a test device, approve and
restore a rule through the confirmation page, read the audit trail, the helpdesk's
read-only view, and a refused action that changes nothing."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest
from django.conf import settings
from django.contrib.auth.models import User
from playwright.sync_api import Locator, Page, expect

from portal.models import AuditEntry, DeviceUpdateRule, Pool, Site, TestDevice
from portal.services.audit import Actor
from portal.services.rules import rule_approve, rule_set_pending
from tests.factories import CX600
from tests.factories import RULE_A as RULE_ID

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

RULES = "/admin/portal/deviceupdaterule/"
TEST_DEVICES = "/admin/portal/testdevice/"
AUDIT_TRAIL = "/admin/portal/auditentry/"
FIRST = "4.0.7577.4387"
SECOND = "4.0.7577.5000"
# Packages come in from the command line; its actor is told apart from the signed-in user.
IMPORTER = Actor.system("manage.py (tests)")

Screenshot = Callable[[str], Path]  # the conftest's screenshot fixture
LogIn = Callable[[User], None]  # the conftest's log_in fixture


@pytest.fixture
def default_pool(transactional_db: None) -> Pool:
    """The fresh install's pool (a flush by an earlier transactional test removed it)."""
    site, _ = Site.objects.get_or_create(name="Default")
    pool, _ = Pool.objects.get_or_create(
        fqdn=settings.SERVER_FQDN,
        defaults={"site": site, "internal_web_fqdn": settings.SERVER_FQDN},
    )
    return pool


def import_version(pool: Pool, version: str) -> DeviceUpdateRule:
    """What importing a CX600 package of ``version`` does to the pool's rule."""
    rule, changed = rule_set_pending(
        pool=pool, rule_id=RULE_ID, device_class=CX600, version=version, actor=IMPORTER
    )
    assert changed
    return rule


def shown_message(text: str) -> re.Pattern[str]:
    """A message as the list shows it, whether or not its first letter is capitalised.

    Django's admin/base.html renders ``message|capfirst``; the project's base_site.html
    shows messages as written, which test_messages_name_the_rule_as_people_read_it pins.
    """
    return re.compile(f"^[{text[:1].lower()}{text[:1].upper()}]{re.escape(text[1:])}$")


def versions(rule: DeviceUpdateRule) -> tuple[str, str, str, bool]:
    """(pending, approved, restore, restored) as stored now."""
    rule.refresh_from_db()
    return (rule.pending_version, rule.approved_version, rule.restore_version, rule.restored)


def rule_row(page: Page, rule: DeviceUpdateRule) -> Locator:
    return page.locator("#result_list tbody tr").filter(has_text=rule.name)


def expect_versions_shown(
    row: Locator, *, pending: str, approved: str, restore: str, state: str
) -> None:
    """The list's version columns; an empty version shows as the admin's "-"."""
    for column, value in (
        ("pending_version", pending),
        ("approved_version", approved),
        ("restore_version", restore),
        ("state", state),
    ):
        cell = row.locator(f"td.field-{column}")
        expect(cell).to_have_text(value or "-")


def confirm_rule_action(
    page: Page,
    screenshot: Screenshot,
    *,
    rule: DeviceUpdateRule,
    action: str,
    step: str,
    effect: str,
) -> None:
    """Select ``rule`` in the list, run ``action``, check the confirmation page, confirm."""
    page.goto(RULES)
    rule_row(page, rule).locator("input.action-select").check()
    page.locator("select[name=action]").select_option(label=action)
    page.locator("button[name=index]").click()

    preview = page.locator("#rule-action-preview tbody tr")
    expect(page.get_by_text("what will reach phones, rule by rule")).to_be_visible()
    expect(preview).to_have_count(1)
    expect(preview.locator("td")).to_have_text(
        [rule.name, rule.device_class, str(rule.state.label), effect]
    )
    screenshot(f"{step}-confirmation")
    page.get_by_role("button", name="Yes, I’m sure").click()
    expect(page).to_have_url(re.compile(f"{RULES}$"))


def add_lab_phone(page: Page, screenshot: Screenshot) -> None:
    """Fill in and save the add test device form: global scope, MAC with dashes."""
    page.goto(TEST_DEVICES)
    page.get_by_role("link", name="Add test device").click()
    expect(page).to_have_url(re.compile(f"{TEST_DEVICES}add/$"))
    expect(page.get_by_label("Scope:")).to_have_value("global")
    page.get_by_label("Name:", exact=True).fill("Lab phone")
    page.get_by_label("Identifier type:").select_option("MACAddress")
    page.get_by_label("Identifier:", exact=True).fill("00-04-F2-11-22-33")
    screenshot("test-device-form")
    page.get_by_role("button", name="Save", exact=True).click()
    expect(page).to_have_url(re.compile(f"{TEST_DEVICES}$"))


def approve_then_restore(page: Page, screenshot: Screenshot, pool: Pool) -> DeviceUpdateRule:
    """Approve the first version, import and approve a second, restore the first."""
    rule = import_version(pool, FIRST)
    confirm_rule_action(
        page,
        screenshot,
        rule=rule,
        action="Approve selected rules",
        step="approve-first",
        effect=f"everyone gets {FIRST} (was nothing), test devices follow",
    )
    success = page.locator("ul.messagelist li.success")
    expect(success).to_have_text([shown_message(f"{rule.name}: approved")])
    expect_versions_shown(
        rule_row(page, rule), pending="", approved=FIRST, restore="", state="approved"
    )
    screenshot("approved-first")
    assert versions(rule) == ("", FIRST, "", False)

    rule = import_version(pool, SECOND)
    confirm_rule_action(
        page,
        screenshot,
        rule=rule,
        action="Approve selected rules",
        step="approve-second",
        effect=f"everyone gets {SECOND} (was {FIRST}), test devices follow;"
        f" {FIRST} kept for a restore",
    )
    expect(success).to_have_text([shown_message(f"{rule.name}: approved")])
    expect_versions_shown(
        rule_row(page, rule), pending="", approved=SECOND, restore=FIRST, state="approved"
    )
    assert versions(rule) == ("", SECOND, FIRST, False)

    rule.refresh_from_db()
    confirm_rule_action(
        page,
        screenshot,
        rule=rule,
        action="Restore selected rules",
        step="restore",
        effect=f"everyone goes back to {FIRST} (was {SECOND}), test devices follow",
    )
    expect(success).to_have_text([shown_message(f"{rule.name}: restored")])
    expect_versions_shown(
        rule_row(page, rule), pending="", approved=FIRST, restore="", state="restored"
    )
    screenshot("restored")
    return rule


def test_administrator_adds_a_test_device_through_the_form(
    page: Page, screenshot: Screenshot, log_in: LogIn, administrator: User
) -> None:
    log_in(administrator)
    screenshot("signed-in")

    add_lab_phone(page, screenshot)

    expect(page.locator("ul.messagelist li.success")).to_contain_text("was added successfully")
    row = page.locator("#result_list tbody tr").filter(has_text="Lab phone")
    expect(row).to_have_count(1)
    expect(row.locator("td.field-scope_display")).to_have_text("global")
    expect(row.locator("td.field-identifier_type")).to_have_text("MAC address")
    expect(row.locator("td.field-identifier")).to_have_text("0004F2112233")
    screenshot("test-device-listed")
    device = TestDevice.objects.get()
    assert (device.site, device.name, device.identifier_type, device.identifier) == (
        None,
        "Lab phone",
        "MACAddress",
        "0004F2112233",
    )


def test_administrator_approves_then_restores_through_the_confirmation_page(
    page: Page, screenshot: Screenshot, log_in: LogIn, administrator: User, default_pool: Pool
) -> None:
    log_in(administrator)

    rule = approve_then_restore(page, screenshot, default_pool)

    assert versions(rule) == ("", FIRST, "", True)
    assert DeviceUpdateRule.objects.count() == 1


def test_audit_trail_shows_each_change_with_its_actor(
    page: Page, screenshot: Screenshot, log_in: LogIn, administrator: User, default_pool: Pool
) -> None:
    log_in(administrator)
    add_lab_phone(page, screenshot)
    approve_then_restore(page, screenshot, default_pool)

    page.goto(AUDIT_TRAIL)

    rows = page.locator("#result_list tbody tr")
    # Newest first.
    # In words; the codes are on each entry's page, in the API and in the CSV.
    expect(rows.locator("td.field-what")).to_have_text(
        [
            "Rule restored",
            "Rule approved",
            "Rule's pending version imported",
            "Rule approved",
            "Rule created",
            "Test device added",
        ]
    )
    expect(rows.locator("td.field-actor_name")).to_have_text(
        ["ada", "ada", IMPORTER.name, "ada", IMPORTER.name, "ada"]
    )
    screenshot("audit-trail")


def test_helpdesk_sees_rules_without_actions_and_cannot_add_test_devices(
    page: Page, screenshot: Screenshot, log_in: LogIn, helpdesk: User, default_pool: Pool
) -> None:
    rule = import_version(default_pool, FIRST)
    log_in(helpdesk)

    page.goto(RULES)

    expect_versions_shown(
        rule_row(page, rule), pending=FIRST, approved="", restore="", state="pending"
    )
    expect(page.locator("select[name=action]")).to_have_count(0)
    expect(page.locator("input.action-select")).to_have_count(0)
    expect(page.locator("button[name=index]")).to_have_count(0)
    screenshot("rules-read-only")

    page.goto(TEST_DEVICES)
    expect(page.locator("#content h1")).to_have_text("Select test device to view")
    expect(page.get_by_role("link", name="Add test device")).to_have_count(0)

    response = page.goto(f"{TEST_DEVICES}add/")

    assert response is not None
    assert response.status == 403
    screenshot("add-test-device-forbidden")
    assert not TestDevice.objects.exists()


def test_approve_without_a_pending_version_is_refused_and_changes_nothing(
    page: Page, screenshot: Screenshot, log_in: LogIn, administrator: User, default_pool: Pool
) -> None:
    rule = rule_approve(rule=import_version(default_pool, FIRST), actor=IMPORTER)
    audit_before = list(AuditEntry.objects.values_list("pk", flat=True))
    log_in(administrator)

    page.goto(RULES)
    rule_row(page, rule).locator("input.action-select").check()
    page.locator("select[name=action]").select_option(label="Approve selected rules")
    page.locator("button[name=index]").click()

    refused = page.locator("#rule-action-preview tbody tr.refused")
    expect(refused).to_have_count(1)
    expect(refused).to_contain_text("refused: no pending version to approve")
    expect(page.get_by_text("1 rule will be refused and left as it is.")).to_be_visible()
    screenshot("refused-confirmation")
    page.get_by_role("button", name="Yes, I’m sure").click()

    expect(page.locator("ul.messagelist li.error")).to_have_text(
        [shown_message(f"{rule.name}: nothing to approve (no pending version)")]
    )
    expect(page.locator("ul.messagelist li.success")).to_have_count(0)
    expect_versions_shown(
        rule_row(page, rule), pending="", approved=FIRST, restore="", state="approved"
    )
    screenshot("refused-message")
    assert versions(rule) == ("", FIRST, "", False)
    assert list(AuditEntry.objects.values_list("pk", flat=True)) == audit_before


def test_messages_name_the_rule_as_people_read_it(
    page: Page, screenshot: Screenshot, log_in: LogIn, administrator: User, default_pool: Pool
) -> None:
    rule = import_version(default_pool, FIRST)
    log_in(administrator)

    confirm_rule_action(
        page,
        screenshot,
        rule=rule,
        action="Cancel pending versions of selected rules",
        step="cancel-pending",
        effect=f"test devices go back to nothing ({FIRST} cancelled)",
    )

    screenshot("cancelled")
    assert versions(rule) == ("", "", "", False)
    expect(page.locator("ul.messagelist li.success")).to_have_text(
        [f"{rule.name}: pending version cancelled"], timeout=2_000
    )
