"""`manage.py device_update_config`: show, set and reset the device log settings."""

from __future__ import annotations

import getpass
import io
import json
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from portal.management.commands.device_update_config import OPTIONS
from portal.models import AuditEntry, DeviceLogConfiguration
from portal.services.audit import Actor
from portal.services.log_config import SETTINGS, log_config_set

pytestmark = pytest.mark.django_db

ACTOR_NAME = f"manage.py ({getpass.getuser()})"
DEFAULTS: dict[str, Any] = {
    "log_cleanup_interval_days": 10,
    "log_cleanup_time_of_day": None,
    "log_flush_interval_minutes": 5,
    "max_log_cache_limit": 512_000,
    "max_log_file_size": 1_024_000,
    "valid_log_file_extensions": [
        ".dmp", ".clg", ".clg1", ".clg2", ".bak", ".kdmp", ".dat", ".bin", ".cat", ".xml",
        ".txt", ".hex",
    ],
    "valid_log_file_types": ["Watson", "CELog", "Config", "DiagLog"],
    "log_store_quota": 10 * 1024**3,
}  # fmt: skip


def run(*args: str) -> tuple[int, str, str]:
    """Exit status, stdout and stderr of one command."""
    out, err = io.StringIO(), io.StringIO()
    try:
        call_command(*args, stdout=out, stderr=err)
    except SystemExit as stop:
        return (stop.code if isinstance(stop.code, int) else 1), out.getvalue(), err.getvalue()
    return 0, out.getvalue(), err.getvalue()


def rows() -> list[tuple[str, dict[str, Any]]]:
    return [
        (row.scope, {name: getattr(row, name) for name in SETTINGS})
        for row in DeviceLogConfiguration.objects.select_related("site").order_by("id")
    ]


def test_there_is_one_option_per_setting() -> None:
    assert [field for _option, field, *_rest in OPTIONS] == list(SETTINGS)


def test_show_the_defaults() -> None:
    status, out, err = run("device_update_config", "show")
    assert (status, err) == (0, "")
    assert out.splitlines() == [
        "scope                   global",
        "settings from           defaults",
        "LogCleanUpInterval      10 days",
        "LogCleanUpTimeOfDay     any time",
        "LogFlushInterval        5 minutes",
        "MaxLogCacheLimit        512000 bytes",
        "MaxLogFileSize          1024000 bytes",
        "ValidLogFileExtensions  .dmp .clg .clg1 .clg2 .bak .kdmp .dat .bin .cat .xml .txt .hex",
        "ValidLogFileTypes       Watson CELog Config DiagLog",
        "LogStoreQuota           10737418240 bytes",
    ]
    _, out, _ = run("device_update_config", "show", "--scope", "site:Default", "--json")
    assert json.loads(out) == {"scope": "site:Default", "source": "defaults", **DEFAULTS}


def test_set_the_global_settings() -> None:
    status, out, err = run(
        "device_update_config", "set", "--log-cleanup-interval", "30",
        "--log-cleanup-time-of-day", "02:30", "--max-log-file-size", "2048000",
        "--valid-log-file-extensions", ".TXT .dmp .txt", "--valid-log-file-types", "Watson CELog",
    )  # fmt: skip
    assert (status, err) == (0, "")
    assert out.splitlines() == [
        "saved the settings of global",
        "scope                   global",
        "settings from           global",
        "LogCleanUpInterval      30 days",
        "LogCleanUpTimeOfDay     02:30",
        "LogFlushInterval        5 minutes",
        "MaxLogCacheLimit        512000 bytes",
        "MaxLogFileSize          2048000 bytes",
        "ValidLogFileExtensions  .txt .dmp",
        "ValidLogFileTypes       Watson CELog",
        "LogStoreQuota           10737418240 bytes",
    ]
    entry = AuditEntry.objects.get()
    assert (entry.action, entry.actor_name) == ("portal.log_config.created", ACTOR_NAME)
    # A site without settings of its own gets the global ones.
    _, out, _ = run("device_update_config", "show", "--scope", "site:Default", "--json")
    assert json.loads(out) == {
        **DEFAULTS,
        "scope": "site:Default",
        "source": "global",
        "log_cleanup_interval_days": 30,
        "log_cleanup_time_of_day": "02:30",
        "max_log_file_size": 2_048_000,
        "valid_log_file_extensions": [".txt", ".dmp"],
        "valid_log_file_types": ["Watson", "CELog"],
    }


def test_set_a_site_as_json_then_any_time_of_day() -> None:
    status, out, err = run(
        "device_update_config", "set", "--scope", "site:default", "--log-flush-interval", "60",
        "--log-store-quota", "1024", "--log-cleanup-time-of-day", "23:59", "--json",
    )  # fmt: skip
    assert (status, err) == (0, "")
    assert json.loads(out) == {
        "ok": True,
        "message": "saved the settings of site:Default",
        "settings": {
            **DEFAULTS,
            "scope": "site:Default",
            "source": "site:Default",
            "log_flush_interval_minutes": 60,
            "log_store_quota": 1024,
            "log_cleanup_time_of_day": "23:59",
        },
    }
    status, _, _ = run(
        "device_update_config", "set", "--scope", "site:Default", "--log-cleanup-time-of-day", "any"
    )
    assert status == 0
    assert rows()[0][1]["log_cleanup_time_of_day"] is None
    assert [entry.action for entry in AuditEntry.objects.order_by("id")] == [
        "portal.log_config.created",
        "portal.log_config.changed",
    ]
    _, out, _ = run("device_update_config", "show", "--json")
    assert json.loads(out)["source"] == "defaults"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--log-cleanup-interval", "0"],
         "log_cleanup_interval_days: Ensure this value is greater than or equal to 1."),
        (["--log-cleanup-interval", "366"],
         "log_cleanup_interval_days: Ensure this value is less than or equal to 365."),
        (["--log-flush-interval", "61"],
         "log_flush_interval_minutes: Ensure this value is less than or equal to 60."),
        (["--max-log-file-size", "0"],
         "max_log_file_size: Ensure this value is greater than or equal to 1."),
        (["--log-store-quota", str(1024**5 + 1)],
         "log_store_quota: Ensure this value is less than or equal to 1125899906842624."),
        (["--valid-log-file-extensions", "txt"], "'txt' is not a valid file extension (.ext)"),
        (["--valid-log-file-extensions", ""], "give 1 to 100 file extension (.ext)s"),
        (["--valid-log-file-types", "Watson Crash!"], "'Crash!' is not a valid log type"),
        (["--scope", "site:Nowhere", "--max-log-file-size", "10"], "no site named 'Nowhere'"),
        (["--scope", "pool:x", "--max-log-file-size", "10"],
         "'pool:x' is not a scope (global or site:<name>)"),
        ([], "nothing to set: give at least one setting, e.g. --max-log-file-size BYTES"),
    ],
)  # fmt: skip
def test_set_refusals_change_nothing(args: list[str], message: str) -> None:
    log_config_set(scope="global", values={"max_log_file_size": 5000}, actor=Actor.system("test"))
    AuditEntry.objects.all().delete()
    before = rows()
    assert run("device_update_config", "set", *args) == (1, "", f"error: {message}\n")
    assert rows() == before
    assert AuditEntry.objects.count() == 0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--log-cleanup-time-of-day", "25:00"],
         "argument --log-cleanup-time-of-day: expected HH:MM (or 'any' for any time), "
         "got '25:00'"),
        (["--log-cleanup-time-of-day", "2pm"],
         "argument --log-cleanup-time-of-day: expected HH:MM (or 'any' for any time), got '2pm'"),
        (["--max-log-file-size", "1MB"], "argument --max-log-file-size: invalid int value: '1MB'"),
    ],
)  # fmt: skip
def test_values_of_the_wrong_kind_are_usage_errors(args: list[str], message: str) -> None:
    with pytest.raises(CommandError) as error:
        run("device_update_config", "set", *args)
    assert str(error.value) == f"Error: {message}"
    assert rows() == []


def test_show_refuses_an_unknown_scope() -> None:
    assert run("device_update_config", "show", "--scope", "site:Nowhere", "--json") == (
        1,
        "",
        "error: no site named 'Nowhere'\n",
    )


def test_reset_a_site_then_global() -> None:
    setup = Actor.system("test")
    log_config_set(scope="global", values={"log_cleanup_interval_days": 20}, actor=setup)
    log_config_set(scope="site:Default", values={"log_cleanup_interval_days": 40}, actor=setup)
    AuditEntry.objects.all().delete()
    status, out, err = run("device_update_config", "reset", "--scope", "site:Default")
    assert (status, out, err) == (
        0,
        "removed the settings of site:Default; the global settings apply\n",
        "",
    )
    assert [scope for scope, _ in rows()] == ["global"]
    _, out, _ = run("device_update_config", "show", "--scope", "site:Default", "--json")
    assert (json.loads(out)["source"], json.loads(out)["log_cleanup_interval_days"]) == (
        "global",
        20,
    )
    status, out, err = run("device_update_config", "reset", "--json")
    assert (status, err) == (0, "")
    assert json.loads(out) == {
        "ok": True,
        "message": "removed the settings of global; the defaults apply",
        "scope": "global",
        "removed": True,
    }
    assert rows() == []
    entries = AuditEntry.objects.order_by("id")
    assert [(entry.action, entry.actor_name) for entry in entries] == [
        ("portal.log_config.reset", ACTOR_NAME),
        ("portal.log_config.reset", ACTOR_NAME),
    ]


def test_reset_without_settings_changes_nothing() -> None:
    assert run("device_update_config", "reset") == (
        0,
        "global has no settings of its own; nothing changed\n",
        "",
    )
    assert run("device_update_config", "reset", "--scope", "site:Nowhere") == (
        1,
        "",
        "error: no site named 'Nowhere'\n",
    )
    assert AuditEntry.objects.count() == 0
