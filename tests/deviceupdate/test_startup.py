"""Start-up with a bad environment stops with one line naming the variable."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

PROJECT_DIR = Path(__file__).resolve().parents[2]
# Production with its secrets given, so that the variable under test is the one refused.
PRODUCTION = {
    "DEVICEUPDATE_ENV": "production",
    "SECRET_KEY": "x" * 60,
    "ALLOWED_HOSTS": "pool01.example.org",
}


def run_manage(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {
        key: value
        for key, value in os.environ.items()
        if key not in {"DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL", "DJANGO_SETTINGS_MODULE"}
    }
    environ.update(DEVICEUPDATE_DATA_DIR=str(tmp_path / "var"), **env)
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=PROJECT_DIR,
        env=environ,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"DEBUG": "maybe"}, "configuration error: DEBUG: expected true or false, got 'maybe'"),
        # Exactly true or false: another spelling is refused, not guessed at.
        (
            {"SESSION_COOKIE_SECURE": "True"},
            "configuration error: SESSION_COOKIE_SECURE: expected true or false, got 'True'",
        ),
        ({"DEBUG": "1"}, "configuration error: DEBUG: expected true or false, got '1'"),
        (
            {"DATABASE_URL": "mysql://root@db/x"},
            "configuration error: DATABASE_URL: unsupported scheme 'mysql'; "
            "expected one of sqlite, postgres, postgresql, pgsql",
        ),
        (
            {"DEVICEUPDATE_ENV": "production"},
            "configuration error: SECRET_KEY: is required when DEVICEUPDATE_ENV=production",
        ),
        (
            {"DEVICEUPDATE_ENV": "production", "SECRET_KEY": "x" * 60},
            "configuration error: ALLOWED_HOSTS: is required when DEVICEUPDATE_ENV=production",
        ),
        # Production never falls back to the embedded database or broker.
        (
            PRODUCTION,
            "configuration error: DATABASE_URL: is required when DEVICEUPDATE_ENV=production",
        ),
        (
            {**PRODUCTION, "DATABASE_URL": "postgres://deviceupdate@db.example.org/deviceupdate"},
            "configuration error: CELERY_BROKER_URL: is required when "
            "DEVICEUPDATE_ENV=production (REDIS_URL also serves)",
        ),
        (
            {"DEVICEUPDATE_SIGNIN_FAILURE_LIMIT": "0"},
            "configuration error: DEVICEUPDATE_SIGNIN_FAILURE_LIMIT: expected 1 to 100, got 0",
        ),
        (
            {"DEVICEUPDATE_SIGNIN_COOLOFF_MINUTES": "a while"},
            "configuration error: DEVICEUPDATE_SIGNIN_COOLOFF_MINUTES: expected an integer, "
            "got 'a while'",
        ),
        (
            {"DEVICEUPDATE_SERVER_FQDN": "bad_name!"},
            "configuration error: DEVICEUPDATE_SERVER_FQDN: 'bad_name!' is not a valid host name",
        ),
        (
            {"CELERY_TASK_SOFT_TIME_LIMIT": "5"},
            "configuration error: CELERY_TASK_SOFT_TIME_LIMIT: expected 10 to 86400, got 5",
        ),
        (
            {"DEVICEUPDATE_ADMIN_EMAIL": "admin"},
            "configuration error: DEVICEUPDATE_ADMIN_EMAIL: expected an e-mail address, "
            "got 'admin'",
        ),
        (
            {"DEVICEUPDATE_IMPORT_LEASE_SECONDS": "60"},
            "configuration error: DEVICEUPDATE_IMPORT_LEASE_SECONDS: must be at least three "
            "times DEVICEUPDATE_IMPORT_LEASE_RENEW_SECONDS",
        ),
    ],
)
def test_bad_variable_stops_start_up_with_one_line(
    tmp_path: Path, env: dict[str, str], message: str
) -> None:
    result = run_manage(tmp_path, "check", **env)
    assert result.returncode == 2
    assert result.stderr == message + "\n"
    assert result.stdout == ""
    # Nothing was written: the data directory was never created for a refused start.
    assert not (tmp_path / "var" / "db.sqlite3").exists()


@pytest.mark.parametrize(
    "broker",
    [
        pytest.param({"CELERY_BROKER_URL": "filesystem://"}, id="embedded broker"),
        pytest.param({"REDIS_URL": "redis://127.0.0.1:6379/0"}, id="REDIS_URL"),
    ],
)
def test_production_starts_on_the_embedded_parts_when_they_are_named(
    tmp_path: Path, broker: dict[str, str]
) -> None:
    # A choice, not a fallback: SQLite and the filesystem broker, asked for by name.
    # (`check` connects to neither the database nor the broker.)
    result = run_manage(
        tmp_path,
        "check",
        **PRODUCTION,
        DATABASE_URL=f"sqlite:///{tmp_path / 'production.sqlite3'}",
        **broker,
    )
    assert (result.returncode, result.stdout, result.stderr) == (
        0,
        "System check identified no issues (0 silenced).\n",
        "",
    )


def test_production_settings_pass_the_deploy_check_without_warnings(tmp_path: Path) -> None:
    result = run_manage(
        tmp_path,
        "check",
        "--deploy",
        "--fail-level",
        "WARNING",
        DEVICEUPDATE_ENV="production",
        SECRET_KEY=secrets.token_urlsafe(64),
        ALLOWED_HOSTS="pool01.example.org",
        DATABASE_URL=f"sqlite:///{tmp_path / 'deploy-check.sqlite3'}",
        CELERY_BROKER_URL="filesystem://",
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "System check identified no issues (1 silenced)."


def test_every_variable_settings_read_is_documented_in_env_example() -> None:
    import re

    source = (PROJECT_DIR / "deviceupdate" / "settings.py").read_text()
    read = set(re.findall(r'env\.\w+\(\s*"([A-Z][A-Z0-9_]+)"', source))
    documented = set(
        re.findall(r"^([A-Z][A-Z0-9_]+)=", (PROJECT_DIR / ".env.example").read_text(), re.M)
    )
    assert read - documented == set()
    assert len(read) >= 20


def test_queueing_on_the_embedded_broker_prints_no_warning(tmp_path: Path) -> None:
    # kombu warned "No hostname was supplied" before every refusal of a command that
    # queues (import_device_update): the output of a command is its own lines only.
    queued = run_manage(
        tmp_path,
        "shell",
        "--verbosity=0",
        "-c",
        "from deviceupdate.celery import app; "
        "app.send_task('portal.tasks.package_import_task', kwargs={'job_id': 0}, "
        "queue='imports'); print('queued')",
    )
    assert (queued.returncode, queued.stdout, queued.stderr) == (0, "queued\n", "")
    assert len(list((tmp_path / "var" / "broker" / "queue").iterdir())) == 1


def test_signin_lockout_settings_come_from_the_environment(tmp_path: Path) -> None:
    show = (
        "from django.conf import settings as s; "
        "print(s.AXES_FAILURE_LIMIT, s.AXES_COOLOFF_TIME, s.AXES_LOCKOUT_PARAMETERS)"
    )
    default = run_manage(tmp_path, "shell", "--verbosity=0", "-c", show)
    chosen = run_manage(
        tmp_path,
        "shell",
        "--verbosity=0",
        "-c",
        show,
        DEVICEUPDATE_SIGNIN_FAILURE_LIMIT="3",
        DEVICEUPDATE_SIGNIN_COOLOFF_MINUTES="90",
    )
    rules = "[['username', 'ip_address'], 'ip_address']"
    assert (default.returncode, default.stdout, default.stderr) == (0, f"5 0:15:00 {rules}\n", "")
    assert (chosen.returncode, chosen.stdout, chosen.stderr) == (0, f"3 1:30:00 {rules}\n", "")


def test_ensure_admin_with_a_bad_address_stops_before_it_writes(tmp_path: Path) -> None:
    result = run_manage(tmp_path, "ensure_admin", DEVICEUPDATE_ADMIN_EMAIL="admin@")
    assert (result.returncode, result.stdout, result.stderr) == (
        2,
        "",
        "configuration error: DEVICEUPDATE_ADMIN_EMAIL: expected an e-mail address, got 'admin@'\n",
    )
    # No account, no password file: the command never ran.
    assert not (tmp_path / "var" / "db.sqlite3").exists()
    assert not (tmp_path / "var" / "admin-password.txt").exists()
