"""Every changelist fits its page at 1280 and 1440 px: no table wider than its
container, the essential columns there, a screenshot of each list at each width."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
from django.conf import settings
from django.contrib import admin
from django.contrib.auth.models import User
from django.urls import reverse
from django.utils import timezone
from playwright.sync_api import Page, expect

from phones.choices import Channel, DeviceState
from phones.models import Device
from portal.choices import ImportStatus
from portal.device_class import RuleClass
from portal.models import ImportJob, Pool, Site
from portal.services.audit import Actor
from portal.services.rules import rule_set_pending

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

LogIn = Callable[[User], None]
WIDTHS = (1280, 1440)
CX600 = RuleClass("UCPhone", "Polycom", "CX600", "Rev-1", "ENU", "CPE")
LONG_POOL = "pool01.a-long-subdomain-for-the-layout.example.org"
REFUSAL = (
    "the catalog of UCPhone/Polycom/CX600/Rev-1/ENU/4.0.7577.4387/CPE is signed by "
    "CN=Unknown Publisher, O=Nobody, C=XX, which is not a trusted publisher"
)
# The essential columns of the lists the issue names, as their header cells' classes.
ESSENTIAL = {
    "portal/deviceupdaterule": (
        "name",
        "approved_version",
        "pending_version",
        "restore_version",
        "state",
        "active_rollout",
    ),
    "portal/importjob": ("created_at", "actor_name", "package_name", "state", "reason"),
    "portal/auditentry": ("created_at", "actor_name", "what", "object", "reason"),
    "phones/device": (
        "phone",
        "phone_model",
        "installed_versions",
        "state",
        "last_seen",
        "last_server",
    ),
}


@pytest.fixture
def filled(transactional_db: None) -> None:
    """A row in the lists the issue names, with long values where long values occur."""
    site, _ = Site.objects.get_or_create(name="Default")
    pool = Pool.objects.create(fqdn=LONG_POOL, site=site, internal_web_fqdn=LONG_POOL)
    rule_set_pending(
        pool=pool,
        rule_id=uuid.UUID("2de8cbf6-8a1e-4bc0-9d9e-0b2b5a1c1f11"),
        device_class=CX600,
        version="4.0.7577.4387",
        actor=Actor.system("manage.py (tests)"),
    )
    job = ImportJob.objects.create(
        actor_name="ada",
        status=ImportStatus.FAILED,
        package_name="UCUpdates-CX600-4.0.7577.4387-a-rather-long-file-name.cab",
        package_size=123_456_789,
        package_sha256="a" * 64,
        step="verifying the catalogs",
        error=REFUSAL,
    )
    job.pools.add(pool)
    now = timezone.now()
    Device.objects.create(
        identity="MAC:0004F2112233",
        mac="0004F2112233",
        device_type="UCPhone",
        brand="Polycom",
        model="CX600",
        revision="Rev-1",
        locale="ENU",
        installed={"CPE": "4.0.7577.4363"},
        targets={"CPE": "4.0.7577.4387"},
        state=DeviceState.choices[0][0],
        first_seen=now - dt.timedelta(days=3),
        last_seen=now,
        last_user="sip:someone.with.a.long.name@example.org",
        last_channel=Channel.choices[0][0],
        last_server=settings.SERVER_FQDN,
    )


def changelists(user: User) -> list[str]:
    """The control panel's lists ``user`` may open, as the admin site registers them."""
    urls = []
    for model in admin.site._registry:
        opts = model._meta
        if user.has_perm(f"{opts.app_label}.view_{opts.model_name}") or user.has_perm(
            f"{opts.app_label}.change_{opts.model_name}"
        ):
            urls.append(reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist"))
    return sorted(urls)


def overflow(page: Page) -> dict[str, int] | None:
    """The results table's and its container's widths when the table is wider."""
    return page.evaluate(
        """() => {
            const table = document.querySelector('#result_list');
            if (!table) return null;
            const box = table.closest('.results') || table.parentElement;
            const page = document.documentElement;
            const wide = table.scrollWidth > box.clientWidth + 1
                || page.scrollWidth > page.clientWidth + 1;
            return wide ? {table: table.scrollWidth, container: box.clientWidth,
                           page: page.scrollWidth, viewport: page.clientWidth} : null;
        }"""
    )


@pytest.mark.usefixtures("filled")
def test_every_changelist_fits_at_1280_and_1440_px(
    page: Page,
    log_in: LogIn,
    administrator: User,
    output_dir: Path,
    axe_check: Callable[[], list[str]],
) -> None:
    log_in(administrator)
    lists = changelists(administrator)
    # Every list the administrator may open, the four among them.
    assert {f"/admin/{path}/" for path in ESSENTIAL} <= set(lists)
    wide: dict[str, dict[str, int]] = {}
    inaccessible: list[str] = []
    for width in WIDTHS:
        page.set_viewport_size({"width": width, "height": 900})
        for url in lists:
            page.goto(url)
            expect(page.locator("#content")).to_be_visible()
            name = url.strip("/").removeprefix("admin/").replace("/", "-")
            page.screenshot(path=str(output_dir / f"{width}-{name}.png"), full_page=True)
            measured = overflow(page)
            if measured is not None:
                wide[f"{width} {url}"] = measured
            if width == WIDTHS[0]:
                inaccessible += axe_check()
    assert wide == {}
    assert inaccessible == []


@pytest.mark.usefixtures("filled")
def test_the_named_lists_show_their_essential_columns_with_the_stored_values(
    page: Page, log_in: LogIn, administrator: User
) -> None:
    log_in(administrator)
    page.set_viewport_size({"width": 1280, "height": 900})
    for path, columns in ESSENTIAL.items():
        page.goto(f"/admin/{path}/")
        for column in columns:
            header = page.locator(f"#result_list thead th.column-{column}")
            expect(header).to_be_visible()
            box = header.bounding_box()
            assert box is not None
            assert box["x"] + box["width"] <= 1280

    page.goto("/admin/portal/deviceupdaterule/")
    row = page.locator("#result_list tbody tr")
    expect(row.locator("th.field-name, td.field-name")).to_have_text(
        f"Polycom CX600 Rev-1 ENU CPE on {LONG_POOL}"
    )
    expect(row.locator("td.field-pending_version")).to_have_text("4.0.7577.4387")
    expect(row.locator("td.field-state")).to_have_text("pending")

    page.goto("/admin/portal/importjob/")
    row = page.locator("#result_list tbody tr")
    expect(row.locator("td.field-size")).to_have_text("117.7 MiB")
    expect(row.locator("td.field-state")).to_have_text("failed")
    expect(row.locator("td.field-reason")).to_have_text(REFUSAL)

    page.goto("/admin/phones/device/")
    row = page.locator("#result_list tbody tr")
    expect(row.locator("th.field-phone, td.field-phone")).to_have_text("0004F2112233")
    expect(row.locator("td.field-phone_model")).to_have_text("Polycom CX600")
    expect(row.locator("td.field-last_server")).to_have_text(settings.SERVER_FQDN)

    page.goto("/admin/portal/auditentry/")
    row = page.locator("#result_list tbody tr").first
    expect(row.locator("td.field-what")).to_have_text("Rule created")
    expect(row.locator("td.field-object")).to_have_text(
        f"device update rule: Polycom CX600 Rev-1 ENU CPE on {LONG_POOL}"
    )
