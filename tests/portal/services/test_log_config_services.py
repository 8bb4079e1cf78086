"""Device log configuration: defaults, ranges, site overrides, reset."""

from __future__ import annotations

import datetime as dt

import pytest

from portal.errors import DomainError
from portal.models import AuditEntry, DeviceLogConfiguration, Site
from portal.selectors import log_config_effective
from portal.services.audit import Actor
from portal.services.log_config import log_config_reset, log_config_set

pytestmark = pytest.mark.django_db

ACTOR = Actor.system("tests")


def test_defaults_are_the_specs() -> None:
    effective = log_config_effective(site=Site.objects.get())
    assert effective.source == "defaults"
    assert (
        effective.log_cleanup_interval_days,
        effective.log_cleanup_time_of_day,
        effective.log_flush_interval_minutes,
        effective.max_log_cache_limit,
        effective.max_log_file_size,
        effective.log_store_quota,
    ) == (10, None, 5, 512_000, 1_024_000, 10 * 1024**3)
    assert effective.valid_log_file_extensions == [
        ".dmp", ".clg", ".clg1", ".clg2", ".bak", ".kdmp", ".dat", ".bin", ".cat", ".xml", ".txt",
        ".hex",
    ]  # fmt: skip
    assert effective.valid_log_file_types == ["Watson", "CELog", "Config", "DiagLog"]


def test_a_site_overrides_global_and_reset_falls_back() -> None:
    site = Site.objects.get()
    log_config_set(scope="global", values={"max_log_file_size": 2_000_000}, actor=ACTOR)
    log_config_set(
        scope="site:Default",
        values={"log_cleanup_time_of_day": dt.time(3, 30), "valid_log_file_types": "Watson CELog"},
        actor=ACTOR,
    )
    effective = log_config_effective(site=site)
    assert (effective.source, effective.max_log_file_size, effective.valid_log_file_types) == (
        "site:Default",
        1_024_000,
        ["Watson", "CELog"],
    )
    assert effective.log_cleanup_time_of_day == dt.time(3, 30)
    assert log_config_reset(scope="site:Default", actor=ACTOR) is True
    effective = log_config_effective(site=site)
    assert (effective.source, effective.max_log_file_size) == ("global", 2_000_000)
    assert log_config_reset(scope="global", actor=ACTOR) is True
    assert log_config_effective(site=site).source == "defaults"
    assert log_config_reset(scope="global", actor=ACTOR) is False
    assert list(AuditEntry.objects.order_by("id").values_list("action", flat=True)) == [
        "portal.log_config.created",
        "portal.log_config.created",
        "portal.log_config.reset",
        "portal.log_config.reset",
    ]


def test_changing_nothing_writes_no_audit_row() -> None:
    log_config_set(scope="global", values={"log_flush_interval_minutes": 7}, actor=ACTOR)
    log_config_set(scope="global", values={"log_flush_interval_minutes": 7}, actor=ACTOR)
    assert AuditEntry.objects.count() == 1


@pytest.mark.parametrize(
    ("values", "field", "message"),
    [
        (
            {"log_cleanup_interval_days": 0},
            "log_cleanup_interval_days",
            "greater than or equal to 1",
        ),
        (
            {"log_cleanup_interval_days": 366},
            "log_cleanup_interval_days",
            "less than or equal to 365",
        ),
        (
            {"log_flush_interval_minutes": 61},
            "log_flush_interval_minutes",
            "less than or equal to 60",
        ),
        ({"max_log_file_size": 0}, "max_log_file_size", "greater than or equal to 1"),
        ({"valid_log_file_extensions": "txt"}, "valid_log_file_extensions", "'txt' is not a valid"),
        ({"valid_log_file_types": []}, "valid_log_file_types", "give 1 to 100 log types"),
        ({"colour": "blue"}, "colour", "unknown setting 'colour'"),
    ],
)
def test_out_of_range_settings_are_refused_and_change_nothing(
    values: dict[str, object], field: str, message: str
) -> None:
    log_config_set(scope="global", values={"log_flush_interval_minutes": 7}, actor=ACTOR)
    with pytest.raises(DomainError) as error:
        log_config_set(scope="global", values=values, actor=ACTOR)
    assert error.value.field == field
    assert message in error.value.message
    config = DeviceLogConfiguration.objects.get()
    assert (config.log_flush_interval_minutes, config.log_cleanup_interval_days) == (7, 10)
    assert AuditEntry.objects.count() == 1


def test_unknown_scope_is_refused() -> None:
    with pytest.raises(DomainError) as error:
        log_config_set(scope="site:Mars", values={"max_log_file_size": 5}, actor=ACTOR)
    assert (error.value.field, error.value.message) == ("scope", "no site named 'Mars'")
    assert DeviceLogConfiguration.objects.count() == 0
