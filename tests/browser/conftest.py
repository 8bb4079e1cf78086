"""Real headless Chromium (Debian's package) driven by Playwright against a live server.

Each test gets its own Playwright, browser and context, closed in its teardown: the
sync API keeps an event loop running in the main thread only while Playwright is
open, so the ``DJANGO_ALLOW_ASYNC_UNSAFE`` switch it needs is scoped to that time.
"""

from __future__ import annotations

import contextlib
import re
import shutil
import subprocess
from collections.abc import Callable, Generator, Iterator
from pathlib import Path

import django.apps
import pytest
from django.contrib.auth.models import User
from django.db import connections
from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import Page, expect, sync_playwright
from pytest_django.live_server_helper import LiveServer

from portal.roles import sync_role_permissions
from tests.conftest import missing_service

OUTPUT_DIR = Path(__file__).resolve().parents[2] / "test-output" / "browser"
PASSWORD = "correct horse battery"  # what tests.conftest gives its users, set again below
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


_REPORTS = pytest.StashKey[dict[str, pytest.TestReport]]()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Keep each phase's report on the test, so the page fixture can tell a failure."""
    report = yield
    item.stash.setdefault(_REPORTS, {})[report.when] = report
    return report


@pytest.fixture
def chromium_path() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        missing_service("needs Debian's chromium (apt-get install chromium)")
    assert path is not None
    return path


@pytest.fixture
def output_dir(request: pytest.FixtureRequest) -> Path:
    """test-output/browser/<test name>/, emptied first so it holds this run's pictures."""
    name = re.sub(r"[^A-Za-z0-9_.-]+", "-", request.node.name)
    directory = OUTPUT_DIR / name
    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir(parents=True)
    return directory


@pytest.fixture
def page(
    chromium_path: str,
    live_server: LiveServer,
    output_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
    request: pytest.FixtureRequest,
) -> Iterator[Page]:
    """A fresh page whose relative URLs go to the live server; a failure is photographed."""
    # Playwright's sync API runs its event loop in this thread (greenlets switch between
    # it and the test), so Django's async-safety check would refuse the test's own,
    # synchronous ORM calls. No coroutine here touches the database, so this is safe;
    # monkeypatch takes the switch away again after Playwright has stopped.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_path, args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(
                base_url=live_server.url, viewport={"width": 1920, "height": 1080}
            )
            try:
                context.set_default_timeout(15_000)
                expect.set_options(timeout=15_000)
                browser_page = context.new_page()
                yield browser_page
                call = request.node.stash.get(_REPORTS, {}).get("call")
                if call is not None and call.failed:
                    # The page as the failure left it; a dead browser must not hide the failure.
                    with contextlib.suppress(PlaywrightError):
                        browser_page.screenshot(path=str(output_dir / "failed.png"), full_page=True)
            finally:
                context.close()
        finally:
            browser.close()
            # While Playwright's event loop runs, the ORM keeps this context's database
            # connection apart from the test's own; close it here, inside that context,
            # or PostgreSQL keeps the session and cannot drop the test database.
            connections.close_all()


@pytest.fixture
def screenshot(page: Page, output_dir: Path) -> Callable[[str], Path]:
    """``screenshot("approve-confirmation")`` writes ``NN-approve-confirmation.png``."""
    taken: list[Path] = []

    def take(step: str) -> Path:
        path = output_dir / f"{len(taken) + 1:02d}-{step}.png"
        page.screenshot(path=str(path), full_page=True)
        taken.append(path)
        return path

    return take


# The root fixtures look the role groups up; a transactional test flushed them (they
# come from a data migration), so put the groups back first.
@pytest.fixture
def roles(transactional_db: None) -> None:
    sync_role_permissions(django.apps.apps)


@pytest.fixture
def administrator(roles: None, administrator: User) -> User:
    administrator.set_password(PASSWORD)
    administrator.save(update_fields=["password"])
    return administrator


@pytest.fixture
def helpdesk(roles: None, helpdesk: User) -> User:
    helpdesk.set_password(PASSWORD)
    helpdesk.save(update_fields=["password"])
    return helpdesk


@pytest.fixture
def log_in(page: Page) -> Callable[[User], None]:
    """``log_in(user)`` signs in through the control panel's own login form."""

    def sign_in(user: User) -> None:
        page.goto("/admin/")
        expect(page).to_have_url(re.compile(r"/admin/login/\?next=/admin/$"))
        page.get_by_label("Username:").fill(user.get_username())
        page.get_by_label("Password:").fill(PASSWORD)
        page.get_by_role("button", name="Log in").click()
        expect(page).to_have_url(re.compile(r"/admin/$"))
        expect(page.locator("#user-tools")).to_contain_text(user.get_username())

    return sign_in


# axe-core, the accessibility engine, as its npm package ships it: tests/browser/
# package.json pins it, ``npm ci`` (run by .ci/run, or here when missing) installs it.
BROWSER_TESTS = Path(__file__).resolve().parent
AXE_SOURCE = BROWSER_TESTS / "node_modules" / "axe-core" / "axe.min.js"
# What blocks a person: the two worst of axe's four impact levels.
AXE_BLOCKING = ("serious", "critical")


@pytest.fixture(scope="session")
def axe_source() -> Path:
    if not AXE_SOURCE.exists():
        npm = shutil.which("npm")
        if npm is None:
            missing_service("needs npm for axe-core (apt-get install npm)")
        assert npm is not None
        subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund", "--prefix", str(BROWSER_TESTS)],
            check=True,
            capture_output=True,
        )
    return AXE_SOURCE


@pytest.fixture
def axe_check(axe_source: Path, page: Page) -> Callable[[], list[str]]:
    """``axe_check()``: the serious or critical violations on the page as it is now,
    one line each (rule, impact, the first offending elements)."""

    def check() -> list[str]:
        if not page.evaluate("typeof window.axe !== 'undefined'"):
            page.add_script_tag(path=str(axe_source))
        result = page.evaluate("async () => (await window.axe.run(document)).violations")
        return [
            f"{page.url}: {violation['id']} ({violation['impact']}): "
            + "; ".join(
                " ".join(node["target"]) if isinstance(node["target"], list) else str(node)
                for node in violation["nodes"][:3]
            )
            for violation in result
            if violation["impact"] in AXE_BLOCKING
        ]

    return check
