"""Device log configuration in the control panel: set, change, reset to the defaults."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client

from portal.models import AuditEntry, DeviceLogConfiguration, Site
from portal.services.audit import Actor
from portal.services.log_config import log_config_set

pytestmark = pytest.mark.django_db

CHANGELIST = "/admin/portal/devicelogconfiguration/"
ADD = f"{CHANGELIST}add/"
GIB = 1024**3


def form_data(**change: Any) -> dict[str, Any]:
    return {
        "scope": "global",
        "log_cleanup_interval_days": "30",
        "log_cleanup_time_of_day": "02:30",
        "log_flush_interval_minutes": "5",
        "max_log_cache_limit": "512000",
        "max_log_file_size": "1024000",
        "valid_log_file_extensions": ".dmp .clg .txt",
        "valid_log_file_types": "Watson CELog",
        "log_store_quota": str(10 * GIB),
        **change,
    }


def stored() -> list[tuple[str, int, dt.time | None, list[str], list[str]]]:
    return [
        (
            config.scope,
            config.log_cleanup_interval_days,
            config.log_cleanup_time_of_day,
            config.valid_log_file_extensions,
            config.valid_log_file_types,
        )
        for config in DeviceLogConfiguration.objects.select_related("site").order_by("pk")
    ]


def test_set_the_global_settings(client: Client, administrator: User) -> None:
    client.force_login(administrator)

    response = client.post(ADD, form_data())

    assert response.status_code == 302
    assert stored() == [
        ("global", 30, dt.time(2, 30), [".dmp", ".clg", ".txt"], ["Watson", "CELog"])
    ]
    entry = AuditEntry.objects.get()
    assert (entry.action, entry.actor_name, entry.object_repr) == (
        "portal.log_config.created",
        "ada",
        "global",
    )
    assert entry.changes["log_cleanup_interval_days"] == [None, 30]


def test_a_new_scopes_form_starts_from_the_defaults(client: Client, administrator: User) -> None:
    """Every field, the two word lists among them: saving it unchanged stores the defaults."""
    client.force_login(administrator)

    form = client.get(ADD).context["adminform"].form

    assert {name: form[name].value() for name in form.fields if name != "scope"} == {
        "log_cleanup_interval_days": 10,
        "log_cleanup_time_of_day": None,
        "log_flush_interval_minutes": 5,
        "max_log_cache_limit": 512_000,
        "max_log_file_size": 1_024_000,
        "valid_log_file_extensions": (
            ".dmp .clg .clg1 .clg2 .bak .kdmp .dat .bin .cat .xml .txt .hex"
        ),
        "valid_log_file_types": "Watson CELog Config DiagLog",
        "log_store_quota": 10 * GIB,
    }


def test_change_a_sites_settings(client: Client, administrator: User) -> None:
    config = log_config_set(
        scope="site:Default", values={"log_cleanup_interval_days": 20}, actor=Actor.system("setup")
    )
    client.force_login(administrator)
    page = client.get(f"{CHANGELIST}{config.pk}/change/")
    form = page.context["adminform"].form
    assert (form["scope"].value(), form["valid_log_file_extensions"].value()) == (
        "site:Default",
        ".dmp .clg .clg1 .clg2 .bak .kdmp .dat .bin .cat .xml .txt .hex",
    )

    # The scope of a row cannot be changed: the posted one is ignored.
    response = client.post(
        f"{CHANGELIST}{config.pk}/change/", form_data(scope="global", log_cleanup_interval_days="7")
    )

    assert response.status_code == 302
    assert stored() == [
        ("site:Default", 7, dt.time(2, 30), [".dmp", ".clg", ".txt"], ["Watson", "CELog"])
    ]
    entry = AuditEntry.objects.latest("id")
    assert (entry.action, entry.actor_name, entry.changes["log_cleanup_interval_days"]) == (
        "portal.log_config.changed",
        "ada",
        [20, 7],
    )


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("log_cleanup_interval_days", "0", "Ensure this value is greater than or equal to 1."),
        ("log_cleanup_interval_days", "366", "Ensure this value is less than or equal to 365."),
        ("log_flush_interval_minutes", "61", "Ensure this value is less than or equal to 60."),
        ("log_flush_interval_minutes", "0", "Ensure this value is greater than or equal to 1."),
        ("log_cleanup_time_of_day", "25:00", "Enter a valid time."),
        ("valid_log_file_extensions", ".dmp exe", "'exe' is not a valid file extension (.ext)"),
        ("valid_log_file_types", "Watson Bad!Type", "'Bad!Type' is not a valid log type"),
        ("valid_log_file_types", "", "This field is required."),
    ],
)
def test_out_of_range_values_are_form_errors_and_nothing_changes(
    client: Client, administrator: User, field: str, value: str, message: str
) -> None:
    config = log_config_set(
        scope="global", values={"log_cleanup_interval_days": 20}, actor=Actor.system("setup")
    )
    before = stored()
    client.force_login(administrator)

    added = client.post(ADD, form_data(scope="site:Default", **{field: value}))
    changed = client.post(f"{CHANGELIST}{config.pk}/change/", form_data(**{field: value}))

    for response in (added, changed):
        assert response.status_code == 200
        assert response.context["adminform"].form.errors == {field: [message]}
    assert stored() == before
    assert AuditEntry.objects.count() == 1  # the setup's own row


def test_a_scope_with_settings_is_not_offered_for_a_new_row(
    client: Client, administrator: User
) -> None:
    log_config_set(scope="global", values={}, actor=Actor.system("setup"))
    Site.objects.create(name="Branch")
    client.force_login(administrator)

    page = client.get(ADD)
    again = client.post(ADD, form_data(scope="global"))

    assert page.context["adminform"].form.fields["scope"].choices == [
        ("site:Branch", "site:Branch"),
        ("site:Default", "site:Default"),
    ]
    assert again.status_code == 200
    assert again.context["adminform"].form.errors == {
        "scope": ["Select a valid choice. global is not one of the available choices."]
    }
    assert DeviceLogConfiguration.objects.count() == 1


def test_deleting_resets_to_the_defaults_or_to_global(client: Client, administrator: User) -> None:
    setup = Actor.system("setup")
    global_config = log_config_set(
        scope="global", values={"log_cleanup_interval_days": 20}, actor=setup
    )
    site_config = log_config_set(
        scope="site:Default", values={"log_cleanup_interval_days": 40}, actor=setup
    )
    client.force_login(administrator)

    client.post(f"{CHANGELIST}{site_config.pk}/delete/", {"post": "yes"})
    after_site_reset = client.get(CHANGELIST).context["effective_log_configs"]
    client.post(f"{CHANGELIST}{global_config.pk}/delete/", {"post": "yes"})
    after_global_reset = client.get(CHANGELIST).context["effective_log_configs"]

    assert [(scope, c.source, c.log_cleanup_interval_days) for scope, c in after_site_reset] == [
        ("global", "global", 20),
        ("site:Default", "global", 20),
    ]
    assert [(scope, c.source, c.log_cleanup_interval_days) for scope, c in after_global_reset] == [
        ("global", "defaults", 10),
        ("site:Default", "defaults", 10),
    ]
    assert DeviceLogConfiguration.objects.count() == 0
    assert list(
        AuditEntry.objects.filter(actor_name="ada").values_list("action", "object_repr")
    ) == [("portal.log_config.reset", "global"), ("portal.log_config.reset", "site:Default")]


def test_list_shows_the_settings_in_force_for_every_site(
    client: Client, administrator: User
) -> None:
    setup = Actor.system("setup")
    log_config_set(scope="global", values={"log_cleanup_interval_days": 20}, actor=setup)
    Site.objects.create(name="Branch")
    log_config_set(scope="site:Branch", values={"log_flush_interval_minutes": 9}, actor=setup)
    client.force_login(administrator)

    response = client.get(CHANGELIST)

    assert response.status_code == 200
    assert [
        (scope, c.source, c.log_cleanup_interval_days, c.log_flush_interval_minutes)
        for scope, c in response.context["effective_log_configs"]
    ] == [
        ("global", "global", 20, 5),
        ("site:Branch", "site:Branch", 10, 9),
        ("site:Default", "global", 20, 5),
    ]
    # Both tables in words: a duration, sizes in KiB/GiB, the clean-up's schedule.
    assert response.context["in_force_headers"] == [
        "LogFlushInterval",
        "MaxLogCacheLimit",
        "MaxLogFileSize",
        "LogStoreQuota",
        "LogCleanUp",
    ]
    sizes = ["500 KiB", "1000 KiB", "10 GiB"]
    assert response.context["in_force"] == [
        ("global", "global", ["5 minutes", *sizes, "every 20 days, any time"]),
        ("site:Branch", "site:Branch", ["9 minutes", *sizes, "every 10 days, any time"]),
        ("site:Default", "global", ["5 minutes", *sizes, "every 20 days, any time"]),
    ]
    page = response.content.decode()
    assert "Settings in force, per scope" in page
    assert "<tr><td>site:Default</td><td>global</td><td>5 minutes</td>" in page
    listed = {config.scope: config for config in response.context["cl"].result_list}
    admin = response.context["cl"].model_admin
    assert [(admin.flush(listed[s]), admin.cleanup(listed[s])) for s in sorted(listed)] == [
        ("5 minutes", "every 20 days, any time"),
        ("9 minutes", "every 10 days, any time"),
    ]


def test_bulk_delete_resets_through_the_service(client: Client, administrator: User) -> None:
    setup = Actor.system("setup")
    configs = [
        log_config_set(scope="global", values={}, actor=setup),
        log_config_set(scope="site:Default", values={}, actor=setup),
    ]
    client.force_login(administrator)

    response = client.post(
        CHANGELIST,
        {
            "action": "delete_selected",
            "_selected_action": [config.pk for config in configs],
            "post": "yes",
        },
    )

    assert response.status_code == 302
    assert DeviceLogConfiguration.objects.count() == 0
    assert sorted(
        AuditEntry.objects.filter(actor_name="ada").values_list("action", "object_repr")
    ) == [("portal.log_config.reset", "global"), ("portal.log_config.reset", "site:Default")]
