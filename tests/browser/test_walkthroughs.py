"""The README's two walk-throughs, "See it work" then "A staged rollout", done from the
browser alone as `make run`'s administrator: every administrator's step through the
control panel's pages (not the commands), against a live server whose imports,
replication, observation job and e-mail a real Celery worker runs.

What is not a person's step is done as the service does it: simulated phones check in
(`simulate_phones`' fleet), the loader writes their records (one batch,
``spool_load_once``) and beat queues the observation job (``rollouts_observe_task``).
Each page the README names is photographed at 1280 and 1440 px under
``test-output/browser/test_the_readmes_walk_throughs_from_the_browser_alone/`` and
checked for horizontal overflow and by axe-core.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from django.conf import settings
from django.contrib.auth.models import User
from django.core.management import call_command
from playwright.sync_api import Page, expect
from pytest_django.fixtures import Settings
from pytest_django.live_server_helper import LiveServer

from deviceupdate_devtools.demo import DEMO_FACTORY_VERSION, DEMO_VERSIONS, demo_package_make
from deviceupdate_devtools.simulator import (
    DEMO_MODELS,
    Fleet,
    FleetConfig,
    RoundSummary,
    models_named,
)
from phones.decision import decision_tables
from phones.models import Device, RequestAudit
from phones.services.spool_loader import spool_load_once
from portal.choices import ReplicaState, RolloutState
from portal.models import (
    AuditEntry,
    DeviceLogConfiguration,
    DeviceUpdateRule,
    Pool,
    Rollout,
    Server,
    ServerFile,
    Site,
    UpdateFile,
)
from portal.services.audit import Actor
from portal.waves import bucket
from tests.browser.conftest import PASSWORD
from tests.conftest import wait_until
from tests.integration.conftest import decisions_refreshed, identity, observed_by_worker

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

StartWorker = Callable[..., subprocess.Popen[bytes]]
FIRST, SECOND = DEMO_VERSIONS  # "See it work" approves FIRST; the rollouts take SECOND
WIDTHS = (1280, 1440)
SEEN, ROLLED = 30, 200  # phones of the first walk-through (all models), then per model
RULES = "/admin/portal/deviceupdaterule/"


@dataclass
class Walk:
    """The browser, and what the pages it looked at showed."""

    page: Page
    output_dir: Path
    axe_check: Callable[[], list[str]]
    taken: int = 0
    overflowing: dict[str, str] = field(default_factory=dict)
    inaccessible: list[str] = field(default_factory=list)

    def look(self, step: str) -> None:
        """Photograph the page at each width, note any overflow, run axe at 1280 px."""
        self.taken += 1
        for width in WIDTHS:
            self.page.set_viewport_size({"width": width, "height": 900})
            self.page.screenshot(
                path=str(self.output_dir / f"{self.taken:02d}-{step}-{width}.png"), full_page=True
            )
            wide = self.page.evaluate(
                """() => {
                    const root = document.documentElement, limit = root.clientWidth + 1;
                    const wide = [...document.querySelectorAll('table, pre, img, canvas')]
                        .filter(e => e.getBoundingClientRect().right > limit)
                        .map(e => e.id || e.tagName.toLowerCase());
                    if (root.scrollWidth > limit) wide.unshift('page ' + root.scrollWidth);
                    return wide.join(', ');
                }"""
            )
            if wide:
                self.overflowing[f"{step} at {width} px"] = wide
        self.page.set_viewport_size({"width": WIDTHS[0], "height": 900})
        self.inaccessible += self.axe_check()


@pytest.fixture
def walk(page: Page, output_dir: Path, axe_check: Callable[[], list[str]]) -> Walk:
    return Walk(page, output_dir, axe_check)


@pytest.fixture
def this_server(settings: Settings, tmp_path: Path) -> Iterator[Server]:
    """A fresh install's topology, as its migrations make it: the site "Default", one
    pool and one server named after this machine (the live server answers as it), whose
    store is private to the test."""
    site, _ = Site.objects.get_or_create(name="Default")
    pool, _ = Pool.objects.get_or_create(
        fqdn=settings.SERVER_FQDN,
        defaults={"site": site, "internal_web_fqdn": settings.SERVER_FQDN},
    )
    server, _ = Server.objects.get_or_create(fqdn=settings.SERVER_FQDN, defaults={"pool": pool})
    assert list(Pool.objects.all()) == [pool]
    settings.SERVER_STORE_DIR = tmp_path / "store"
    decision_tables.reset()
    yield server
    decision_tables.reset()


@pytest.fixture
def make_run_admin(roles: None, monkeypatch: pytest.MonkeyPatch) -> User:
    """The administrator `make run` creates (`ensure_admin`), with its default address."""
    monkeypatch.setenv("DEVICEUPDATE_ADMIN_PASSWORD", PASSWORD)
    call_command("ensure_admin", stdout=None)
    return User.objects.get(username="admin")


@pytest.fixture
def demo_packages(tmp_path: Path) -> Iterator[list[Path]]:
    """`make run`'s two demo packages; their versions leave the central store after."""
    store = settings.CENTRAL_STORE_DIR / "DeviceUpdateStore" / "UCPhone"

    def clear() -> None:
        for version in DEMO_VERSIONS:
            for folder in store.glob(f"*/*/Rev-1/ENU/{version}"):
                shutil.rmtree(folder)

    clear()  # what an earlier, interrupted run may have left
    actor = Actor.system("make run")
    yield [
        demo_package_make(directory=tmp_path / "demo", version=version, actor=actor).path
        for version in DEMO_VERSIONS
    ]
    clear()


def counts(summary: RoundSummary) -> tuple[int, int, int, int]:
    return (summary.checks, summary.offers, summary.installs, summary.errors)


def test_the_readmes_walk_throughs_from_the_browser_alone(
    this_server: Server,
    walk: Walk,
    make_run_admin: User,
    demo_packages: list[Path],
    live_server: LiveServer,
    start_worker: StartWorker,
    tmp_path: Path,
) -> None:
    page = walk.page
    pool = this_server.pool
    start_worker(
        queues=["imports", this_server.queue, settings.CELERY_TASK_DEFAULT_QUEUE],
        broker_url=settings.CELERY_BROKER_URL,
        DEVICEUPDATE_SERVER_FQDN=this_server.fqdn,
        DEVICEUPDATE_SERVER_STORE_DIR=str(settings.SERVER_STORE_DIR),
    )

    def fleet(phones: int, model: str | None, installed: str, fail_percent: int = 0) -> Fleet:
        return Fleet(
            FleetConfig(
                url=live_server.url,
                phones=phones,
                models=models_named([model]) if model else DEMO_MODELS,
                installed_version=installed,
                concurrency=4,
                round_timeout=120,
                fail_percent=fail_percent,
            )
        )

    def import_package(package: Path, version: str, step: str) -> None:
        """Package imports → Import device update: upload, and watch the worker's verdict."""
        page.goto("/admin/portal/importjob/")
        page.get_by_role("link", name="Import device update").click()
        page.get_by_label("Update package (.cab):").set_input_files(package)
        expect(page.get_by_label(pool.fqdn)).to_be_checked()
        walk.look(f"{step}-import-form")
        page.get_by_role("button", name="Import", exact=True).click()
        expect(page).to_have_url(re.compile(r"/admin/portal/importjob/\d+/change/$"))
        page.evaluate("window.notReloaded = true")
        label = page.locator('#live-status [data-live-field="label"]')
        expect(label).to_have_text("succeeded", timeout=90_000)
        assert page.evaluate("window.notReloaded") is True
        # Stored; the page then follows the copy to this server's store, still unreloaded.
        reason = page.locator('#live-status [data-live-field="reason"]')
        expect(reason).to_have_text("verified on 1 of 1 server", timeout=120_000)
        assert page.evaluate("window.notReloaded") is True
        copies = ServerFile.objects.filter(server=this_server, file__version__version=version)
        assert list(copies.values_list("state", flat=True).distinct()) == [ReplicaState.VERIFIED]
        # Each model's image, description and catalog.
        assert copies.count() == UpdateFile.objects.filter(version__version=version).count() == 9
        decisions_refreshed()
        walk.look(f"{step}-imported")

    # -- See it work --------------------------------------------------------------------
    page.goto("/admin/")
    page.get_by_label("Username:").fill("admin")
    page.get_by_label("Password:").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page.locator("#user-tools")).to_contain_text("admin")
    walk.look("index")

    # LogFlushInterval 1 minute: a fresh install's first global log settings.
    page.goto("/admin/portal/devicelogconfiguration/")
    page.locator(".object-tools a.addlink").click()
    page.get_by_label("Scope:").select_option("global")
    page.get_by_label("LogFlushInterval (minutes):").fill("1")
    walk.look("log-settings-form")
    page.get_by_role("button", name="Save", exact=True).click()
    in_force = page.locator("#effective-log-configs tbody tr").filter(has_text="global")
    expect(in_force.locator("td").nth(2)).to_have_text("1 minute")  # scope, from, flush
    walk.look("log-settings")
    assert [
        (c.scope, c.log_flush_interval_minutes) for c in DeviceLogConfiguration.objects.all()
    ] == [("global", 1)]

    import_package(demo_packages[0], FIRST, "first")
    rules = DeviceUpdateRule.objects.filter(pool=pool).order_by("model")
    assert [(r.model, r.pending_version, r.approved_version) for r in rules] == [
        ("6725ip", FIRST, ""),
        ("CX600", FIRST, ""),
        ("CX700", FIRST, ""),
    ]
    page.goto(RULES)
    listed = page.locator("#result_list tbody tr")
    expect(listed).to_have_count(3)
    for rule in rules:
        row = listed.filter(has_text=rule.name)
        expect(row.locator("td.field-pending_version")).to_have_text(FIRST)
        expect(row.locator("td.field-state")).to_have_text("pending")
    walk.look("rules-pending")

    mixed = fleet(SEEN, None, DEMO_FACTORY_VERSION)
    assert counts(mixed.run_round()) == (SEEN, 0, 0, 0)  # only pending: nothing offered

    page.locator("#action-toggle").check()
    page.locator("select[name=action]").select_option(label="Approve selected rules")
    page.locator("button[name=index]").click()
    expect(page.locator("#rule-action-preview tbody tr")).to_have_count(3)
    walk.look("approve-confirmation")
    page.get_by_role("button", name="Yes, I’m sure").click()
    expect(page).to_have_url(re.compile(f"{RULES}$"))
    for rule in rules:
        expect(listed.filter(has_text=rule.name).locator("td.field-approved_version")).to_have_text(
            FIRST
        )
    walk.look("rules-approved")
    decisions_refreshed()

    assert counts(mixed.run_round()) == (SEEN, SEEN, SEEN, 0)
    assert counts(mixed.run_round()) == (SEEN, 0, 0, 0)
    spool_load_once()  # the loader's batch

    # The inventory, filtered by the version every phone now runs.
    page.goto("/admin/phones/device/")
    page.locator("#changelist-filter").get_by_role("link", name=FIRST).click()
    expect(page.locator("#result_list tbody tr")).to_have_count(SEEN)
    walk.look("inventory-first")
    page.goto("/admin/phones/requestaudit/")
    expect(page.locator(".paginator")).to_contain_text(f"{3 * SEEN} request")
    assert RequestAudit.objects.count() == 3 * SEEN
    walk.look("request-audit")
    page.goto("/admin/portal/auditentry/")
    expect(
        page.locator("#result_list tbody td.field-what").filter(has_text="Rule approved")
    ).to_have_count(3)
    walk.look("audit-trail")

    # -- A staged rollout ---------------------------------------------------------------
    import_package(demo_packages[1], SECOND, "second")
    cx600 = DeviceUpdateRule.objects.get(pool=pool, model="CX600")
    assert (cx600.pending_version, cx600.approved_version) == (SECOND, FIRST)

    def plan_in_waves(rule: DeviceUpdateRule, step: str) -> Rollout:
        """The rule's page → Approve in waves… → the plan → Yes, start the rollout."""
        page.goto(RULES)
        page.get_by_role("link", name=rule.name).click()
        walk.look(f"{step}-rule")
        page.get_by_role("link", name="Approve in waves…").click()
        page.get_by_label("Waves:").fill("10\n50\n100")
        page.get_by_label("Minimum soak (minutes):").fill("0")  # the README waits a minute
        page.get_by_label("Success gate (%):").fill("90")
        page.get_by_label("Minimum sample:").fill("3")
        walk.look(f"{step}-plan")
        page.get_by_role("button", name="Review the plan").click()
        expect(page.locator("#rollout-plan-preview li").first).to_be_visible()
        walk.look(f"{step}-plan-confirmation")
        page.get_by_role("button", name="Yes, start the rollout").click()
        rollout = Rollout.objects.get(rule=rule, state=RolloutState.RUNNING)
        expect(page.locator("#rollout-state")).to_contain_text(rollout.name)
        walk.look(f"{step}-rollout")
        page.get_by_role("link", name="Dashboard").click()
        expect(page.locator("#rollout-state")).to_contain_text("running")
        page.evaluate("window.notReloaded = true")
        decisions_refreshed()
        return rollout

    def wave_row(position: int) -> dict[str, str]:
        row = page.locator(f'#rollout-waves-table tr[data-wave="{position}"]')
        return {
            name: row.locator(f"td.{name}").inner_text()
            for name in ("offered", "downloaded", "running", "failed")
        }

    def in_reach(phones: Fleet, rule: DeviceUpdateRule, percent: int) -> set[int]:
        return {
            phone.index
            for phone in phones.phones
            if bucket(str(rule.rule_id), identity(phone.mac)) < percent * 100
        }

    rollout = plan_in_waves(cx600, "cx600")
    assert rollout.name == f"Rollout #{rollout.pk} of CX600 {SECOND}"
    # The CX600s of the first walk-through are among these: same MACs, running FIRST.
    cx600_phones = fleet(ROLLED, "CX600", FIRST)
    assert {p.mac for p in mixed.phones if p.model.model == "CX600"} <= {
        p.mac for p in cx600_phones.phones
    }

    def moved_past(position: int) -> Callable[[Rollout], bool]:
        """The next wave open, or after the last one the rollout completed."""
        if position == 2:
            return lambda r: r.state == RolloutState.COMPLETED
        return lambda r: r.current_wave == position + 1

    reached: set[int] = set()
    for position, percent in enumerate((10, 50, 100)):
        wave = in_reach(cx600_phones, cx600, percent) - reached
        reached |= wave
        assert counts(cx600_phones.run_round()) == (ROLLED, len(wave), len(wave), 0)
        assert counts(cx600_phones.run_round()) == (ROLLED, 0, 0, 0)  # they report it
        rollout = observed_by_worker(
            rollout, moved_past(position), f"rollout past wave {position + 1}"
        )
        # The open dashboard follows, without a reload.
        running = page.locator(f'#rollout-waves-table tr[data-wave="{position}"] td.running')
        expect(running).to_have_text(str(len(wave)))
        # Counts that reconcile: each of the wave's phones was offered, fetched and runs it.
        n = str(len(wave))
        assert wave_row(position) == {"offered": n, "downloaded": n, "running": n, "failed": "0"}
        walk.look(f"cx600-dashboard-wave-{position + 1}")
    expect(page.locator("#rollout-state")).to_contain_text("completed")
    assert page.evaluate("window.notReloaded") is True
    assert cx600_phones.versions() == {"Polycom CX600": {SECOND: ROLLED}}
    cx600.refresh_from_db()
    assert (cx600.approved_version, cx600.pending_version, cx600.restore_version) == (
        SECOND,
        "",
        FIRST,
    )

    # -- A rollout that goes wrong stops by itself --------------------------------------
    cx700 = DeviceUpdateRule.objects.get(pool=pool, model="CX700")
    rollout = plan_in_waves(cx700, "cx700")
    failing = fleet(ROLLED, "CX700", FIRST, fail_percent=30)
    wave = in_reach(failing, cx700, 10)
    fails = {p.index for p in failing.phones if p.fails} & wave
    assert fails, "the failing share must meet the first wave"
    summary = failing.run_round()
    assert (summary.offers, summary.installs) == (len(wave), len(wave) - len(fails))
    failing.run_round()  # the failing phones report the old version once more
    rollout = observed_by_worker(
        rollout, lambda r: r.state == RolloutState.HALTED, "the automatic halt"
    )
    assert rollout.current_wave == 0
    # The dashboard, open all along, shows the halt and why first, and the failed phones.
    state = page.locator("#rollout-state")
    expect(state).to_contain_text("halted")
    expect(state).to_contain_text(f"Halted because: {rollout.reason}")
    failed_rows = page.locator("#rollout-failed-table tbody tr")
    expect(failed_rows).to_have_count(len(fails))
    failed_macs = {identity(p.mac) for p in failing.phones if p.index in fails}
    assert {failed_rows.nth(i).get_attribute("data-identity") for i in range(len(fails))} == (
        failed_macs
    )
    assert page.evaluate("window.notReloaded") is True
    walk.look("cx700-dashboard-halted")
    assert counts(failing.run_round()) == (ROLLED, 0, 0, 0)  # nobody new is offered it

    # The administrators' e-mail, in the worker's log (the console backend), once the
    # worker has run the task the halt queued.
    subject = f"Subject: [Device Update] {rollout.name} halted on {pool.fqdn}"

    def mailed() -> str:
        """The workers' logs, long header lines unfolded (RFC 5322: a break before blanks)."""
        logs = "\n".join(log.read_text() for log in tmp_path.glob("worker-*.log"))
        return re.sub(r"\r?\n[ \t]+", " ", logs)

    wait_until(lambda: subject in mailed(), "the halt's e-mail in the worker's log", seconds=30)
    assert "To: admin@localhost" in mailed()

    # A failed phone's page, from the dashboard's list: what it was offered and runs.
    failed_rows.first.locator("a.inventory-link").click()
    expect(page.locator("#content")).to_contain_text(SECOND)
    walk.look("cx700-failed-phone")
    page.go_back()

    # Restore, from the dashboard's button, through its confirmation page.
    page.locator("#rollout-buttons").get_by_role("link", name="Restore…").click()
    walk.look("cx700-restore-confirmation")
    page.get_by_label("Reason:").fill("30 % of the wave never installed it")
    page.get_by_role("button", name="Yes, restore").click()
    expect(page.locator("#rollout-state")).to_contain_text("restored")
    walk.look("cx700-restored")
    decisions_refreshed()
    took = len(wave) - len(fails)
    assert counts(failing.run_round()) == (ROLLED, took, took, 0)
    assert failing.versions() == {"Polycom CX700": {FIRST: ROLLED}}
    spool_load_once()  # the loader's batch
    assert Device.objects.filter(model="CX700").count() == ROLLED

    assert list(
        AuditEntry.objects.filter(object_type="portal.rollout", object_id=str(rollout.pk))
        .order_by("id")
        .values_list("action", "actor_name")
    ) == [
        ("portal.rollout.planned", "admin"),
        ("portal.rollout.halted", "rollout watch"),
        ("portal.rollout.restored", "admin"),
    ]
    # The fleet at a glance, and the site the README's maintenance windows are set on.
    page.goto("/admin/dashboards/")
    expect(page.locator("#content")).to_contain_text("Polycom CX700")
    walk.look("fleet-dashboard")
    page.goto(f"/admin/portal/site/{pool.site_id}/change/")
    expect(page.locator("#content")).to_contain_text(pool.site.name)
    walk.look("site")

    findings = [f"{where}: wider than the page: {what}" for where, what in walk.overflowing.items()]
    (walk.output_dir / "findings.txt").write_text("\n".join(findings + walk.inaccessible) + "\n")
    assert walk.overflowing == {}
    assert walk.inaccessible == []
