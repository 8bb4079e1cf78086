"""The dashboards: the selectors count what the rows say, the pages show exactly those
numbers in their chart data and their tables, and only phones.view_device may see them."""

from __future__ import annotations

import datetime as dt
import json
import re
import uuid
from html.parser import HTMLParser
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from pytest_django import DjangoAssertNumQueries

from phones.choices import DeviceState, ObservedState
from phones.dashboards import (
    ModelVersions,
    StateCount,
    fleet_overview,
    fleet_states,
    fleet_versions,
    rollout_history,
)
from phones.models import Device, DeviceOutcome, RolloutSample
from portal.choices import RolloutState
from portal.models import DeviceUpdateRule, Pool, Rollout, Server, Site
from portal.services.audit import Actor
from portal.services.fleet import device_group_save
from portal.services.rollout_plans import RolloutPlan, WavePlan
from portal.services.rollouts import rollout_pause, rollout_plan
from tests.factories import RULE_A as CX600_RULE
from tests.factories import RULE_B as CX700_RULE
from tests.factories import DeviceFactory

pytestmark = pytest.mark.django_db

FLEET = "/admin/dashboards/"
INDEX = "/admin/"
ONE, TWO = "1.0", "2.0"
NOON = dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.UTC)
SETUP = Actor.system("tests")


# --- rows ---------------------------------------------------------------------------


@pytest.fixture
def pool() -> Pool:
    site = Site.objects.get(name="Default")
    pool = Pool.objects.create(
        site=site, fqdn="pool01.example.org", internal_web_fqdn="pool01.example.org"
    )
    Server.objects.create(pool=pool, fqdn="fe01.example.org")
    return pool


def rule_of(pool: Pool, model: str, rule_id: uuid.UUID, *, pending: str = "") -> DeviceUpdateRule:
    return DeviceUpdateRule.objects.create(
        pool=pool,
        rule_id=rule_id,
        device_type="UCPhone",
        brand="Polycom",
        model=model,
        revision="Rev-1",
        locale="ENU",
        update_type="CPE",
        approved_version=ONE,
        pending_version=pending,
    )


def phone(
    number: int,
    *,
    model: str = "CX600",
    installed: dict[str, str] | None = None,
    state: str = DeviceState.UP_TO_DATE,
) -> Device:
    mac = f"0004F2{number:06X}"
    return DeviceFactory.create(
        identity=f"MAC:{mac}",
        mac=mac,
        serial=f"SN{number}",
        model=model,
        installed={"CPE": ONE} if installed is None else installed,
        state=state,
        first_seen=NOON,
    )


@pytest.fixture
def fleet(pool: Pool) -> list[Device]:
    """CX600: 7 on 1.0 (5 up to date, 2 offered), 3 on 2.0 (up to date); CX700: 2 on 1.0
    (held), 1 reporting nothing (no rule)."""
    return [
        *(phone(n) for n in range(5)),
        *(phone(n, state=DeviceState.UPDATE_OFFERED) for n in range(5, 7)),
        *(phone(n, installed={"CPE": TWO}) for n in range(7, 10)),
        *(phone(n, model="CX700", state=DeviceState.HELD) for n in range(10, 12)),
        phone(12, model="CX700", installed={}, state=DeviceState.NO_RULE),
    ]


FLEET_STATES = [
    ("up to date", 8),
    ("update offered", 2),
    ("awaiting copy", 0),
    ("deferred", 0),
    ("held", 2),
    ("no rule", 1),
]


@pytest.fixture
def rollout(pool: Pool, fleet: list[Device]) -> Rollout:
    """CX600 1.0 -> 2.0 in two waves: the group "lab" (phones 0-2), then 100 % (3-9).

    Wave 1: 3 planned, all offered, 2 downloaded, 1 running, 1 failed (after the plan
    started counting), 1 failed before it. Wave 2: 7 planned, 2 offered, 1 running.
    """
    rule = rule_of(pool, "CX600", CX600_RULE, pending=TWO)
    device_group_save(name="lab", members=[p.mac for p in fleet[:3]], actor=SETUP)
    plan = RolloutPlan(waves=(WavePlan(groups=("lab",)), WavePlan(percent=100)))
    rollout = rollout_plan(rule=rule, plan=plan, actor=SETUP, now=NOON)
    Rollout.objects.filter(pk=rollout.pk).update(counting_since=NOON + dt.timedelta(hours=1))
    rollout.refresh_from_db()

    def outcome(device: Device, state: str, **times: dt.datetime | str) -> None:
        DeviceOutcome.objects.create(
            identity=device.identity,
            rule=rule,
            version=TWO,
            state=state,
            offered_first=NOON,
            offered_last=NOON,
            offered_count=1,
            updated_at=NOON,
            **times,
        )

    later = NOON + dt.timedelta(hours=2)
    outcome(fleet[0], ObservedState.RUNNING, downloaded_at=later, running_at=later)
    outcome(
        fleet[1], ObservedState.FAILED, downloaded_at=later, failed_at=later, failure="still 1.0"
    )
    outcome(fleet[2], ObservedState.FAILED, failed_at=NOON, failure="silent for 2880 minutes")
    outcome(fleet[3], ObservedState.OFFERED)
    outcome(fleet[7], ObservedState.RUNNING, running_at=later)
    samples = [
        (0, 0, 3, 0, 0, 0),
        (0, 30, 3, 2, 0, 1),
        (0, 60, 3, 3, 1, 2),
        (1, 60, 7, 0, 0, 0),
        (1, 90, 7, 2, 1, 0),
    ]
    for wave, minute, planned, offered, running, failed in samples:
        RolloutSample.objects.create(
            rollout=rollout,
            taken_at=NOON + dt.timedelta(minutes=minute),
            wave=wave,
            planned=planned,
            offered=offered,
            running=running,
            failed=failed,
        )
    return rollout


def rollout_url(rollout: Rollout) -> str:
    return f"/admin/dashboards/rollouts/{rollout.pk}/"


def logged_in(client: Client, user: User) -> Client:
    client.force_login(user)
    return client


@pytest.fixture
def nobody(db: None) -> User:
    """Staff, but in no role: may reach the control panel, not the inventory."""
    return User.objects.create_user(username="nina", password="x", is_staff=True)


# --- reading pages ------------------------------------------------------------------


def chart_data(html: str, element_id: str) -> Any:
    found = re.search(
        rf'<script id="{re.escape(element_id)}" type="application/json">(.*?)</script>',
        html,
        re.S,
    )
    assert found is not None, f"no json_script {element_id}"
    return json.loads(found.group(1))


class _Tables(HTMLParser):
    """Every row's cell texts of the table with the given id (header cells included)."""

    def __init__(self, table_id: str) -> None:
        super().__init__()
        self.table_id = table_id
        self.depth = 0
        self.rows: list[list[str]] = []
        self.cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "table" and ("id", self.table_id) in attrs:
            self.depth = 1
        elif self.depth and tag == "tr":
            self.rows.append([])
        elif self.depth and tag in ("td", "th"):
            self.cell = []

    def handle_endtag(self, tag: str) -> None:
        if self.depth and tag in ("td", "th") and self.cell is not None:
            self.rows[-1].append(" ".join("".join(self.cell).split()))
            self.cell = None
        elif tag == "table":
            self.depth = 0

    def handle_data(self, data: str) -> None:
        if self.cell is not None:
            self.cell.append(data)


def table(html: str, table_id: str) -> list[list[str]]:
    parser = _Tables(table_id)
    parser.feed(html)
    assert parser.rows, f"no table {table_id}"
    return parser.rows


def minute(value: dt.datetime) -> str:
    """A time as the dashboards print it: local time to the minute."""
    return f"{timezone.localtime(value):%Y-%m-%d %H:%M}"


def links(html: str, css_class: str) -> list[str]:
    return re.findall(rf'<a class="{css_class}" href="([^"]+)"', html)


# --- selectors ----------------------------------------------------------------------


def test_fleet_versions_counts_phones_per_model_and_version(fleet: list[Device]) -> None:
    result = fleet_versions()

    assert result.models == (
        ModelVersions(
            brand="Polycom", model="CX600", phones=10, versions={"CPE 1.0": 7, "CPE 2.0": 3}
        ),
        ModelVersions(
            brand="Polycom", model="CX700", phones=3, versions={"CPE 1.0": 2}, unreported=1
        ),
    )
    assert result.versions == ("CPE 1.0", "CPE 2.0")
    assert result.phones == 13


def test_fleet_versions_sort_numerically_and_count_each_update_type(pool: Pool) -> None:
    phone(1, installed={"CPE": "4.0.10", "UI": "1.2"})
    phone(2, installed={"CPE": "4.0.9"})
    phone(3, installed={"CPE": "4.0.10"})

    result = fleet_versions()

    assert result.versions == ("CPE 4.0.9", "CPE 4.0.10", "UI 1.2")
    assert result.models[0].versions == {"CPE 4.0.9": 1, "CPE 4.0.10": 2, "UI 1.2": 1}
    assert result.models[0].phones == 3


def test_fleet_states_lists_every_state_with_its_count(fleet: list[Device]) -> None:
    assert [(row.state, row.phones) for row in fleet_states()] == FLEET_STATES
    assert fleet_states()[2] == StateCount(
        state="awaiting copy", label="update waiting for this server's copy", phones=0
    )


def test_fleet_versions_with_no_phones_is_empty(db: None) -> None:
    assert fleet_versions().models == ()
    assert [row.phones for row in fleet_states()] == [0] * 6


def test_rollout_history_keeps_each_wave_in_time_order(rollout: Rollout) -> None:
    waves = rollout_history(rollout=rollout)

    assert [wave.wave for wave in waves] == [0, 1]
    first, second = waves
    assert first.times == tuple(NOON + dt.timedelta(minutes=m) for m in (0, 30, 60))
    assert (first.planned, first.offered, first.running, first.failed) == (
        (3, 3, 3),
        (0, 2, 3),
        (0, 0, 1),
        (0, 1, 2),
    )
    assert (second.planned, second.offered, second.running, second.failed) == (
        (7, 7),
        (0, 2),
        (0, 1),
        (0, 0),
    )


def test_rollout_history_thins_long_histories_keeping_first_and_last(rollout: Rollout) -> None:
    RolloutSample.objects.filter(rollout=rollout, wave=0).delete()
    RolloutSample.objects.bulk_create(
        RolloutSample(
            rollout=rollout,
            taken_at=NOON + dt.timedelta(minutes=minute),
            wave=0,
            planned=3,
            offered=minute,
            running=0,
            failed=0,
        )
        for minute in range(1000)
    )

    first = rollout_history(rollout=rollout, limit=5)[0]

    assert first.offered == (0, 250, 500, 749, 999)  # round(i * 999 / 4)
    assert first.times[-1] == NOON + dt.timedelta(minutes=999)


def test_fleet_overview_reads_states_pending_rules_and_active_rollouts(
    rollout: Rollout, pool: Pool, django_assert_num_queries: DjangoAssertNumQueries
) -> None:
    other = rule_of(pool, "CX700", CX700_RULE, pending="3.0")
    rule_of(pool, "CX800", uuid.uuid4())  # approved only: not pending

    with django_assert_num_queries(4):  # states, pending rules, rollouts, their waves
        overview = fleet_overview()

    assert [(row.state, row.phones) for row in overview.states] == FLEET_STATES
    assert overview.phones == 13
    assert [rule.pk for rule in overview.pending_rules] == [rollout.rule_id, other.pk]
    assert overview.pending_total == 2
    assert [(item.rollout.pk, item.waves) for item in overview.active_rollouts] == [(rollout.pk, 2)]


def test_fleet_overview_counts_pending_rules_beyond_its_limit(pool: Pool) -> None:
    for index in range(4):
        rule_of(pool, f"CX{index}", uuid.uuid4(), pending=TWO)

    overview = fleet_overview(limit=3)

    assert [rule.model for rule in overview.pending_rules] == ["CX0", "CX1", "CX2"]
    assert overview.pending_total == 4


def test_fleet_overview_leaves_out_finished_rollouts(rollout: Rollout) -> None:
    Rollout.objects.filter(pk=rollout.pk).update(state=RolloutState.CANCELLED)

    assert fleet_overview().active_rollouts == ()


# --- pages --------------------------------------------------------------------------


def test_url_names_resolve_to_the_dashboard_paths() -> None:
    assert reverse("admin:fleet-dashboard") == FLEET
    assert reverse("admin:rollout-dashboard", kwargs={"rollout_id": 7}) == (
        "/admin/dashboards/rollouts/7/"
    )


def test_fleet_dashboard_shows_the_database_numbers_in_chart_and_table(
    client: Client, helpdesk: User, fleet: list[Device]
) -> None:
    response = logged_in(client, helpdesk).get(FLEET)

    assert response.status_code == 200
    html = response.content.decode()
    assert chart_data(html, "chart-data-fleet-versions") == {
        "kind": "stacked-bar",
        "labels": ["Polycom CX600", "Polycom CX700"],
        "datasets": [
            {"label": "CPE 1.0", "stack": "CPE", "data": [7, 2]},
            {"label": "CPE 2.0", "stack": "CPE", "data": [3, 0]},
            {"label": "no version reported", "stack": "CPE", "role": "none", "data": [0, 1]},
        ],
    }
    assert table(html, "fleet-versions-table") == [
        ["model", "phones", "CPE 1.0", "CPE 2.0", "no version reported"],
        ["Polycom CX600", "10", "7", "3", "0"],
        ["Polycom CX700", "3", "2", "0", "1"],
    ]
    assert chart_data(html, "chart-data-fleet-states") == {
        "kind": "doughnut",
        "labels": [state for state, _ in FLEET_STATES],
        "datasets": [{"label": "phones", "data": [count for _, count in FLEET_STATES]}],
    }
    assert [(row[0], row[2]) for row in table(html, "fleet-states-table")[1:]] == [
        (state, str(count)) for state, count in FLEET_STATES
    ]
    assert '<canvas id="chart-fleet-versions"' in html
    assert "/static/portal/vendor/chart.js/chart.umd.min.js" in html
    assert "/static/portal/dashboards.js" in html


def test_fleet_dashboard_counts_thousands_without_separators(
    client: Client, administrator: User, pool: Pool
) -> None:
    Device.objects.bulk_create(
        Device(
            identity=f"MAC:0004F2{n:06X}",
            mac=f"0004F2{n:06X}",
            device_type="UCPhone",
            brand="Polycom",
            model="CX600",
            installed={"CPE": ONE},
            state=DeviceState.UP_TO_DATE,
            first_seen=NOON,
            last_seen=NOON,
            last_channel="internal",
            last_server="fe01.example.org",
        )
        for n in range(1234)
    )

    html = logged_in(client, administrator).get(FLEET).content.decode()

    assert table(html, "fleet-versions-table")[1] == ["Polycom CX600", "1234", "1234", "0"]


def test_rollout_dashboard_shows_waves_history_and_failed_phones(
    client: Client, helpdesk: User, rollout: Rollout, fleet: list[Device]
) -> None:
    response = logged_in(client, helpdesk).get(rollout_url(rollout))

    assert response.status_code == 200
    # By its name, as the rollout's own page: the title and the breadcrumbs.
    assert response.context["title"] == f"Rollout #{rollout.pk} of CX600 2.0"
    html = response.content.decode()
    assert f"&rsaquo; Rollout #{rollout.pk} of CX600 2.0" in html
    labels = ["wave 1 (group:lab)", "wave 2 (100 %)"]
    assert chart_data(html, "chart-data-rollout-now") == {
        "kind": "bar",
        "labels": labels,
        "datasets": [
            {"label": "planned", "role": "planned", "data": [3, 7]},
            {"label": "offered", "role": "offered", "data": [3, 2]},
            # Wave 2's running phone has no download in the log: it counts as downloaded.
            {"label": "downloaded", "role": "downloaded", "data": [2, 1]},
            {"label": "running", "role": "running", "data": [1, 1]},
            {"label": "failed", "role": "failed", "data": [1, 0]},
        ],
    }
    assert table(html, "rollout-waves-table")[1:] == [
        [labels[0], minute(NOON), "-", "3", "3", "2", "1", "1", "1"],
        [labels[1], "-", "-", "7", "2", "1", "1", "0", "0"],
    ]
    first = chart_data(html, "chart-data-wave-0")
    assert first["labels"] == [minute(NOON + dt.timedelta(minutes=m)) for m in (0, 30, 60)]
    assert [(d["label"], d["data"]) for d in first["datasets"]] == [
        ("planned", [3, 3, 3]),
        ("offered", [0, 2, 3]),
        ("running", [0, 0, 1]),
        ("failed", [0, 1, 2]),
    ]
    second = chart_data(html, "chart-data-wave-1")
    assert [(d["label"], d["data"]) for d in second["datasets"]] == [
        ("planned", [7, 7]),
        ("offered", [0, 2]),
        ("running", [0, 1]),
        ("failed", [0, 0]),
    ]
    assert table(html, "rollout-failed-table") == [
        ["phone", "wave", "why", "failed at", "logs"],
        [
            fleet[1].identity,
            labels[0],
            "still 1.0",
            minute(NOON + dt.timedelta(hours=2)),
            "logs",
        ],
        [fleet[2].identity, labels[0], "silent for 2880 minutes", minute(NOON), "logs"],
    ]
    assert "Failed phones (2)" in html
    assert links(html, "inventory-link") == [
        f"/admin/phones/device/{fleet[1].pk}/change/",
        f"/admin/phones/device/{fleet[2].pk}/change/",
    ]
    assert links(html, "logs-link") == [
        f"/admin/phones/devicelog/?device={fleet[1].mac}",
        f"/admin/phones/devicelog/?device={fleet[2].mac}",
    ]


def test_rollout_dashboard_links_lead_to_the_phone_and_its_logs(
    client: Client, helpdesk: User, rollout: Rollout, fleet: list[Device]
) -> None:
    html = logged_in(client, helpdesk).get(rollout_url(rollout)).content.decode()

    for url in [*links(html, "inventory-link"), *links(html, "logs-link")]:
        assert client.get(url.replace("&amp;", "&")).status_code == 200


def test_rollout_dashboard_without_samples_says_so(
    client: Client, administrator: User, rollout: Rollout
) -> None:
    RolloutSample.objects.all().delete()
    DeviceOutcome.objects.all().delete()

    html = logged_in(client, administrator).get(rollout_url(rollout)).content.decode()

    assert 'id="rollout-history-none"' in html
    assert 'id="rollout-failed-none"' in html
    assert "chart-data-wave-0" not in html


def test_rollout_dashboard_shows_the_state_and_reason_of_a_paused_rollout(
    client: Client, administrator: User, rollout: Rollout
) -> None:
    rollout_pause(rollout=rollout, actor=SETUP, reason="waiting for the vendor", now=NOON)

    html = logged_in(client, administrator).get(rollout_url(rollout)).content.decode()

    assert "paused: waiting for the vendor" in html


def test_fleet_numbers_hold_the_pages_tables_and_charts(
    client: Client, helpdesk: User, fleet: list[Device]
) -> None:
    page = logged_in(client, helpdesk).get(FLEET).content.decode()

    response = client.get(f"{FLEET}numbers.json")

    assert response.status_code == 200
    answer = response.json()
    assert sorted(answer) == ["chart_parts", "charts", "finished", "parts"]
    assert answer["finished"] is False
    assert answer["chart_parts"] == {}  # both charts are always on the page
    assert answer["charts"] == {
        "chart-data-fleet-versions": chart_data(page, "chart-data-fleet-versions"),
        "chart-data-fleet-states": chart_data(page, "chart-data-fleet-states"),
    }
    assert sorted(answer["parts"]) == [
        "fleet-states-table",
        "fleet-summary",
        "fleet-versions-table",
    ]
    for part, html in answer["parts"].items():
        assert html.strip() in page, part
    assert table(answer["parts"]["fleet-versions-table"], "fleet-versions-table")[1] == [
        "Polycom CX600",
        "10",
        "7",
        "3",
        "0",
    ]


def test_rollout_numbers_hold_the_pages_tables_and_charts(
    client: Client, administrator: User, rollout: Rollout
) -> None:
    page = logged_in(client, administrator).get(rollout_url(rollout)).content.decode()

    answer = client.get(f"{rollout_url(rollout)}numbers.json").json()

    assert answer["finished"] is False
    assert answer["charts"]["chart-data-rollout-now"] == chart_data(page, "chart-data-rollout-now")
    assert sorted(answer["charts"]) == sorted(
        ["chart-data-rollout-now", *re.findall(r'id="(chart-data-wave-\d+)"', page)]
    )
    assert sorted(answer["parts"]) == [
        "rollout-failed",
        "rollout-state",
        "rollout-summary",
        "rollout-waves-table",
    ]
    for part, html in answer["parts"].items():
        assert html.strip() in page, part
    # Each wave's chart as the page has it, for a page opened before the wave's first sample.
    assert sorted(answer["chart_parts"]) == ["chart-data-wave-0", "chart-data-wave-1"]
    for chart_id, html in answer["chart_parts"].items():
        assert html.strip() in page, chart_id


def test_a_finished_rollouts_numbers_say_so_and_its_page_does_not_poll(
    client: Client, administrator: User, rollout: Rollout
) -> None:
    Rollout.objects.filter(pk=rollout.pk).update(state=RolloutState.CANCELLED)
    client = logged_in(client, administrator)

    assert client.get(f"{rollout_url(rollout)}numbers.json").json()["finished"] is True
    assert 'data-dashboard-finished="true"' in client.get(rollout_url(rollout)).content.decode()


def test_unknown_rollouts_numbers_are_not_found(client: Client, administrator: User) -> None:
    response = logged_in(client, administrator).get("/admin/dashboards/rollouts/999/numbers.json")

    assert response.status_code == 404
    assert response.json() == {"error": "no rollout #999"}


def test_unknown_rollout_is_not_found(client: Client, administrator: User) -> None:
    assert (
        logged_in(client, administrator).get("/admin/dashboards/rollouts/999/").status_code == 404
    )


def test_index_shows_the_fleet_overview(
    client: Client, helpdesk: User, rollout: Rollout, pool: Pool
) -> None:
    other = rule_of(pool, "CX700", CX700_RULE, pending="3.0")

    html = logged_in(client, helpdesk).get(INDEX).content.decode()

    assert chart_data(html, "chart-data-overview-states")["datasets"][0]["data"] == [
        count for _, count in FLEET_STATES
    ]
    assert table(html, "overview-states") == [[state, str(n)] for state, n in FLEET_STATES]
    assert table(html, "overview-pending")[1:] == [
        ["Polycom CX600 Rev-1 ENU CPE (pool01.example.org)", TWO, ONE],
        ["Polycom CX700 Rev-1 ENU CPE (pool01.example.org)", "3.0", ONE],
    ]
    assert f'href="/admin/portal/deviceupdaterule/{other.pk}/change/"' in html
    assert f'href="/admin/dashboards/rollouts/{rollout.pk}/"' in html
    assert 'href="/admin/dashboards/"' in html
    assert "wave 1 of 2" in html


def test_index_without_anything_pending_says_so(client: Client, helpdesk: User) -> None:
    html = logged_in(client, helpdesk).get(INDEX).content.decode()

    assert 'id="fleet-overview"' in html
    assert 'id="overview-pending-none"' in html
    assert 'id="overview-rollouts-none"' in html


# --- who may see them ---------------------------------------------------------------


@pytest.mark.parametrize("page", ["fleet", "rollout", "fleet-numbers", "rollout-numbers"])
@pytest.mark.parametrize(
    ("user", "status"),
    [("administrator", 200), ("helpdesk", 200), ("nobody", 403), ("anonymous", 302)],
)
def test_dashboard_access(
    client: Client,
    request: pytest.FixtureRequest,
    rollout: Rollout,
    page: str,
    user: str,
    status: int,
) -> None:
    if user != "anonymous":
        client.force_login(request.getfixturevalue(user))
    path = {
        "fleet": FLEET,
        "rollout": rollout_url(rollout),
        "fleet-numbers": f"{FLEET}numbers.json",
        "rollout-numbers": f"{rollout_url(rollout)}numbers.json",
    }[page]

    response = client.get(path)

    assert response.status_code == status
    if user == "anonymous":
        assert response["Location"] == f"/admin/login/?next={path}"


def test_index_hides_the_overview_from_users_without_the_inventory(
    client: Client, nobody: User, rollout: Rollout
) -> None:
    response = logged_in(client, nobody).get(INDEX)

    assert response.status_code == 200
    html = response.content.decode()
    assert 'id="fleet-overview"' not in html
    assert "chart.umd.min.js" not in html


def test_rollout_dashboard_starts_with_the_state_the_reason_and_the_actions(
    client: Client, administrator: User, helpdesk: User, rollout: Rollout
) -> None:
    rollout_pause(rollout=rollout, actor=SETUP, reason="waiting for the vendor", now=NOON)

    html = logged_in(client, administrator).get(rollout_url(rollout)).content.decode()

    top = html.index('id="rollout-state"')
    assert top < html.index('id="rollout-summary"')
    assert '<span class="state state-warn" data-state="paused">paused</span>' in html
    assert "<strong>Why:</strong> waiting for the vendor" in html
    buttons = html[html.index('id="rollout-buttons"') : html.index('id="rollout-summary"')]
    base = f"/admin/portal/rollout/{rollout.pk}"
    for action, label in (("advance", "Advance"), ("resume", "Resume"), ("cancel", "Cancel")):
        assert f'href="{base}/{action}/">{label}…</a>' in buttons
    assert f"{base}/pause/" not in buttons
    assert 'id="rollout-waves-legend"' in html

    html = logged_in(client, helpdesk).get(rollout_url(rollout)).content.decode()
    assert 'id="rollout-state"' in html
    assert 'id="rollout-buttons"' not in html
