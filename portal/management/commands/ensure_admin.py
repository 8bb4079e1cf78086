"""Make sure the administrator account ``admin`` exists (used by `make run`)."""

from __future__ import annotations

import os
from typing import Any

from django.conf import settings

from portal.management.base import ProjectCommand
from portal.services.accounts import ADMIN_USERNAME, admin_ensure


class Command(ProjectCommand):
    help = (
        "Create the 'admin' account if it does not exist. The password comes from "
        "DEVICEUPDATE_ADMIN_PASSWORD, or is generated, printed once and written to "
        "$DEVICEUPDATE_DATA_DIR/admin-password.txt. Its e-mail address (for the rollout "
        "e-mails) is DEVICEUPDATE_ADMIN_EMAIL, also given to an existing 'admin' that has "
        "none."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        password_file = settings.DATA_DIR / "admin-password.txt"
        account = admin_ensure(
            password=os.environ.get("DEVICEUPDATE_ADMIN_PASSWORD") or None,
            email=settings.DEVICEUPDATE_ADMIN_EMAIL,
            password_file=password_file,
        )
        if account.email_filled is not None:
            self.stdout.write(
                f"Administrator '{ADMIN_USERNAME}' exists; it had no e-mail address, now "
                f"{account.email_filled} (DEVICEUPDATE_ADMIN_EMAIL)."
            )
        elif not account.created:
            self.stdout.write(f"Administrator '{ADMIN_USERNAME}' exists; kept as it is.")
        elif account.generated_password is None:
            self.stdout.write(
                f"Administrator '{ADMIN_USERNAME}' created with DEVICEUPDATE_ADMIN_PASSWORD."
            )
        else:
            self.stdout.write(
                f"Administrator '{ADMIN_USERNAME}' created. Password (shown once, also in "
                f"{account.password_file}): {account.generated_password}"
            )
