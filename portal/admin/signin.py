"""The control panel's sign-in form: says so when the directory cannot be reached.

A directory account's password cannot be checked while the directory is down; saying
"wrong password" then would send people to reset a password that is fine. Local
accounts (the break-glass administrators) are checked after the directory and keep
signing in.
"""

from __future__ import annotations

from typing import Any

from django.contrib.admin.forms import AdminAuthenticationForm
from django.core.exceptions import ValidationError

from portal.directory.accounts import local_password_account
from portal.directory.outage import DirectoryWatch, directory_watch

DIRECTORY_UNREACHABLE = (
    "The directory cannot be reached, so directory accounts cannot sign in right now "
    "(local accounts still can). Try again in a few minutes."
)


class DirectorySignInForm(AdminAuthenticationForm):
    _watch: DirectoryWatch | None = None

    def clean(self) -> dict[str, Any]:
        with directory_watch() as watch:
            self._watch = watch
            cleaned: dict[str, Any] = super().clean()
        return cleaned

    def get_invalid_login_error(self) -> ValidationError:
        # A local account's wrong password is said as such, the directory or not.
        username = str(self.cleaned_data.get("username") or "")
        if (
            self._watch is not None
            and self._watch.unreachable
            and not local_password_account(username)
        ):
            return ValidationError(DIRECTORY_UNREACHABLE, code="directory_unreachable")
        return super().get_invalid_login_error()
