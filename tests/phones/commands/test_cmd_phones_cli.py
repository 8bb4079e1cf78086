"""The phone-side commands as a shell runs them: a refusal is one line on stderr with
exit status 1, a usage error one line with exit status 2."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

PROJECT_DIR = Path(__file__).resolve().parents[3]
GUID = "2de8cbf6-8a1e-4bc0-9d9e-0b2b5a1c1f11"


def _environ(data_dir: Path) -> dict[str, str]:
    environ = {
        key: value
        for key, value in os.environ.items()
        if key not in {"DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL", "DJANGO_SETTINGS_MODULE"}
    }
    environ.update(DEVICEUPDATE_DATA_DIR=str(data_dir), DEVICEUPDATE_SERVER_FQDN="fe1.example.com")
    return environ


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data directory with a migrated SQLite database of its own."""
    path = tmp_path_factory.mktemp("phones-cli") / "var"
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--verbosity", "0"],
        cwd=PROJECT_DIR, env=_environ(path), capture_output=True, timeout=120, check=True,
    )  # fmt: skip
    return path


def manage(data_dir: Path, *args: str) -> tuple[int, str, str]:
    done = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=PROJECT_DIR, env=_environ(data_dir), capture_output=True, text=True, timeout=120,
        check=False,
    )  # fmt: skip
    return done.returncode, done.stdout, done.stderr


def test_a_refused_plan_is_one_line_and_exit_status_1(data_dir: Path) -> None:
    rule = f"service:WebServer:fe1.example.com/{GUID}"

    result = manage(data_dir, "device_update_rollouts", "plan", rule, "--wave", "100")

    assert result == (1, "", f"error: no rule {rule}\n")


def test_an_unknown_phone_is_one_line_and_exit_status_1(data_dir: Path) -> None:
    result = manage(data_dir, "devices", "show", "MAC:0004F2000001", "--json")

    assert result == (1, "", "error: no phone MAC:0004F2000001 in the inventory\n")


def test_a_pin_without_a_version_is_a_usage_error(data_dir: Path) -> None:
    result = manage(data_dir, "devices", "pin", "MAC:0004F2000001", "--rule", "x")

    assert result == (
        2,
        "",
        "error: the following arguments are required: --version "
        "(see 'manage.py devices pin --help')\n",
    )
