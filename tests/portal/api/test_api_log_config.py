"""Device log configuration through the API: configured scopes, effective settings per
site, set (PUT/PATCH) and reset (DELETE); out-of-range values are field errors."""

from __future__ import annotations

from typing import Any

import pytest
from rest_framework.test import APIClient

from portal.models import AuditEntry, DeviceLogConfiguration, Site
from portal.services.audit import Actor
from portal.services.log_config import log_config_set

pytestmark = pytest.mark.django_db

SETUP = Actor.system("setup")

DEFAULTS: dict[str, Any] = {
    "log_cleanup_interval_days": 10,
    "log_cleanup_time_of_day": None,
    "log_flush_interval_minutes": 5,
    "max_log_cache_limit": 512_000,
    "max_log_file_size": 1_024_000,
    "valid_log_file_extensions": [".dmp", ".clg", ".clg1", ".clg2", ".bak", ".kdmp", ".dat",
                                  ".bin", ".cat", ".xml", ".txt", ".hex"],
    "valid_log_file_types": ["Watson", "CELog", "Config", "DiagLog"],
    "log_store_quota": 10_737_418_240,
}  # fmt: skip
EVERY_SETTING: dict[str, Any] = {
    "log_cleanup_interval_days": 30,
    "log_cleanup_time_of_day": "03:30",
    "log_flush_interval_minutes": 15,
    "max_log_cache_limit": 1_000_000,
    "max_log_file_size": 2_048_000,
    "valid_log_file_extensions": [".CLG", ".txt", ".clg"],
    "valid_log_file_types": ["Watson", "CELog"],
    "log_store_quota": 1_073_741_824,
}


def configured() -> list[tuple[str, int]]:
    return [
        (config.scope, config.log_flush_interval_minutes)
        for config in DeviceLogConfiguration.objects.select_related("site").order_by("pk")
    ]


def test_no_scope_has_settings_on_a_fresh_install(admin_api: APIClient) -> None:
    response = admin_api.get("/api/v1/log-config/")

    assert response.status_code == 200
    assert response.json() == []


def test_put_sets_every_setting_of_the_global_scope(admin_api: APIClient) -> None:
    response = admin_api.put("/api/v1/log-config/global/", EVERY_SETTING, format="json")

    assert response.status_code == 200
    assert response.json() == {
        "scope": "global",
        **EVERY_SETTING,
        "log_cleanup_time_of_day": "03:30:00",
        "valid_log_file_extensions": [".clg", ".txt"],
    }
    assert configured() == [("global", 15)]
    entry = AuditEntry.objects.get()
    assert (entry.action, entry.actor_name) == ("portal.log_config.created", "ada")


def test_put_needs_every_setting(admin_api: APIClient) -> None:
    response = admin_api.put(
        "/api/v1/log-config/global/", {"log_flush_interval_minutes": 15}, format="json"
    )

    assert response.status_code == 400
    assert response.json() == {
        name: ["This field is required."]
        for name in EVERY_SETTING
        if name != "log_flush_interval_minutes"
    }
    assert configured() == []


def test_patch_changes_a_site_and_starts_it_from_the_defaults(admin_api: APIClient) -> None:
    response = admin_api.patch(
        "/api/v1/log-config/site:default/", {"log_flush_interval_minutes": 20}, format="json"
    )

    assert response.status_code == 200
    assert response.json() == {
        "scope": "site:Default",
        **DEFAULTS,
        "log_flush_interval_minutes": 20,
    }
    assert configured() == [("site:Default", 20)]


def test_list_shows_global_first_then_sites(admin_api: APIClient) -> None:
    Site.objects.create(name="Berlin")
    log_config_set(scope="site:Berlin", values={"log_flush_interval_minutes": 7}, actor=SETUP)
    log_config_set(scope="global", values={"log_flush_interval_minutes": 9}, actor=SETUP)

    response = admin_api.get("/api/v1/log-config/")

    assert response.status_code == 200
    assert response.json() == [
        {"scope": "global", **DEFAULTS, "log_flush_interval_minutes": 9},
        {"scope": "site:Berlin", **DEFAULTS, "log_flush_interval_minutes": 7},
    ]


def test_detail_is_a_scope_own_settings(admin_api: APIClient) -> None:
    log_config_set(scope="global", values={"max_log_file_size": 4096}, actor=SETUP)

    response = admin_api.get("/api/v1/log-config/global/")

    assert response.status_code == 200
    assert response.json() == {"scope": "global", **DEFAULTS, "max_log_file_size": 4096}


def test_detail_of_a_scope_without_settings_is_404(admin_api: APIClient) -> None:
    response = admin_api.get("/api/v1/log-config/site:Default/")

    assert response.status_code == 404
    assert response.json() == {"detail": "site:Default has no settings of its own"}


def test_effective_settings_per_site_say_where_they_come_from(admin_api: APIClient) -> None:
    Site.objects.create(name="Berlin")
    Site.objects.create(name="Oslo")
    log_config_set(scope="global", values={"log_flush_interval_minutes": 9}, actor=SETUP)
    log_config_set(scope="site:Oslo", values={"log_cleanup_interval_days": 3}, actor=SETUP)

    response = admin_api.get("/api/v1/log-config/effective/")

    assert response.status_code == 200
    assert response.json() == [
        {"site": "Berlin", "source": "global", **DEFAULTS, "log_flush_interval_minutes": 9},
        {"site": "Default", "source": "global", **DEFAULTS, "log_flush_interval_minutes": 9},
        {"site": "Oslo", "source": "site:Oslo", **DEFAULTS, "log_cleanup_interval_days": 3},
    ]


def test_effective_settings_are_the_defaults_when_nothing_is_set(admin_api: APIClient) -> None:
    response = admin_api.get("/api/v1/log-config/effective/")

    assert response.json() == [{"site": "Default", "source": "defaults", **DEFAULTS}]


def test_delete_resets_a_scope(admin_api: APIClient) -> None:
    log_config_set(scope="global", values={"log_flush_interval_minutes": 9}, actor=SETUP)

    response = admin_api.delete("/api/v1/log-config/global/")

    assert response.status_code == 204
    assert configured() == []
    entry = AuditEntry.objects.get(action="portal.log_config.reset")
    assert entry.actor_name == "ada"


def test_delete_of_a_scope_without_settings_is_404_and_records_nothing(
    admin_api: APIClient,
) -> None:
    response = admin_api.delete("/api/v1/log-config/global/")

    assert response.status_code == 404
    assert response.json() == {"detail": "global has no settings of its own"}
    assert AuditEntry.objects.count() == 0


@pytest.mark.parametrize(
    ("scope", "values", "errors"),
    [
        (
            "global",
            {"log_cleanup_interval_days": 0},
            {"log_cleanup_interval_days": ["Ensure this value is greater than or equal to 1."]},
        ),
        (
            "global",
            {"log_cleanup_interval_days": 366},
            {"log_cleanup_interval_days": ["Ensure this value is less than or equal to 365."]},
        ),
        (
            "global",
            {"log_flush_interval_minutes": 61, "max_log_file_size": 0},
            {
                "log_flush_interval_minutes": ["Ensure this value is less than or equal to 60."],
                "max_log_file_size": ["Ensure this value is greater than or equal to 1."],
            },
        ),
        (
            "global",
            {"log_cleanup_time_of_day": "25:00"},
            {
                "log_cleanup_time_of_day": [
                    "Time has wrong format. Use one of these formats instead: hh:mm[:ss[.uuuuuu]]."
                ]
            },
        ),
        (
            "global",
            {"valid_log_file_extensions": ["dmp"]},
            {"valid_log_file_extensions": ["'dmp' is not a valid file extension (.ext)"]},
        ),
        (
            "global",
            {"valid_log_file_types": []},
            {"valid_log_file_types": ["give 1 to 100 log types"]},
        ),
        ("site:Nowhere", {"log_flush_interval_minutes": 9}, {"scope": ["no site named 'Nowhere'"]}),
        (
            "everywhere",
            {"log_flush_interval_minutes": 9},
            {"scope": ["'everywhere' is not a scope (global or site:<name>)"]},
        ),
    ],
)
def test_bad_settings_are_400_and_change_nothing(
    admin_api: APIClient, scope: str, values: dict[str, Any], errors: dict[str, list[str]]
) -> None:
    log_config_set(scope="global", values={"log_flush_interval_minutes": 9}, actor=SETUP)

    response = admin_api.patch(f"/api/v1/log-config/{scope}/", values, format="json")

    assert response.status_code == 400
    assert response.json() == errors
    assert configured() == [("global", 9)]
    assert DeviceLogConfiguration.objects.get().log_cleanup_interval_days == 10
    assert AuditEntry.objects.count() == 1
