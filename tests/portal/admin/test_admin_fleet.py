"""The fleet settings in the control panel: device groups (members as a list of MACs
and serial numbers), a site's time zone and maintenance windows, and a server's cap
on new offers per minute; every write through its service, audited."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client

from portal.choices import Weekday
from portal.models import AuditEntry, DeviceGroup, MaintenanceWindow, Server, Site
from portal.services.audit import Actor
from portal.services.fleet import device_group_save, maintenance_window_create
from portal.services.rollout_plans import RolloutPlan, WavePlan
from portal.services.rollouts import rollout_plan

pytestmark = pytest.mark.django_db

GROUPS = "/admin/portal/devicegroup/"
SITES = "/admin/portal/site/"
SERVERS = "/admin/portal/server/"
SETUP = Actor.system("setup")
Messages = Callable[[Any], list[tuple[str, str]]]


def changes_by_hand() -> list[tuple[str, str, dict[str, Any]]]:
    return list(
        AuditEntry.objects.exclude(actor_name="setup")
        .order_by("id")
        .values_list("action", "actor_name", "changes")
    )


def members_of(group: DeviceGroup) -> list[str]:
    return sorted(member.identity for member in group.members.all())


def pilots() -> DeviceGroup:
    return device_group_save(name="Pilots", members=["00-04-F2-11-22-33", "SN:CX6-1"], actor=SETUP)


# -- device groups --------------------------------------------------------------------


def test_add_a_device_group_with_members_in_any_form(client: Client, administrator: User) -> None:
    client.force_login(administrator)

    response = client.post(
        f"{GROUPS}add/",
        {
            "name": " Pilots ",
            "description": "Floor 3",
            "members": "00-04-f2-11-22-33\n0004F2AABBCC, SN:cx6-0012345\n\n00:04:F2:11:22:33",
        },
    )

    assert response.status_code == 302
    assert response["Location"] == GROUPS
    group = DeviceGroup.objects.get()
    assert (group.name, group.description) == ("Pilots", "Floor 3")
    assert members_of(group) == ["MAC:0004F2112233", "MAC:0004F2AABBCC", "SN:CX6-0012345"]
    assert changes_by_hand() == [
        (
            "portal.device_group.created",
            "ada",
            {
                "name": [None, "Pilots"],
                "description": [None, "Floor 3"],
                "members": [None, ["MAC:0004F2112233", "MAC:0004F2AABBCC", "SN:CX6-0012345"]],
            },
        )
    ]


def test_the_group_page_lists_its_members_and_replaces_them(
    client: Client, administrator: User
) -> None:
    group = pilots()
    client.force_login(administrator)

    page = client.get(f"{GROUPS}{group.pk}/change/")
    response = client.post(
        f"{GROUPS}{group.pk}/change/",
        {"name": "Pilots", "description": "", "members": "SN:CX6-1\nSN:CX6-2"},
    )

    assert page.context["adminform"].form["members"].value() == "MAC:0004F2112233\nSN:CX6-1"
    assert response.status_code == 302
    assert members_of(group) == ["SN:CX6-1", "SN:CX6-2"]
    assert changes_by_hand() == [
        (
            "portal.device_group.changed",
            "ada",
            {"members": [["MAC:0004F2112233", "SN:CX6-1"], ["SN:CX6-1", "SN:CX6-2"]]},
        )
    ]


def test_group_list_counts_the_phones(client: Client, helpdesk: User) -> None:
    pilots()
    device_group_save(name="Empty", members=[], actor=SETUP)
    client.force_login(helpdesk)

    response = client.get(GROUPS)

    assert response.status_code == 200
    changelist = response.context["cl"]
    assert [
        (group.name, changelist.model_admin.member_count(group)) for group in changelist.result_list
    ] == [("Empty", 0), ("Pilots", 2)]


@pytest.mark.parametrize(
    ("data", "errors"),
    [
        (
            {"name": "New", "members": "00-04-F2-11-22-33\nphone!"},
            {"members": ["'phone!' is neither a MAC address nor a serial number"]},
        ),
        (
            {"name": "pilots", "members": ""},
            {"name": ["a device group named 'pilots' already exists"]},
        ),
        ({"name": "", "members": "SN:1"}, {"name": ["This field is required."]}),
        (
            {"name": "New", "members": "MAC:zz"},
            {"members": ["'zz' is not a MAC address"]},
        ),
    ],
)
def test_a_refused_group_is_a_form_error_and_nothing_changes(
    client: Client, administrator: User, data: dict[str, str], errors: dict[str, list[str]]
) -> None:
    pilots()
    client.force_login(administrator)

    response = client.post(f"{GROUPS}add/", {"description": "", **data})

    assert response.status_code == 200
    assert response.context["adminform"].form.errors == errors
    assert list(DeviceGroup.objects.values_list("name", flat=True)) == ["Pilots"]
    assert changes_by_hand() == []


def test_delete_a_group(client: Client, administrator: User, read_messages: Messages) -> None:
    group = pilots()
    client.force_login(administrator)

    response = client.post(f"{GROUPS}{group.pk}/delete/", {"post": "yes"})

    assert response.status_code == 302
    assert DeviceGroup.objects.count() == 0
    assert changes_by_hand() == [("portal.device_group.deleted", "ada", {"name": ["Pilots", None]})]


@pytest.mark.parametrize("how", ["page", "list action"])
def test_a_group_in_an_active_rollout_is_not_deleted(
    client: Client,
    administrator: User,
    make_rule: Callable[..., Any],
    read_messages: Messages,
    how: str,
) -> None:
    group = pilots()
    rollout = rollout_plan(
        rule=make_rule(pending="4.0.2"),
        plan=RolloutPlan(waves=(WavePlan(groups=("Pilots",)),)),
        actor=SETUP,
    )
    client.force_login(administrator)

    if how == "page":
        response = client.post(f"{GROUPS}{group.pk}/delete/", {"post": "yes"})
    else:
        response = client.post(
            GROUPS, {"action": "delete_selected", "_selected_action": [group.pk], "post": "yes"}
        )

    assert response.status_code == 302
    assert read_messages(response) == [
        ("error", f"device group 'Pilots' is in a wave of active rollout #{rollout.pk}")
    ]
    assert members_of(DeviceGroup.objects.get()) == ["MAC:0004F2112233", "SN:CX6-1"]
    assert changes_by_hand() == []


def test_helpdesk_sees_groups_but_cannot_change_them(client: Client, helpdesk: User) -> None:
    group = pilots()
    client.force_login(helpdesk)

    page = client.get(f"{GROUPS}{group.pk}/change/")
    assert page.status_code == 200
    assert "MAC:0004F2112233, SN:CX6-1" in page.content.decode()
    assert 'name="_save"' not in page.content.decode()
    assert client.get(f"{GROUPS}add/").status_code == 403
    assert client.post(f"{GROUPS}add/", {"name": "X", "members": ""}).status_code == 403
    changed = client.post(f"{GROUPS}{group.pk}/change/", {"name": "X", "members": ""})
    assert changed.status_code == 403
    assert client.post(f"{GROUPS}{group.pk}/delete/", {"post": "yes"}).status_code == 403
    assert list(DeviceGroup.objects.values_list("name", flat=True)) == ["Pilots"]
    assert changes_by_hand() == []


# -- sites: time zone and maintenance windows -----------------------------------------


def site_form(site: Site, **fields: str) -> dict[str, str]:
    """The site page's form as the browser sends it, with no pool and no window changed."""
    windows = list(site.maintenance_windows.order_by("weekday", "start"))
    data = {
        "name": site.name,
        "description": site.description,
        "time_zone": site.time_zone,
        "pools-TOTAL_FORMS": "0",
        "pools-INITIAL_FORMS": "0",
        "maintenance_windows-TOTAL_FORMS": str(len(windows)),
        "maintenance_windows-INITIAL_FORMS": str(len(windows)),
    }
    for index, window in enumerate(windows):
        data[f"maintenance_windows-{index}-id"] = str(window.pk)
        data[f"maintenance_windows-{index}-site"] = str(site.pk)
    data.update(fields)
    return data


def new_window(site: Site, index: int, weekday: int, start: str, end: str) -> dict[str, str]:
    prefix = f"maintenance_windows-{index}"
    return {
        f"{prefix}-weekday": str(weekday),
        f"{prefix}-start": start,
        f"{prefix}-end": end,
        f"{prefix}-site": str(site.pk),
    }


def windows() -> list[tuple[str, int, dt.time, dt.time]]:
    return list(
        MaintenanceWindow.objects.order_by("weekday", "start").values_list(
            "site__name", "weekday", "start", "end"
        )
    )


def test_change_a_site_time_zone(client: Client, administrator: User) -> None:
    site = Site.objects.get(name="Default")
    client.force_login(administrator)

    response = client.post(f"{SITES}{site.pk}/change/", site_form(site, time_zone="Europe/Paris"))

    assert response.status_code == 302
    site.refresh_from_db()
    assert site.time_zone == "Europe/Paris"
    assert changes_by_hand() == [
        ("portal.site.changed", "ada", {"time_zone": ["UTC", "Europe/Paris"]})
    ]


def test_an_unknown_time_zone_is_refused(client: Client, administrator: User) -> None:
    site = Site.objects.get(name="Default")
    client.force_login(administrator)

    response = client.post(f"{SITES}{site.pk}/change/", site_form(site, time_zone="Mars/Base"))

    assert response.status_code == 200
    assert response.context["adminform"].form.errors == {
        "time_zone": ["Mars/Base is not a known time zone (an IANA name such as Europe/Paris)."]
    }
    site.refresh_from_db()
    assert site.time_zone == "UTC"
    assert changes_by_hand() == []


def test_add_maintenance_windows_on_the_site_page(client: Client, administrator: User) -> None:
    site = Site.objects.get(name="Default")
    client.force_login(administrator)
    data = site_form(site, **{"maintenance_windows-TOTAL_FORMS": "2"})
    data.update(new_window(site, 0, Weekday.SUNDAY, "01:00", "04:00"))
    data.update(new_window(site, 1, Weekday.WEDNESDAY, "22:00", "23:30"))

    response = client.post(f"{SITES}{site.pk}/change/", data)

    assert response.status_code == 302
    assert windows() == [
        ("Default", 2, dt.time(22, 0), dt.time(23, 30)),
        ("Default", 6, dt.time(1, 0), dt.time(4, 0)),
    ]
    assert changes_by_hand() == [
        (
            "portal.maintenance_window.created",
            "ada",
            {"window": [None, "Default: Sunday 01:00–04:00"], "time_zone": [None, "UTC"]},
        ),
        (
            "portal.maintenance_window.created",
            "ada",
            {"window": [None, "Default: Wednesday 22:00–23:30"], "time_zone": [None, "UTC"]},
        ),
    ]
    listing = client.get(SITES)
    (row,) = listing.context["cl"].result_list
    assert listing.context["cl"].model_admin.windows(row) == (
        "Wednesday 22:00–23:30; Sunday 01:00–04:00"
    )


@pytest.mark.parametrize(
    ("window", "errors"),
    [
        (
            (Weekday.SUNDAY, "03:00", "05:00"),
            {"start": ["the window overlaps Default: Sunday 01:00–04:00"]},
        ),
        (
            (Weekday.MONDAY, "04:00", "04:00"),
            {
                "end": [
                    "the window 04:00–04:00 is empty: the end must be after the start "
                    "(split a window across midnight into two)"
                ]
            },
        ),
        (
            (Weekday.MONDAY, "25:00", "26:00"),
            {"start": ["Enter a valid time."], "end": ["Enter a valid time."]},
        ),
    ],
)
def test_a_refused_window_is_an_error_on_its_row_and_nothing_changes(
    client: Client,
    administrator: User,
    window: tuple[int, str, str],
    errors: dict[str, list[str]],
) -> None:
    site = Site.objects.get(name="Default")
    maintenance_window_create(
        site=site, weekday=Weekday.SUNDAY, start=dt.time(1), end=dt.time(4), actor=SETUP
    )
    client.force_login(administrator)
    data = site_form(site, description="renamed", **{"maintenance_windows-TOTAL_FORMS": "2"})
    data.update(new_window(site, 1, *window))

    response = client.post(f"{SITES}{site.pk}/change/", data)

    assert response.status_code == 200
    (formset,) = [
        f for f in response.context["inline_admin_formsets"] if f.formset.prefix.startswith("m")
    ]
    assert formset.formset.errors == [{}, errors]
    assert windows() == [("Default", 6, dt.time(1, 0), dt.time(4, 0))]
    site.refresh_from_db()
    assert site.description == "Created at install"
    assert changes_by_hand() == []


def test_two_new_windows_that_overlap_each_other_are_refused(
    client: Client, administrator: User
) -> None:
    site = Site.objects.get(name="Default")
    client.force_login(administrator)
    data = site_form(site, **{"maintenance_windows-TOTAL_FORMS": "2"})
    data.update(new_window(site, 0, Weekday.SUNDAY, "01:00", "04:00"))
    data.update(new_window(site, 1, Weekday.SUNDAY, "02:00", "03:00"))

    response = client.post(f"{SITES}{site.pk}/change/", data)

    assert response.status_code == 200
    (formset,) = [
        f for f in response.context["inline_admin_formsets"] if f.formset.prefix.startswith("m")
    ]
    assert formset.formset.errors == [
        {},
        {"start": ["the window overlaps Default: Sunday 01:00–04:00"]},
    ]
    assert windows() == []
    assert changes_by_hand() == []


def test_replace_a_window_in_one_save(client: Client, administrator: User) -> None:
    site = Site.objects.get(name="Default")
    maintenance_window_create(
        site=site, weekday=Weekday.SUNDAY, start=dt.time(1), end=dt.time(4), actor=SETUP
    )
    client.force_login(administrator)
    data = site_form(
        site, **{"maintenance_windows-TOTAL_FORMS": "2", "maintenance_windows-0-DELETE": "on"}
    )
    data.update(new_window(site, 1, Weekday.SUNDAY, "02:00", "05:00"))

    response = client.post(f"{SITES}{site.pk}/change/", data)

    assert response.status_code == 302
    assert windows() == [("Default", 6, dt.time(2, 0), dt.time(5, 0))]
    assert [action for action, _, _ in changes_by_hand()] == [
        "portal.maintenance_window.deleted",
        "portal.maintenance_window.created",
    ]


def test_existing_windows_are_read_only(client: Client, administrator: User) -> None:
    site = Site.objects.get(name="Default")
    maintenance_window_create(
        site=site, weekday=Weekday.SUNDAY, start=dt.time(1), end=dt.time(4), actor=SETUP
    )
    client.force_login(administrator)
    data = site_form(
        site,
        **{
            "maintenance_windows-0-weekday": str(Weekday.MONDAY),
            "maintenance_windows-0-start": "05:00",
            "maintenance_windows-0-end": "06:00",
        },
    )

    response = client.post(f"{SITES}{site.pk}/change/", data)

    assert response.status_code == 302
    assert windows() == [("Default", 6, dt.time(1, 0), dt.time(4, 0))]
    assert changes_by_hand() == []


def test_a_new_site_gets_its_windows_once_saved(client: Client, administrator: User) -> None:
    client.force_login(administrator)

    page = client.get(f"{SITES}add/")
    response = client.post(
        f"{SITES}add/",
        {
            "name": "Paris",
            "description": "",
            "time_zone": "Europe/Paris",
            "pools-TOTAL_FORMS": "0",
            "pools-INITIAL_FORMS": "0",
        },
    )

    assert [f.formset.prefix for f in page.context["inline_admin_formsets"]] == ["pools"]
    assert response.status_code == 302
    assert Site.objects.get(name="Paris").time_zone == "Europe/Paris"


def test_helpdesk_cannot_add_or_delete_windows(client: Client, helpdesk: User) -> None:
    site = Site.objects.get(name="Default")
    maintenance_window_create(
        site=site, weekday=Weekday.SUNDAY, start=dt.time(1), end=dt.time(4), actor=SETUP
    )
    client.force_login(helpdesk)
    data = site_form(
        site, **{"maintenance_windows-TOTAL_FORMS": "2", "maintenance_windows-0-DELETE": "on"}
    )
    data.update(new_window(site, 1, Weekday.MONDAY, "01:00", "02:00"))

    page = client.get(f"{SITES}{site.pk}/change/")
    response = client.post(f"{SITES}{site.pk}/change/", data)

    assert page.status_code == 200
    assert "Sunday" in page.content.decode()
    assert response.status_code == 403
    assert windows() == [("Default", 6, dt.time(1, 0), dt.time(4, 0))]
    assert changes_by_hand() == []


# -- servers: the offer cap -----------------------------------------------------------


def server_form(server: Server, **fields: str) -> dict[str, str]:
    return {
        "pool": str(server.pool_id),
        "fqdn": server.fqdn,
        "offer_cap_per_minute": str(server.offer_cap_per_minute),
        **fields,
    }


def test_set_a_server_offer_cap(client: Client, administrator: User) -> None:
    server = Server.objects.get()
    client.force_login(administrator)

    response = client.post(
        f"{SERVERS}{server.pk}/change/", server_form(server, offer_cap_per_minute="120")
    )

    assert response.status_code == 302
    server.refresh_from_db()
    assert server.offer_cap_per_minute == 120
    assert changes_by_hand() == [
        ("portal.server.changed", "ada", {"offer_cap_per_minute": [0, 120]})
    ]
    listing = client.get(SERVERS)
    assert "offer_cap_per_minute" in listing.context["cl"].list_display


def test_a_negative_offer_cap_is_refused(client: Client, administrator: User) -> None:
    server = Server.objects.get()
    client.force_login(administrator)

    response = client.post(
        f"{SERVERS}{server.pk}/change/", server_form(server, offer_cap_per_minute="-1")
    )

    assert response.status_code == 200
    assert response.context["adminform"].form.errors == {
        "offer_cap_per_minute": ["Ensure this value is greater than or equal to 0."]
    }
    server.refresh_from_db()
    assert server.offer_cap_per_minute == 0
    assert changes_by_hand() == []


def test_helpdesk_cannot_set_the_offer_cap(client: Client, helpdesk: User) -> None:
    server = Server.objects.get()
    client.force_login(helpdesk)

    response = client.post(
        f"{SERVERS}{server.pk}/change/", server_form(server, offer_cap_per_minute="5")
    )

    assert response.status_code == 403
    server.refresh_from_db()
    assert server.offer_cap_per_minute == 0
    assert changes_by_hand() == []
