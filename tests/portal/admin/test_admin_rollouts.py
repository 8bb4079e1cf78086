"""Staged rollouts in the control panel: "Approve in waves…" on a rule (plan form, a page
saying what will reach phones, then the rollout), the rollouts list, and the rollout
page with its Advance / Pause / Resume / Cancel / Restore buttons, each confirmed."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from html.parser import HTMLParser
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.urls import NoReverseMatch, reverse

from portal.admin import rollouts as rollout_pages
from portal.choices import RolloutState
from portal.models import AuditEntry, DeviceGroup, DeviceUpdateRule, Rollout
from portal.services.audit import Actor
from portal.services.fleet import device_group_save
from portal.services.rollout_plans import RolloutPlan, WavePlan
from portal.services.rollouts import rollout_plan
from tests.factories import CX700, RULE_A, RULE_B, RolloutFactory

pytestmark = pytest.mark.django_db

ROLLOUTS = "/admin/portal/rollout/"
RULES = "/admin/portal/deviceupdaterule/"
# make_rule's rule as people read it, and its identity (kept beside the name).
RULE_NAME = "Polycom CX600 Rev-1 ENU CPE on pool01.example.org"
RULE_IDENTITY = f"service:WebServer:pool01.example.org/{RULE_A}"
SETUP = Actor.system("setup")
MakeRule = Callable[..., DeviceUpdateRule]
Messages = Callable[[Any], list[tuple[str, str]]]

PLAN = {
    "waves": "5\r\n25\r\n100",
    "min_soak_minutes": "60",
    "success_percent": "95",
    "failure_percent": "5",
    "failure_max_phones": "",
    "min_sample": "10",
    "silence_minutes": "2880",
    "automatic_advance": "on",
    "automatic_halt": "on",
}


def plan_url(rule: DeviceUpdateRule) -> str:
    return f"{ROLLOUTS}plan/{rule.pk}/"


def started(rule: DeviceUpdateRule, *waves: int, **gates: Any) -> Rollout:
    percents = waves or (5, 25, 100)
    return RolloutFactory.create(
        rule=rule, waves=[WavePlan(percent=p) for p in percents], actor=SETUP, **gates
    )


def in_state(rollout: Rollout, state: RolloutState, wave: int = 0) -> Rollout:
    Rollout.objects.filter(pk=rollout.pk).update(state=state, current_wave=wave)
    rollout.refresh_from_db()
    return rollout


def changes_by_hand() -> list[tuple[str, str]]:
    return list(
        AuditEntry.objects.exclude(actor_name="setup")
        .order_by("id")
        .values_list("action", "actor_name")
    )


class _Form(HTMLParser):
    """The fields a page's forms would send (inputs and textareas), in order."""

    def __init__(self) -> None:
        super().__init__()
        self.fields: dict[str, str] = {}
        self._textarea: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        name = values.get("name")
        if tag == "input" and name and values.get("type") != "submit":
            self.fields[name] = values.get("value") or ""
        if tag == "textarea" and name:
            self._textarea = name
            self.fields[name] = ""

    def handle_data(self, data: str) -> None:
        if self._textarea:
            self.fields[self._textarea] += data

    def handle_endtag(self, tag: str) -> None:
        if tag == "textarea":
            self._textarea = None


def form_fields(response: Any) -> dict[str, str]:
    parser = _Form()
    parser.feed(response.content.decode())
    parser.fields.pop("csrfmiddlewaretoken", None)
    return parser.fields


# -- the rule page --------------------------------------------------------------------


def test_rule_page_offers_approve_in_waves_to_administrators(
    client: Client, administrator: User, make_rule: MakeRule
) -> None:
    rule = make_rule(pending="4.0.2", approved="4.0.1")
    client.force_login(administrator)

    response = client.get(f"{RULES}{rule.pk}/change/")

    assert response.status_code == 200
    assert response.context["plan_url"] == plan_url(rule)
    page = response.content.decode()
    assert f'<a href="{plan_url(rule)}" id="approve-in-waves">Approve in waves…</a>' in page
    assert response.context["rollouts"] == []


@pytest.mark.parametrize("case", ["helpdesk", "no pending version", "active rollout"])
def test_rule_page_has_no_approve_in_waves_when_it_cannot_be_used(
    client: Client, request: pytest.FixtureRequest, make_rule: MakeRule, case: str
) -> None:
    rule = make_rule(pending="" if case == "no pending version" else "4.0.2", approved="4.0.1")
    if case == "active rollout":
        started(rule)
    user = request.getfixturevalue("helpdesk" if case == "helpdesk" else "administrator")
    client.force_login(user)

    response = client.get(f"{RULES}{rule.pk}/change/")

    assert response.status_code == 200
    assert "plan_url" not in response.context
    assert "approve-in-waves" not in response.content.decode()


def test_rule_page_lists_its_rollouts_newest_first(
    client: Client, helpdesk: User, make_rule: MakeRule
) -> None:
    rule = make_rule(pending="4.0.2", approved="4.0.1")
    first = in_state(started(rule), RolloutState.CANCELLED)
    second = started(rule)
    client.force_login(helpdesk)

    response = client.get(f"{RULES}{rule.pk}/change/")

    assert [item["rollout"] for item in response.context["rollouts"]] == [second, first]
    assert [item["url"] for item in response.context["rollouts"]] == [
        f"{ROLLOUTS}{second.pk}/change/",
        f"{ROLLOUTS}{first.pk}/change/",
    ]
    html = response.content.decode()
    for rollout in (second, first):
        link = f'<a href="{ROLLOUTS}{rollout.pk}/change/">Rollout #{rollout.pk} of CX600 4.0.2</a>'
        assert html.count(link) == 1


# -- planning -------------------------------------------------------------------------


def test_plan_form_starts_from_the_service_defaults(
    client: Client, administrator: User, make_rule: MakeRule
) -> None:
    rule = make_rule(pending="4.0.2", approved="4.0.1")
    client.force_login(administrator)

    response = client.get(plan_url(rule))

    assert response.status_code == 200
    form = response.context["form"]
    assert {name: form[name].value() for name in form.fields} == {
        "waves": None,
        "min_soak_minutes": 60,
        "success_percent": 95,
        "failure_percent": 5,
        "failure_max_phones": None,
        "min_sample": 10,
        "silence_minutes": 2880,
        "automatic_advance": True,
        "automatic_halt": True,
    }
    assert response.context["title"] == "Approve 4.0.2 in waves"
    html = response.content.decode()
    assert (
        html.count(f'<a href="{RULES}{rule.pk}/change/" title="{RULE_IDENTITY}">{RULE_NAME}</a>')
        == 1
    )  # the breadcrumbs
    assert f'<p id="rollout-rule">{RULE_NAME} ({RULE_IDENTITY}): pending 4.0.2,' in html


def test_reviewing_a_plan_says_what_will_reach_phones_and_creates_nothing(
    client: Client, administrator: User, make_rule: MakeRule
) -> None:
    rule = make_rule(pending="4.0.2", approved="4.0.1")
    client.force_login(administrator)

    response = client.post(plan_url(rule), {**PLAN, "failure_max_phones": "3"})

    assert response.status_code == 200
    assert response.context["preview"] == [
        "Now: wave 1 of 3 (5 %) starts. The phones it takes are offered 4.0.2; every other "
        "phone keeps 4.0.1. Test devices get 4.0.2 as before.",
        "Then, one at a time: wave 2 (25 %), wave 3 (100 %).",
        "Success gate: once at least 95 % of a wave's phones run 4.0.2 and the wave has run "
        "1 hour, it advances by itself.",
        "Failure gate: once 10 of a wave's phones are observed, if more than 5 % or more than "
        "3 phones of them failed, the rollout halts: the version is offered to no new phone. "
        "A phone silent 2 days after an offer counts as failed.",
        "After the last wave passes, 4.0.2 is approved for everyone.",
    ]
    html = response.content.decode()
    assert f'title="{RULE_IDENTITY}">{RULE_NAME}</a>' in html  # the breadcrumbs
    assert f"<p>{RULE_NAME} ({RULE_IDENTITY}) — what will reach phones:</p>" in html
    assert Rollout.objects.count() == 0
    assert AuditEntry.objects.count() == 0


def test_preview_of_a_manual_plan_without_automatic_halt(make_rule: MakeRule) -> None:
    rule = make_rule(pending="4.0.2")
    plan = RolloutPlan(
        waves=(WavePlan(sites=("Default",)),),
        automatic_advance=False,
        automatic_halt=False,
        failure_max_phones=0,
    )

    lines = rollout_pages.plan_preview(rule, plan)

    assert lines == [
        "Now: wave 1 of 1 (site:Default) starts. The phones it takes are offered 4.0.2; every "
        "other phone keeps nothing. Test devices get 4.0.2 as before.",
        "Success gate: once at least 95 % of a wave's phones run 4.0.2 and the wave has run "
        "1 hour, it waits for an administrator's Advance.",
        "Failure gate: once 10 of a wave's phones are observed, if more than 5 % or any phone "
        "of them failed, nothing stops by itself (no automatic halt). A phone silent 2 days "
        "after an offer counts as failed.",
        "After the last wave passes, 4.0.2 is approved for everyone.",
    ]


def test_confirming_the_reviewed_plan_starts_the_rollout(
    client: Client, administrator: User, make_rule: MakeRule, read_messages: Messages
) -> None:
    rule = make_rule(pending="4.0.2", approved="4.0.1")
    device_group_save(name="Pilots", members=["00-04-F2-11-22-33"], actor=SETUP)
    client.force_login(administrator)
    review = client.post(
        plan_url(rule),
        {
            **PLAN,
            "waves": "group:Pilots\r\nsite:Default, group:Pilots\r\n100",
            "automatic_advance": "",
            "min_sample": "4",
        },
    )
    sent = form_fields(review)
    assert sent == {
        "waves": "group:Pilots\r\nsite:Default, group:Pilots\r\n100",
        "min_soak_minutes": "60",
        "success_percent": "95",
        "failure_percent": "5",
        "failure_max_phones": "",
        "min_sample": "4",
        "silence_minutes": "2880",
        "automatic_advance": "False",
        "automatic_halt": "True",
        "post": "yes",
    }

    response = client.post(plan_url(rule), sent)

    rollout = Rollout.objects.get()
    assert response.status_code == 302
    assert response["Location"] == f"{ROLLOUTS}{rollout.pk}/change/"
    assert read_messages(response) == [
        (
            "success",
            f"Rollout #{rollout.pk} of 4.0.2 on {rule.name} started: wave 1 of 3 (group:Pilots)",
        )
    ]
    assert (
        rollout.rule,
        rollout.from_version,
        rollout.to_version,
        rollout.state,
        rollout.current_wave,
        rollout.min_sample,
        rollout.automatic_advance,
        rollout.automatic_halt,
        rollout.actor_name,
    ) == (rule, "4.0.1", "4.0.2", "running", 0, 4, False, True, "ada")
    assert [rollout_pages.wave_describe(wave) for wave in rollout.waves.all()] == [
        "group:Pilots",
        "site:Default, group:Pilots",
        "100 %",
    ]
    assert changes_by_hand() == [("portal.rollout.planned", "ada")]


# field in the form (None: above the form), value, the service's message
PLAN_REFUSALS = [
    ("waves", {"waves": "25\r\n5"}, "wave 2: the percentages must increase (5 % after 25 %)"),
    ("waves", {"waves": "101"}, "wave 1: a percentage is 0 to 100, not 101"),
    ("waves", {"waves": "site:Nowhere"}, "wave 1: no site named 'Nowhere'"),
    ("waves", {"waves": "group:Nobody"}, "wave 1: no device group named 'Nobody'"),
    (
        "waves",
        {"waves": "hello"},
        "'hello' is not a wave (a percentage, site:NAME or group:NAME)",
    ),
    ("waves", {"waves": "\r\n \r\n"}, "This field is required."),
    ("success_percent", {"success_percent": "150"}, "success_percent must be 0 to 100, not 150"),
    ("failure_percent", {"failure_percent": "-1"}, "failure_percent must be 0 to 100, not -1"),
    ("min_sample", {"min_sample": "0"}, "min_sample must be at least 1, not 0"),
    (
        "failure_max_phones",
        {"failure_max_phones": "-2"},
        "failure_max_phones cannot be negative",
    ),
    ("silence_minutes", {"silence_minutes": "0"}, "silence_minutes must be 1 minute to a year"),
    ("min_soak_minutes", {"min_soak_minutes": "x"}, "Enter a whole number."),
]


@pytest.mark.parametrize("confirmed", [False, True], ids=["review", "confirm"])
@pytest.mark.parametrize(("field", "values", "message"), PLAN_REFUSALS)
def test_a_refused_plan_is_a_form_error_and_nothing_is_created(
    client: Client,
    administrator: User,
    make_rule: MakeRule,
    field: str,
    values: dict[str, str],
    message: str,
    confirmed: bool,
) -> None:
    rule = make_rule(pending="4.0.2", approved="4.0.1")
    client.force_login(administrator)

    response = client.post(
        plan_url(rule), {**PLAN, **values, **({"post": "yes"} if confirmed else {})}
    )

    assert response.status_code == 200
    assert response.context["form"].errors == {field: [message]}
    assert "preview" not in response.context
    assert Rollout.objects.count() == 0
    assert AuditEntry.objects.count() == 0


@pytest.mark.parametrize("confirmed", [False, True], ids=["review", "confirm"])
def test_a_rule_without_a_pending_version_is_refused_above_the_form(
    client: Client, administrator: User, make_rule: MakeRule, confirmed: bool
) -> None:
    rule = make_rule(approved="4.0.1")
    client.force_login(administrator)

    response = client.post(plan_url(rule), {**PLAN, **({"post": "yes"} if confirmed else {})})

    assert response.context["form"].errors == {
        "__all__": [f"{rule.identity}: no pending version to roll out"]
    }
    assert Rollout.objects.count() == 0
    assert AuditEntry.objects.count() == 0


def test_a_second_active_rollout_is_refused_when_confirmed_late(
    client: Client, administrator: User, make_rule: MakeRule
) -> None:
    rule = make_rule(pending="4.0.2", approved="4.0.1")
    client.force_login(administrator)
    review = client.post(plan_url(rule), PLAN)
    assert review.status_code == 200
    # Someone else plans a rollout of the same rule while the page is open.
    first = started(rule)

    response = client.post(plan_url(rule), form_fields(review))

    assert response.status_code == 200
    assert response.context["form"].errors == {
        "__all__": [f"{rule.identity} already has an active rollout (#{first.pk}, running)"]
    }
    assert list(Rollout.objects.all()) == [first]
    assert changes_by_hand() == []


def test_plan_page_of_a_missing_rule_is_not_found(client: Client, administrator: User) -> None:
    client.force_login(administrator)
    assert client.get(f"{ROLLOUTS}plan/999/").status_code == 404


# -- the list -------------------------------------------------------------------------


def test_rollout_list_shows_rule_versions_state_and_wave(
    client: Client, helpdesk: User, make_rule: MakeRule
) -> None:
    rule = make_rule(pending="4.0.2", approved="4.0.1")
    rollout = in_state(started(rule), RolloutState.HALTED, wave=1)
    Rollout.objects.filter(pk=rollout.pk).update(reason="wave 2: 3 of 10 observed phones failed")
    client.force_login(helpdesk)

    response = client.get(ROLLOUTS)

    assert response.status_code == 200
    changelist = response.context["cl"]
    assert list(changelist.list_display) == [
        "number",
        "rule_identity",
        "versions",
        "state",
        "wave",
        "reason",
        "updated_at",
    ]
    assert list(changelist.result_list) == [rollout]
    admin_page = changelist.model_admin
    (row,) = changelist.result_list
    assert [
        admin_page.number(row),
        admin_page.rule_identity(row),
        admin_page.versions(row),
        row.state,
        admin_page.wave(row),
        row.reason,
    ] == [
        f"#{rollout.pk}",
        rule.name,
        "4.0.1 → 4.0.2",
        "halted",
        "2 of 3",
        "wave 2: 3 of 10 observed phones failed",
    ]
    assert response.context["action_form"] is None
    assert "addlink" not in response.content.decode()


@pytest.mark.parametrize(
    ("query", "expected"),
    [("", ["CX700", "CX600"]), ("state=running", ["CX700"]), ("state=cancelled", ["CX600"])],
)
def test_rollout_list_filters_by_state(
    client: Client, administrator: User, make_rule: MakeRule, query: str, expected: list[str]
) -> None:
    in_state(started(make_rule(pending="4.0.2")), RolloutState.CANCELLED)
    started(make_rule(pending="5.0", device_class=CX700, rule_id=RULE_B))
    client.force_login(administrator)

    response = client.get(f"{ROLLOUTS}?{query}")

    assert [rollout.rule.model for rollout in response.context["cl"].result_list] == expected


# -- the rollout page -----------------------------------------------------------------

BUTTONS = {
    RolloutState.RUNNING: ["Advance", "Pause", "Cancel", "Restore"],
    RolloutState.PAUSED: ["Advance", "Resume", "Cancel", "Restore"],
    RolloutState.HALTED: ["Resume", "Cancel", "Restore"],
    RolloutState.COMPLETED: [],
    RolloutState.CANCELLED: [],
    RolloutState.RESTORED: [],
}


@pytest.mark.parametrize("state", list(BUTTONS))
def test_rollout_page_offers_the_buttons_its_state_allows(
    client: Client, administrator: User, make_rule: MakeRule, state: RolloutState
) -> None:
    rollout = in_state(started(make_rule(pending="4.0.2", approved="4.0.1")), state)
    client.force_login(administrator)

    response = client.get(f"{ROLLOUTS}{rollout.pk}/change/")

    assert response.status_code == 200
    buttons = response.context["rollout_buttons"]
    assert [button["label"] for button in buttons] == BUTTONS[state]
    assert [button["url"] for button in buttons] == [
        f"{ROLLOUTS}{rollout.pk}/{label.lower()}/" for label in BUTTONS[state]
    ]
    page = response.content.decode()
    for button in buttons:
        assert f'<a href="{button["url"]}" class="button">{button["label"]}…</a>' in page


def test_a_halted_rollouts_page_says_its_state_and_reason_first_then_its_actions(
    client: Client, administrator: User, make_rule: MakeRule
) -> None:
    rule = make_rule(pending="4.0.2", approved="4.0.1")
    rollout = in_state(started(rule, 10, 100), RolloutState.HALTED, 1)
    Rollout.objects.filter(pk=rollout.pk).update(reason="wave 2: 3 of 10 observed phones failed")
    client.force_login(administrator)

    page = client.get(f"{ROLLOUTS}{rollout.pk}/change/").content.decode()

    banner = page.index('id="rollout-state"')
    assert banner < page.index('id="rollout_form"')
    assert page.index('id="rollout-buttons"') > banner
    assert page.index('id="rollout-buttons"') < page.index('id="rollout_form"')
    assert (
        f"<strong>Rollout #{rollout.pk} of CX600 4.0.2</strong> on pool01.example.org: "
        '<span class="state state-bad" data-live-field="label">halted</span>'
    ) in page
    assert (
        '<strong>Halted because:</strong> <span data-live-field="reason">'
        "wave 2: 3 of 10 observed phones failed</span>"
    ) in page
    # The box follows the rollout (portal/live.js polls the dashboard's status.json).
    status_url = f"/admin/dashboards/rollouts/{rollout.pk}/status.json"
    assert f'data-live-url="{status_url}"' in page
    assert client.get(status_url).json() == {
        "status": "halted",
        "label": "halted",
        "tone": "bad",
        "progress": 2,
        "progress_text": "wave 2",
        "reason": "wave 2: 3 of 10 observed phones failed",
        "finished": False,
    }


def test_rollout_page_is_read_only_with_plan_waves_and_dashboard(
    client: Client, helpdesk: User, make_rule: MakeRule
) -> None:
    rule = make_rule(pending="4.0.2", approved="4.0.1")
    rollout = started(rule, 10, 100, failure_max_phones=4)
    client.force_login(helpdesk)

    response = client.get(f"{ROLLOUTS}{rollout.pk}/change/")

    assert response.status_code == 200
    assert response.context["rollout_buttons"] == []
    page = response.content.decode()
    assert 'name="_save"' not in page
    assert 'id="rollout-buttons"' not in page
    assert f'<a href="{RULES}{rule.pk}/change/">{rule.name}</a> ({rule.identity})' in page
    for text in (
        "4.0.1 → 4.0.2",
        "1 of 2",
        "at least 95 % of the wave runs 4.0.2",
        "more than 5 % or more than 4 phones of the wave's observed phones failed",
        "<td>10 %</td>",
        "<td>100 %</td>",
        "planned",
    ):
        assert text in page
    dashboard = reverse("admin:rollout-dashboard", kwargs={"rollout_id": rollout.pk})
    assert response.context["dashboard_url"] == dashboard
    assert f'<a href="{dashboard}">planned and observed, wave by wave</a>' in page


def test_rollout_page_without_the_dashboards_links_nothing(
    client: Client, administrator: User, make_rule: MakeRule, monkeypatch: pytest.MonkeyPatch
) -> None:
    rollout = started(make_rule(pending="4.0.2"))

    def missing(name: str, **kwargs: Any) -> str:
        if name == "admin:rollout-dashboard":
            raise NoReverseMatch(name)
        return reverse(name, **kwargs)

    monkeypatch.setattr(rollout_pages, "reverse", missing)
    client.force_login(administrator)

    response = client.get(f"{ROLLOUTS}{rollout.pk}/change/")

    assert response.status_code == 200
    assert response.context["dashboard_url"] is None
    assert "dashboardlink" not in response.content.decode()


def test_rollouts_are_not_added_changed_or_deleted_by_hand(
    client: Client, administrator: User, make_rule: MakeRule
) -> None:
    rollout = started(make_rule(pending="4.0.2"))
    client.force_login(administrator)

    assert client.get(f"{ROLLOUTS}add/").status_code == 403
    assert client.post(f"{ROLLOUTS}{rollout.pk}/change/", {"state": "completed"}).status_code == 403
    assert client.get(f"{ROLLOUTS}{rollout.pk}/delete/").status_code == 403
    assert client.post(f"{ROLLOUTS}{rollout.pk}/delete/", {"post": "yes"}).status_code == 403
    rollout.refresh_from_db()
    assert rollout.state == "running"
    assert changes_by_hand() == []


# -- the buttons ----------------------------------------------------------------------

# state before (wave index), button, what reaches phones, message, state after (wave), audit
TRANSITIONS = [
    (
        (RolloutState.RUNNING, 0),
        "advance",
        "Wave 2 of 3 (25 %) starts: the phones it adds are offered 4.0.2; the others keep 4.0.1.",
        "Rollout #{pk} is running at wave 2 of 3",
        ("running", 1),
        "portal.rollout.advanced",
    ),
    (
        (RolloutState.PAUSED, 1),
        "advance",
        "Wave 3 of 3 (100 %) starts: the phones it adds are offered 4.0.2; the others keep "
        "4.0.1. The rollout runs again.",
        "Rollout #{pk} is running at wave 3 of 3",
        ("running", 2),
        "portal.rollout.advanced",
    ),
    (
        (RolloutState.RUNNING, 0),
        "pause",
        "4.0.2 is offered to no new phone: phones already running it keep it, every other "
        "phone is offered 4.0.1. Resume or Advance starts offering it again.",
        "Rollout #{pk} is paused at wave 1 of 3",
        ("paused", 0),
        "portal.rollout.paused",
    ),
    (
        (RolloutState.HALTED, 1),
        "resume",
        "The phones of waves 1 to 2 of 3 are offered 4.0.2 again; the others keep 4.0.1. "
        "Only failures observed from now on count against the failure gate.",
        "Rollout #{pk} is running at wave 2 of 3",
        ("running", 1),
        "portal.rollout.resumed",
    ),
    (
        (RolloutState.PAUSED, 0),
        "resume",
        "The phones of waves 1 to 1 of 3 are offered 4.0.2 again; the others keep 4.0.1.",
        "Rollout #{pk} is running at wave 1 of 3",
        ("running", 0),
        "portal.rollout.resumed",
    ),
    (
        (RolloutState.HALTED, 0),
        "cancel",
        "The rollout stops for good: phones running 4.0.2 keep it, no other phone gets it "
        "(they keep 4.0.1). 4.0.2 stays pending, so test devices keep it.",
        "Rollout #{pk} is cancelled at wave 1 of 3",
        ("cancelled", 0),
        "portal.rollout.cancelled",
    ),
]


@pytest.mark.parametrize(("before", "button", "effect", "message", "after", "code"), TRANSITIONS)
def test_each_button_confirms_what_reaches_phones_then_calls_its_service(
    client: Client,
    administrator: User,
    make_rule: MakeRule,
    read_messages: Messages,
    before: tuple[RolloutState, int],
    button: str,
    effect: str,
    message: str,
    after: tuple[str, int],
    code: str,
) -> None:
    rule = make_rule(pending="4.0.2", approved="4.0.1")
    rollout = in_state(started(rule), *before)
    url = f"{ROLLOUTS}{rollout.pk}/{button}/"
    client.force_login(administrator)

    confirmation = client.get(url)

    assert confirmation.status_code == 200
    assert confirmation.context["effect"] == effect
    html = confirmation.content.decode()
    assert (
        f'<a href="{ROLLOUTS}{rollout.pk}/change/">Rollout #{rollout.pk} of CX600 4.0.2</a>' in html
    )
    assert f"on {RULE_NAME} ({RULE_IDENTITY}) is {before[0]} at wave {before[1] + 1}.</p>" in html
    assert changes_by_hand() == []
    assert (Rollout.objects.get().state, Rollout.objects.get().current_wave) == before

    response = client.post(url, {"post": "yes", "reason": ""})

    assert response.status_code == 302
    assert response["Location"] == f"{ROLLOUTS}{rollout.pk}/change/"
    assert read_messages(response) == [("success", message.format(pk=rollout.pk))]
    rollout.refresh_from_db()
    assert (rollout.state, rollout.current_wave) == after
    assert changes_by_hand() == [(code, "ada")]
    rule.refresh_from_db()
    assert (rule.pending_version, rule.approved_version) == ("4.0.2", "4.0.1")


def test_advancing_past_the_last_wave_completes_and_approves_the_rule(
    client: Client, administrator: User, make_rule: MakeRule, read_messages: Messages
) -> None:
    rule = make_rule(pending="4.0.2", approved="4.0.1")
    rollout = in_state(started(rule), RolloutState.RUNNING, wave=2)
    client.force_login(administrator)

    confirmation = client.get(f"{ROLLOUTS}{rollout.pk}/advance/")
    response = client.post(f"{ROLLOUTS}{rollout.pk}/advance/", {"post": "yes"})

    assert confirmation.context["effect"] == (
        "Wave 3 of 3 is the last: the rollout completes and 4.0.2 is approved for everyone "
        "(was 4.0.1); test devices follow."
    )
    assert read_messages(response) == [
        ("success", f"Rollout #{rollout.pk} completed: 4.0.2 is approved for everyone")
    ]
    rollout.refresh_from_db()
    rule.refresh_from_db()
    assert rollout.state == "completed"
    assert (rule.pending_version, rule.approved_version, rule.restore_version) == (
        "",
        "4.0.2",
        "4.0.1",
    )
    assert changes_by_hand() == [
        ("portal.rollout.completed", "ada"),
        ("portal.rule.approved", "ada"),
    ]


@pytest.mark.parametrize(
    ("approved", "effect", "message"),
    [
        (
            "4.0.1",
            "Everyone goes back: 4.0.2 is no longer pending and every phone, test devices "
            "included, is offered 4.0.1.",
            "Rollout #{pk} restored: everyone goes back to 4.0.1",
        ),
        (
            "",
            "Everyone goes back: 4.0.2 is no longer pending and every phone, test devices "
            "included, is offered nothing any more.",
            "Rollout #{pk} restored: everyone goes back to nothing",
        ),
    ],
)
def test_restore_sends_everyone_back_and_cancels_the_pending_version(
    client: Client,
    administrator: User,
    make_rule: MakeRule,
    read_messages: Messages,
    approved: str,
    effect: str,
    message: str,
) -> None:
    rule = make_rule(pending="4.0.2", approved=approved)
    rollout = started(rule)
    client.force_login(administrator)

    confirmation = client.get(f"{ROLLOUTS}{rollout.pk}/restore/")
    response = client.post(f"{ROLLOUTS}{rollout.pk}/restore/", {"post": "yes"})

    assert confirmation.context["effect"] == effect
    assert read_messages(response) == [("success", message.format(pk=rollout.pk))]
    rollout.refresh_from_db()
    rule.refresh_from_db()
    assert (rollout.state, rule.pending_version, rule.approved_version) == (
        "restored",
        "",
        approved,
    )
    assert changes_by_hand() == [("portal.rollout.restored", "ada"), ("portal.rule.reset", "ada")]


def test_the_reason_typed_on_the_confirmation_page_is_kept(
    client: Client, administrator: User, make_rule: MakeRule
) -> None:
    rollout = started(make_rule(pending="4.0.2", approved="4.0.1"))
    client.force_login(administrator)

    client.post(f"{ROLLOUTS}{rollout.pk}/pause/", {"post": "yes", "reason": " helpdesk calls "})

    rollout.refresh_from_db()
    assert (rollout.state, rollout.reason) == ("paused", "helpdesk calls")
    entry = AuditEntry.objects.get(action="portal.rollout.paused")
    assert entry.changes == {"reason": [None, "helpdesk calls"], "state": ["running", "paused"]}


def test_a_button_its_state_does_not_allow_is_refused_before_the_confirmation(
    client: Client, administrator: User, make_rule: MakeRule, read_messages: Messages
) -> None:
    rollout = in_state(started(make_rule(pending="4.0.2")), RolloutState.PAUSED)
    client.force_login(administrator)

    response = client.get(f"{ROLLOUTS}{rollout.pk}/pause/")

    assert response.status_code == 302
    assert response["Location"] == f"{ROLLOUTS}{rollout.pk}/change/"
    assert read_messages(response) == [
        ("error", f"rollout #{rollout.pk} is paused: it cannot be paused (only when running)")
    ]
    assert Rollout.objects.get().state == "paused"
    assert changes_by_hand() == []


def test_a_confirmation_overtaken_by_another_change_is_refused_and_changes_nothing(
    client: Client, administrator: User, make_rule: MakeRule, read_messages: Messages
) -> None:
    rollout = started(make_rule(pending="4.0.2", approved="4.0.1"))
    client.force_login(administrator)
    assert client.get(f"{ROLLOUTS}{rollout.pk}/advance/").status_code == 200
    # Meanwhile someone else cancels it.
    in_state(rollout, RolloutState.CANCELLED)
    updated = Rollout.objects.get().updated_at

    response = client.post(f"{ROLLOUTS}{rollout.pk}/advance/", {"post": "yes"})

    assert read_messages(response) == [
        (
            "error",
            f"rollout #{rollout.pk} is cancelled: it cannot be advanced "
            "(only when paused or running)",
        )
    ]
    after = Rollout.objects.get()
    assert (after.state, after.current_wave, after.updated_at) == ("cancelled", 0, updated)
    assert list(after.waves.values_list("completed_at", flat=True)) == [None, None, None]
    assert changes_by_hand() == []


def test_a_reason_longer_than_the_column_is_refused_on_the_confirmation_page(
    client: Client, administrator: User, make_rule: MakeRule
) -> None:
    rollout = started(make_rule(pending="4.0.2"))
    client.force_login(administrator)

    response = client.post(f"{ROLLOUTS}{rollout.pk}/pause/", {"post": "yes", "reason": "x" * 401})

    assert response.status_code == 200
    assert response.context["form"].errors == {
        "reason": ["Ensure this value has at most 400 characters (it has 401)."]
    }
    assert Rollout.objects.get().state == "running"
    assert changes_by_hand() == []


@pytest.mark.parametrize("button", list(rollout_pages.TRANSITIONS))
def test_helpdesk_cannot_press_a_button_nor_plan(
    client: Client, helpdesk: User, make_rule: MakeRule, button: str
) -> None:
    rule = make_rule(pending="4.0.2", approved="4.0.1")
    rollout = in_state(started(rule), RolloutState.PAUSED)
    client.force_login(helpdesk)

    assert client.get(f"{ROLLOUTS}{rollout.pk}/{button}/").status_code == 403
    assert client.post(f"{ROLLOUTS}{rollout.pk}/{button}/", {"post": "yes"}).status_code == 403
    assert client.get(plan_url(rule)).status_code == 403
    assert client.post(plan_url(rule), {**PLAN, "post": "yes"}).status_code == 403
    assert list(Rollout.objects.values_list("state", "current_wave")) == [("paused", 0)]
    assert changes_by_hand() == []


def test_a_missing_rollout_is_not_found(client: Client, administrator: User) -> None:
    client.force_login(administrator)
    assert client.get(f"{ROLLOUTS}999/advance/").status_code == 404


def test_wave_table_marks_the_current_wave_with_its_times(
    client: Client, administrator: User, make_rule: MakeRule
) -> None:
    rule = make_rule(pending="4.0.2")
    group = device_group_save(name="Pilots", members=["SN:CX6-1"], actor=SETUP)
    plan = RolloutPlan(waves=(WavePlan(groups=(group.name,)), WavePlan(percent=100)))
    start = dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.UTC)
    rollout = rollout_plan(rule=rule, plan=plan, actor=SETUP, now=start)
    client.force_login(administrator)

    response = client.get(f"{ROLLOUTS}{rollout.pk}/change/")

    page = response.content.decode()
    assert '<tr class="current"><td>1</td><td>group:Pilots</td>' in page
    assert "<td>2</td><td>100 %</td><td>-</td><td>-</td><td></td>" in page
    assert DeviceGroup.objects.count() == 1
