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

from portal.roles import ADMINISTRATORS

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
