"""`manage.py ensure_admin`: the first administrator, made once."""

from __future__ import annotations

import io
import stat
from pathlib import Path

import pytest
from django.conf import settings
from django.contrib.auth import authenticate
from django.contrib.auth.models import User
from django.core.management import call_command
from pytest_django.fixtures import Settings

from deviceupdate.env import ConfigError, Env
from portal.roles import ADMINISTRATORS
from portal.services.rollout_notifications import notification_recipients

pytestmark = pytest.mark.django_db


@pytest.fixture
def password_file() -> Path:
    path = settings.DATA_DIR / "admin-password.txt"
    path.unlink(missing_ok=True)
    return path


def run(monkeypatch: pytest.MonkeyPatch, password: str | None) -> str:
    if password is None:
        monkeypatch.delenv("DEVICEUPDATE_ADMIN_PASSWORD", raising=False)
    else:
        monkeypatch.setenv("DEVICEUPDATE_ADMIN_PASSWORD", password)
    out = io.StringIO()
    call_command("ensure_admin", stdout=out)
    return out.getvalue()


def test_generated_password_is_printed_once_and_kept_in_a_private_file(
    monkeypatch: pytest.MonkeyPatch, password_file: Path
) -> None:
    output = run(monkeypatch, None)
    password = password_file.read_text().strip()
    assert output == (
        "Administrator 'admin' created. Password (shown once, also in "
        f"{password_file}): {password}\n"
    )
    assert stat.S_IMODE(password_file.stat().st_mode) == 0o600
    user = authenticate(username="admin", password=password)
    assert user is not None
    assert (user.is_superuser, user.is_staff) == (True, True)
    assert list(user.groups.values_list("name", flat=True)) == [ADMINISTRATORS]

    assert run(monkeypatch, None) == "Administrator 'admin' exists; kept as it is.\n"
    assert User.objects.filter(username="admin").count() == 1
    assert password_file.read_text().strip() == password


def test_password_from_the_environment_is_used_and_not_written(
    monkeypatch: pytest.MonkeyPatch, password_file: Path
) -> None:
    output = run(monkeypatch, "a long enough password 42")
    assert output == "Administrator 'admin' created with DEVICEUPDATE_ADMIN_PASSWORD.\n"
    assert authenticate(username="admin", password="a long enough password 42") is not None
    assert not password_file.exists()


def test_the_created_admin_has_the_configured_address(
    monkeypatch: pytest.MonkeyPatch, password_file: Path, settings: Settings
) -> None:
    settings.DEVICEUPDATE_ADMIN_EMAIL = "it-ops@example.org"
    run(monkeypatch, "a long enough password 42")
    assert User.objects.get(username="admin").email == "it-ops@example.org"


def test_the_address_defaults_to_admin_at_localhost() -> None:
    # Read from an environment without the variable, as `make run` starts.
    assert Env({}).email("DEVICEUPDATE_ADMIN_EMAIL", "admin@localhost") == "admin@localhost"
    env_example = (Path(settings.BASE_DIR) / ".env.example").read_text()
    assert "\n# Default: admin@localhost\nDEVICEUPDATE_ADMIN_EMAIL=\n" in env_example


def test_an_existing_admin_without_an_address_gets_the_configured_one(
    monkeypatch: pytest.MonkeyPatch, password_file: Path, settings: Settings
) -> None:
    User.objects.create_superuser(username="admin", email="", password="the old password 1")
    settings.DEVICEUPDATE_ADMIN_EMAIL = "it-ops@example.org"
    assert run(monkeypatch, "a new password 2") == (
        "Administrator 'admin' exists; it had no e-mail address, now it-ops@example.org "
        "(DEVICEUPDATE_ADMIN_EMAIL).\n"
    )
    user = User.objects.get(username="admin")
    assert user.email == "it-ops@example.org"
    # Only the address: the password stays, no file is written.
    assert authenticate(username="admin", password="the old password 1") == user
    assert not password_file.exists()

    assert run(monkeypatch, None) == "Administrator 'admin' exists; kept as it is.\n"
    assert User.objects.get(username="admin").email == "it-ops@example.org"


def test_an_existing_address_is_kept(
    monkeypatch: pytest.MonkeyPatch, password_file: Path, settings: Settings
) -> None:
    User.objects.create_superuser(username="admin", email="ada@example.org", password="pw 1")
    settings.DEVICEUPDATE_ADMIN_EMAIL = "it-ops@example.org"
    assert run(monkeypatch, None) == "Administrator 'admin' exists; kept as it is.\n"
    assert User.objects.get(username="admin").email == "ada@example.org"
    assert not password_file.exists()


def test_the_admin_made_by_ensure_admin_receives_the_rollout_emails(
    monkeypatch: pytest.MonkeyPatch, password_file: Path, settings: Settings
) -> None:
    settings.DEVICEUPDATE_NOTIFY_EMAILS = []
    settings.DEVICEUPDATE_ADMIN_EMAIL = "admin@localhost"
    run(monkeypatch, None)
    assert notification_recipients() == ["admin@localhost"]


@pytest.mark.parametrize("raw", ["admin", "admin@", "@localhost", "a b@example.org"])
def test_a_bad_address_is_a_configuration_error(raw: str) -> None:
    with pytest.raises(ConfigError) as error:
        Env({"DEVICEUPDATE_ADMIN_EMAIL": raw}).email("DEVICEUPDATE_ADMIN_EMAIL", "x@localhost")
    assert str(error.value) == (
        f"configuration error: DEVICEUPDATE_ADMIN_EMAIL: expected an e-mail address, got {raw!r}"
    )
