"""The dashboards in real headless Chromium: each page draws its charts with the
project's own Chart.js, and every chart holds the numbers the database holds (read
back from the drawn chart objects); a screenshot of each is kept under test-output."""

from __future__ import annotations

import datetime as dt
import json
import re
import uuid
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.utils import timezone
from playwright.sync_api import Page, expect

from phones.choices import DeviceState, ObservedState
from phones.models import Device, DeviceOutcome, RolloutSample
from portal.models import DeviceUpdateRule, Pool, Rollout, Server, Site
from portal.services.audit import Actor
from portal.services.fleet import device_group_save
from portal.services.rollout_plans import RolloutPlan, WavePlan
from portal.services.rollouts import rollout_advance, rollout_plan

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

Screenshot = Callable[[str], Path]  # the conftest's screenshot fixture
LogIn = Callable[[User], None]  # the conftest's log_in fixture

SETUP = Actor.system("tests")
SERVER = "fe01.example.org"
OLD, NEW = "4.0.7577.4387", "4.0.7577.5000"
START = timezone.now().replace(microsecond=0) - dt.timedelta(hours=6)
# model -> [(installed version or None, state, phones)]
FLEET: dict[str, list[tuple[str | None, str, int]]] = {
    "CX600": [
        (OLD, DeviceState.UP_TO_DATE, 28),
        (OLD, DeviceState.UPDATE_OFFERED, 12),
        (NEW, DeviceState.UP_TO_DATE, 15),
        (None, DeviceState.NO_RULE, 2),
    ],
    "CX700": [
        ("4.0.7577.4363", DeviceState.UPDATE_OFFERED, 9),
        (OLD, DeviceState.UP_TO_DATE, 21),
        (OLD, DeviceState.HELD, 3),
    ],
    "CX3000": [("1.2.0.10", DeviceState.DEFERRED, 6), ("1.2.0.9", DeviceState.AWAITING_COPY, 4)],
}

# The chart as drawn: labels and each dataset's label and numbers.
CHART_JS = """canvasId => {
  const chart = Chart.getChart(document.getElementById(canvasId));
  if (!chart) { return null; }
  return {
    type: chart.config.type,
    labels: chart.data.labels,
    datasets: chart.data.datasets.map(d => ({label: d.label, data: d.data})),
  };
}"""
# Pixels the chart painted (not transparent): a drawn chart, not an empty canvas.
PAINTED_JS = """canvasId => {
  const canvas = document.getElementById(canvasId);
  const pixels = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data;
  let painted = 0;
  for (let i = 3; i < pixels.length; i += 4) { if (pixels[i] > 0) { painted++; } }
  return painted;
}"""


@pytest.fixture
def pool(transactional_db: None) -> Pool:
    site, _ = Site.objects.get_or_create(name="Default")
    pool = Pool.objects.create(
        site=site, fqdn="pool01.example.org", internal_web_fqdn="pool01.example.org"
    )
    Server.objects.create(pool=pool, fqdn=SERVER)
    return pool


@pytest.fixture
def phones(pool: Pool) -> list[Device]:
    now = timezone.now()
    rows: list[Device] = []
    for model, groups in FLEET.items():
        for version, state, count in groups:
            for _ in range(count):
                mac = f"0004F2{len(rows):06X}"
                rows.append(
                    Device(
                        identity=f"MAC:{mac}",
                        mac=mac,
                        device_type="UCPhone",
                        brand="Polycom",
                        model=model,
                        revision="Rev-1",
                        locale="ENU",
                        installed={"CPE": version} if version else {},
                        state=state,
                        first_seen=now,
                        last_seen=now,
                        last_channel="internal",
                        last_server=SERVER,
                    )
                )
    return Device.objects.bulk_create(rows)


@pytest.fixture
def rollout(pool: Pool, phones: list[Device]) -> Rollout:
    """CX600 OLD -> NEW in three waves: group "lab" (5 phones), group "pilot" (15), then
    100 %; now at wave 2. Lab: 5 running; pilot: 9 running, 2 failed, 4 only offered."""
    rule = DeviceUpdateRule.objects.create(
        pool=pool,
        rule_id=uuid.UUID("2de8cbf6-8a1e-4bc0-9d9e-0b2b5a1c1f11"),
        device_type="UCPhone",
        brand="Polycom",
        model="CX600",
        revision="Rev-1",
        locale="ENU",
        update_type="CPE",
        approved_version=OLD,
        pending_version=NEW,
    )
    cx600 = [p for p in phones if p.model == "CX600"]
    lab, pilot = cx600[:5], cx600[5:20]
    device_group_save(name="lab", members=[p.mac for p in lab], actor=SETUP)
    device_group_save(name="pilot", members=[p.mac for p in pilot], actor=SETUP)
    plan = RolloutPlan(
        waves=(WavePlan(groups=("lab",)), WavePlan(groups=("pilot",)), WavePlan(percent=100))
    )
    rollout = rollout_plan(rule=rule, plan=plan, actor=SETUP, now=START)
    rollout = rollout_advance(rollout=rollout, actor=SETUP, now=START + dt.timedelta(hours=2))

    def outcome(device: Device, state: str, at: dt.datetime, failure: str = "") -> None:
        DeviceOutcome.objects.create(
            identity=device.identity,
            rule=rule,
            version=NEW,
            state=state,
            offered_first=at,
            offered_last=at,
            offered_count=1,
            downloaded_at=at if state != ObservedState.OFFERED else None,
            running_at=at if state == ObservedState.RUNNING else None,
            failed_at=at if state == ObservedState.FAILED else None,
            failure=failure,
            updated_at=at,
        )

    late = START + dt.timedelta(hours=4)
    for device in lab:
        outcome(device, ObservedState.RUNNING, START + dt.timedelta(minutes=40))
    for device in pilot[:9]:
        outcome(device, ObservedState.RUNNING, late)
    for device in pilot[9:11]:
        outcome(device, ObservedState.FAILED, late, "still reports 4.0.7577.4387")
    for device in pilot[11:]:
        outcome(device, ObservedState.OFFERED, late)
    samples = []
    for step in range(13):  # every 30 minutes for six hours
        at = START + dt.timedelta(minutes=30 * step)
        samples.append((0, at, 5, min(5, 2 * step + 1), min(5, max(0, 2 * step - 1)), 0))
        if step >= 4:
            pilot_step = step - 4
            samples.append(
                (
                    1,
                    at,
                    15,
                    min(15, 3 * pilot_step + 2),
                    min(9, max(0, 2 * pilot_step - 1)),
                    min(2, pilot_step // 3),
                )
            )
    RolloutSample.objects.bulk_create(
        RolloutSample(
            rollout=rollout,
            wave=wave,
            taken_at=at,
            planned=planned,
            offered=offered,
            running=running,
            failed=failed,
        )
        for wave, at, planned, offered, running, failed in samples
    )
    return rollout


def drawn(page: Page, canvas_id: str) -> dict[str, Any]:
    """The chart Chart.js drew on the canvas, once the page has drawn its charts."""
    expect(page.locator("body")).to_have_attribute("data-charts-drawn", "true")
    chart = page.evaluate(CHART_JS, canvas_id)
    assert chart is not None, f"no chart on #{canvas_id}"
    assert page.evaluate(PAINTED_JS, canvas_id) > 1000, f"#{canvas_id} is blank"
    return dict(chart)


def states_in_database() -> list[int]:
    counts = Counter(Device.objects.values_list("state", flat=True))
    return [counts[state] for state in DeviceState.values]


def test_fleet_dashboard_draws_versions_per_model_and_phones_by_state(
    page: Page, screenshot: Screenshot, log_in: LogIn, helpdesk: User, phones: list[Device]
) -> None:
    log_in(helpdesk)
    page.goto("/admin/dashboards/")

    versions = drawn(page, "chart-fleet-versions")
    assert versions["type"] == "bar"
    assert versions["labels"] == ["Polycom CX3000", "Polycom CX600", "Polycom CX700"]
    models = ["CX3000", "CX600", "CX700"]
    shown = {d["label"]: d["data"] for d in versions["datasets"]}
    assert shown == {
        **{
            f"CPE {version}": [
                Device.objects.filter(model=model, installed={"CPE": version}).count()
                for model in models
            ]
            for version in ("1.2.0.9", "1.2.0.10", "4.0.7577.4363", OLD, NEW)
        },
        "no version reported": [
            Device.objects.filter(model=model, installed={}).count() for model in models
        ],
    }
    assert shown[f"CPE {OLD}"] == [0, 40, 24]  # the fixture's own numbers, as a check
    assert list(shown) == [  # versions in version order
        "CPE 1.2.0.9",
        "CPE 1.2.0.10",
        "CPE 4.0.7577.4363",
        f"CPE {OLD}",
        f"CPE {NEW}",
        "no version reported",
    ]
    states = drawn(page, "chart-fleet-states")
    assert states["type"] == "doughnut"
    assert states["labels"] == DeviceState.values
    assert states["datasets"][0]["data"] == states_in_database()
    screenshot("fleet-dashboard")


def test_rollout_dashboard_draws_each_wave_over_time_and_lists_failed_phones(
    page: Page,
    screenshot: Screenshot,
    log_in: LogIn,
    administrator: User,
    rollout: Rollout,
) -> None:
    log_in(administrator)
    page.goto(f"/admin/dashboards/rollouts/{rollout.pk}/")

    now = drawn(page, "chart-rollout-now")
    assert now["labels"] == ["wave 1 (group:lab)", "wave 2 (group:pilot)", "wave 3 (100 %)"]
    assert {d["label"]: d["data"] for d in now["datasets"]} == {
        "planned": [5, 15, 37],
        "offered": [5, 15, 0],
        "downloaded": [5, 11, 0],
        "running": [5, 9, 0],
        "failed": [0, 2, 0],
    }
    for wave in (0, 1):
        chart = drawn(page, f"chart-wave-{wave}")
        rows = list(RolloutSample.objects.filter(rollout=rollout, wave=wave).order_by("taken_at"))
        assert chart["type"] == "line"
        assert chart["labels"] == [
            f"{timezone.localtime(row.taken_at):%Y-%m-%d %H:%M}" for row in rows
        ]
        assert {d["label"]: d["data"] for d in chart["datasets"]} == {
            field: [getattr(row, field) for row in rows]
            for field in ("planned", "offered", "running", "failed")
        }
    assert page.locator("#chart-wave-2").count() == 0  # wave 3 has no sample yet

    failed = page.locator("#rollout-failed-table tbody tr")
    expect(failed).to_have_count(2)
    identities = set(
        DeviceOutcome.objects.filter(state=ObservedState.FAILED).values_list("identity", flat=True)
    )
    assert set(failed.locator("th").all_inner_texts()) == identities
    screenshot("rollout-dashboard")

    first = failed.first.locator("th").inner_text()
    device = Device.objects.get(identity=first)
    failed.first.locator("a.inventory-link").click()
    expect(page).to_have_url(re.compile(f"/admin/phones/device/{device.pk}/change/$"))
    expect(page.locator("div.field-identity")).to_contain_text(first)


def test_index_draws_the_fleet_overview(
    page: Page, screenshot: Screenshot, log_in: LogIn, helpdesk: User, rollout: Rollout
) -> None:
    log_in(helpdesk)  # lands on the index

    states = drawn(page, "chart-overview-states")
    assert states["type"] == "doughnut"
    assert states["datasets"][0]["data"] == states_in_database()
    overview = page.locator("#fleet-overview")
    expect(overview.locator("#overview-pending tbody tr")).to_have_count(1)
    expect(overview.locator("#overview-pending a")).to_have_attribute(
        "href", f"/admin/portal/deviceupdaterule/{rollout.rule_id}/change/"
    )
    expect(overview.locator("#overview-rollouts li")).to_have_count(1)
    expect(overview.locator("#overview-rollouts li")).to_contain_text("wave 2 of 3")
    screenshot("admin-index")

    overview.locator("#overview-rollouts a").click()
    expect(page).to_have_url(re.compile(f"/admin/dashboards/rollouts/{rollout.pk}/$"))
    drawn(page, "chart-rollout-now")


# The drawn chart's numbers for one dataset, read in the page (for wait_for_function).
DATA_JS = """([canvasId, label]) => {
  const chart = Chart.getChart(document.getElementById(canvasId));
  const set = chart && chart.data.datasets.find(d => d.label === label);
  return set ? JSON.stringify(set.data) : null;
}"""


def test_fleet_dashboard_follows_the_database_without_a_reload(
    page: Page,
    log_in: LogIn,
    helpdesk: User,
    phones: list[Device],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("phones.admin.dashboards.REFRESH_MS", 200)
    log_in(helpdesk)
    page.goto("/admin/dashboards/")
    held = page.locator('#fleet-states-table tr[data-state="held"] td.count')
    expect(held).to_have_text("3")
    expect(page.locator("#fleet-summary")).to_contain_text("100 phones in the inventory")
    assert drawn(page, "chart-fleet-states")["datasets"][0]["data"] == states_in_database()
    page.evaluate("window.notReloaded = true")

    # Four CX3000 phones that were deferred are now held; one CX700 phone is new.
    deferred = Device.objects.filter(model="CX3000", state=DeviceState.DEFERRED)
    Device.objects.filter(pk__in=list(deferred.values_list("pk", flat=True)[:4])).update(
        state=DeviceState.HELD
    )
    template = Device.objects.filter(model="CX700").first()
    assert template is not None
    template.pk, template.identity, template.mac = None, "MAC:0004F2FFFFFF", "0004F2FFFFFF"
    template.save()

    expect(held).to_have_text("7")
    expect(page.locator("#fleet-summary")).to_contain_text("101 phones in the inventory")
    expected = json.dumps(states_in_database(), separators=(",", ":"))
    page.wait_for_function(
        f"args => ({DATA_JS})(args) === {json.dumps(expected)}",
        arg=["chart-fleet-states", "phones"],
    )
    assert page.evaluate("window.notReloaded") is True


def test_rollout_dashboard_follows_the_rollout_without_a_reload(
    page: Page,
    log_in: LogIn,
    administrator: User,
    rollout: Rollout,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("phones.admin.dashboards.REFRESH_MS", 200)
    log_in(administrator)
    page.goto(f"/admin/dashboards/rollouts/{rollout.pk}/")
    running = page.locator('#rollout-waves-table tr[data-wave="1"] td.running')
    expect(running).to_have_text("9")
    drawn(page, "chart-rollout-now")
    page.evaluate("window.notReloaded = true")

    # Two of the pilot's phones that were only offered now run the new version.
    offered = DeviceOutcome.objects.filter(state=ObservedState.OFFERED).order_by("identity")
    now = timezone.now()
    DeviceOutcome.objects.filter(pk__in=list(offered.values_list("pk", flat=True)[:2])).update(
        state=ObservedState.RUNNING, downloaded_at=now, running_at=now, updated_at=now
    )

    expect(running).to_have_text("11")
    page.wait_for_function(
        f"args => ({DATA_JS})(args) === '[5,11,0]'", arg=["chart-rollout-now", "running"]
    )
    assert page.evaluate("window.notReloaded") is True


# The Chart object drawn on a canvas, kept on window to tell "updated" from "drawn anew".
KEEP_CHART_JS = """([canvasId, name]) => {
  window[name] = Chart.getChart(document.getElementById(canvasId));
  return window[name] !== undefined;
}"""
SAME_CHART_JS = """([canvasId, name]) =>
  Chart.getChart(document.getElementById(canvasId)) === window[name]"""


def test_a_waves_first_sample_adds_its_chart_without_a_reload(
    page: Page,
    log_in: LogIn,
    administrator: User,
    rollout: Rollout,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("phones.admin.dashboards.REFRESH_MS", 200)
    log_in(administrator)
    page.goto(f"/admin/dashboards/rollouts/{rollout.pk}/")
    drawn(page, "chart-wave-1")
    expect(page.locator("#chart-wave-2")).to_have_count(0)  # wave 3: no sample yet
    assert page.evaluate(KEEP_CHART_JS, ["chart-wave-1", "pilotChart"]) is True
    page.evaluate("window.notReloaded = true")

    at = START + dt.timedelta(hours=6, minutes=10)
    RolloutSample.objects.create(
        rollout=rollout, wave=2, taken_at=at, planned=37, offered=4, running=1, failed=0
    )

    history = page.locator("#rollout-history")
    expect(history.locator("canvas")).to_have_count(3)
    page.wait_for_function(
        "id => Chart.getChart(document.getElementById(id)) !== undefined", arg="chart-wave-2"
    )
    third = drawn(page, "chart-wave-2")
    assert third["type"] == "line"
    assert third["labels"] == [f"{timezone.localtime(at):%Y-%m-%d %H:%M}"]
    assert {d["label"]: d["data"] for d in third["datasets"]} == {
        "planned": [37],
        "offered": [4],
        "running": [1],
        "failed": [0],
    }
    # In wave order, under its heading, as a reload would show it.
    assert history.locator("canvas").evaluate_all("all => all.map(c => c.id)") == [
        "chart-wave-0",
        "chart-wave-1",
        "chart-wave-2",
    ]
    expect(history.locator("h3")).to_have_text(
        ["wave 1 (group:lab)", "wave 2 (group:pilot)", "wave 3 (100 %)"]
    )
    # The charts already drawn were kept and are still updated in place.
    assert page.evaluate(SAME_CHART_JS, ["chart-wave-1", "pilotChart"]) is True
    RolloutSample.objects.create(
        rollout=rollout, wave=1, taken_at=at, planned=15, offered=15, running=12, failed=2
    )
    page.wait_for_function(
        f"args => ({DATA_JS})(args) === '[0,1,3,5,7,9,9,9,9,12]'", arg=["chart-wave-1", "running"]
    )
    assert page.evaluate(SAME_CHART_JS, ["chart-wave-1", "pilotChart"]) is True
    assert page.evaluate("window.notReloaded") is True


def test_a_rollouts_first_sample_replaces_the_none_yet_line_without_a_reload(
    page: Page,
    log_in: LogIn,
    administrator: User,
    rollout: Rollout,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    RolloutSample.objects.filter(rollout=rollout).delete()
    monkeypatch.setattr("phones.admin.dashboards.REFRESH_MS", 200)
    log_in(administrator)
    page.goto(f"/admin/dashboards/rollouts/{rollout.pk}/")
    expect(page.locator("#rollout-history-none")).to_be_visible()
    expect(page.locator("#rollout-history canvas")).to_have_count(0)
    page.evaluate("window.notReloaded = true")

    RolloutSample.objects.create(
        rollout=rollout, wave=0, taken_at=START, planned=5, offered=1, running=0, failed=0
    )

    expect(page.locator("#rollout-history canvas")).to_have_count(1)
    expect(page.locator("#rollout-history-none")).to_have_count(0)
    page.wait_for_function(
        "id => Chart.getChart(document.getElementById(id)) !== undefined", arg="chart-wave-0"
    )
    first = drawn(page, "chart-wave-0")
    assert {d["label"]: d["data"] for d in first["datasets"]} == {
        "planned": [5],
        "offered": [1],
        "running": [0],
        "failed": [0],
    }
    assert page.evaluate("window.notReloaded") is True


def test_rollout_page_shows_a_finished_rollout_in_full_without_a_reload(
    page: Page, log_in: LogIn, administrator: User, rollout: Rollout
) -> None:
    log_in(administrator)
    page.goto(f"/admin/portal/rollout/{rollout.pk}/change/")
    box = page.locator("#rollout-state")
    expect(box.locator('[data-live-field="label"]')).to_have_text("running")
    expect(page.locator("#rollout-buttons a")).not_to_have_count(0)
    page.evaluate("window.notReloaded = true")

    Rollout.objects.filter(pk=rollout.pk).update(state="cancelled", reason="wrong build")

    expect(box.locator('[data-live-field="label"]')).to_have_text("cancelled")
    expect(box).to_have_attribute("data-live-finished", "true")
    # The page put its fresh self in place: no action of a running rollout is left.
    expect(page.locator("#rollout-buttons a")).to_have_count(0)
    expect(page.locator("#content-main")).not_to_contain_text("reload the page")
    assert page.evaluate("window.notReloaded") is True
