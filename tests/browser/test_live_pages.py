"""An import's page follows the worker: a refused import's reason appears on the open
page, without a reload, once the worker has given its verdict, and the report below
it (state, step, error) says the same."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from django.contrib.auth.models import User
from playwright.sync_api import Page, expect

from portal.choices import ImportStatus
from portal.models import ImportJob

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

LogIn = Callable[[User], None]
Screenshot = Callable[[str], Path]
REFUSAL = "the file is neither a Microsoft cabinet nor a security catalog"


def test_a_refused_imports_reason_appears_without_a_reload(
    page: Page,
    log_in: LogIn,
    administrator: User,
    screenshot: Screenshot,
    axe_check: Callable[[], list[str]],
) -> None:
    job = ImportJob.objects.create(
        actor_name="ada", package_name="notes.txt", package_size=20, package_sha256="0" * 64
    )
    log_in(administrator)
    page.set_viewport_size({"width": 1280, "height": 900})
    page.goto(f"/admin/portal/importjob/{job.pk}/change/")
    live = page.locator("#live-status")
    expect(live.locator('[data-live-field="label"]')).to_have_text("queued")
    expect(live.locator('[data-live-field="reason"]')).to_have_text("waiting for a worker")
    status = page.locator(".field-status .readonly")
    expect(status).to_have_text("queued")
    screenshot("queued")
    # A marker that a reload would wipe out.
    page.evaluate("window.notReloaded = true")

    # The worker's verdict, as package_import_run writes it.
    ImportJob.objects.filter(pk=job.pk).update(
        status=ImportStatus.FAILED, progress=10, step="unpacking", error=REFUSAL
    )

    expect(live.locator('[data-live-field="reason"]')).to_have_text(REFUSAL)
    expect(live.locator('[data-live-field="label"]')).to_have_text("failed")
    expect(live.locator('[data-live-field="label"]')).to_have_class("state state-bad")
    expect(live).to_have_attribute("data-live-finished", "true")
    # The report below follows: the page put its fresh details in place of the old.
    expect(status).to_have_text("failed")
    expect(page.locator(".field-error .readonly")).to_have_text(REFUSAL)
    expect(page.locator(".field-step .readonly")).to_have_text("unpacking")
    expect(page.locator("#content-main")).not_to_contain_text("queued")
    expect(page.locator("#content-main")).not_to_contain_text("reload the page")
    assert page.evaluate("window.notReloaded") is True
    screenshot("refused")
    assert axe_check() == []
    # Keyboard focus is visible on the page's actions (portal/admin.css :focus-visible).
    page.keyboard.press("Tab")
    focused = page.evaluate(
        "() => { const e = document.activeElement; const s = getComputedStyle(e);"
        " return [e.tagName, s.outlineStyle, s.outlineWidth]; }"
    )
    assert focused == ["A", "solid", "3px"]
