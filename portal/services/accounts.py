"""The first administrator account, made by `make run` on a fresh install."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from pathlib import Path

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import transaction

from portal.roles import ADMINISTRATORS

ADMIN_USERNAME = "admin"


@dataclass(frozen=True)
class AdminAccount:
    created: bool
    generated_password: str | None
    password_file: Path | None
    # The e-mail address given to an existing account that had none (rollout e-mails go
    # to administrators with an address); None when the account was created or kept.
    email_filled: str | None = None


def admin_ensure(*, password: str | None, email: str, password_file: Path) -> AdminAccount:
    """Create the ``admin`` superuser if missing, with ``email``; an existing account
    keeps its password and address, and only gets ``email`` if it has no address.

    Without ``password`` one is generated, returned once and written (mode 0600) to
    ``password_file`` so that it can be read again later.
    """
    user_model = get_user_model()
    with transaction.atomic():
        existing = user_model.objects.filter(username=ADMIN_USERNAME)
        if existing.exists():
            # Conditional, so that an address set meanwhile is never overwritten.
            filled = existing.filter(email="").update(email=email)
            return AdminAccount(
                created=False,
                generated_password=None,
                password_file=None,
                email_filled=email if filled else None,
            )
        generated = None if password else secrets.token_urlsafe(18)
        user = user_model.objects.create_superuser(
            username=ADMIN_USERNAME, email=email, password=password or generated
        )
        user.groups.add(Group.objects.get(name=ADMINISTRATORS))
    if generated is None:
        return AdminAccount(created=True, generated_password=None, password_file=None)
    password_file.parent.mkdir(parents=True, exist_ok=True)
    password_file.unlink(missing_ok=True)
    password_file.touch(mode=0o600)
    password_file.write_text(generated + "\n")
    return AdminAccount(created=True, generated_password=generated, password_file=password_file)
