"""Did a sign-in fail because the directory could not be asked?

django-auth-ldap turns every LDAP error into "no such user" (it logs it and reports it
on its ``ldap_error`` signal), so Django's ``authenticate`` returns None both for a wrong
password and for a directory that is down. An entry point that must tell them apart
(the phones answer 503, never a 401 that would prompt the user) wraps its sign-in in
``directory_watch()``; the backend notes any LDAP error into the innermost watch.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass


@dataclass
class DirectoryWatch:
    """``error`` is the first LDAP error met while the watch was open ("" when none)."""

    error: str = ""

    @property
    def unreachable(self) -> bool:
        return bool(self.error)


_current: ContextVar[DirectoryWatch | None] = ContextVar("directory_watch", default=None)


@contextmanager
def directory_watch() -> Iterator[DirectoryWatch]:
    """Collect the directory errors of the sign-ins made inside the block."""
    watch = DirectoryWatch()
    token = _current.set(watch)
    try:
        yield watch
    finally:
        _current.reset(token)


def note_directory_error(error: str) -> None:
    """The backend met an LDAP error (a server down, a TLS failure, a refused service
    bind): the sign-in could not be decided."""
    watch = _current.get()
    if watch is not None and not watch.error:
        watch.error = error or "the directory did not answer"
