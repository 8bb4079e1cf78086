"""Telling a database that cannot take writes (read-only, disk full, gone) from a bug,
and saying so in one line: shared by /healthz, the HTTP answer to such errors
(``deviceupdate.middleware``) and the management commands (``portal.management.base``)."""

from __future__ import annotations

from django.db import DatabaseError, InterfaceError, OperationalError

# PostgreSQL SQLSTATEs that mean "this database takes no writes now", whatever Django
# wraps them as: read-only transaction (a standby, default_transaction_read_only),
# disk full, out of memory, too many connections, shutting down, cannot connect now.
_UNAVAILABLE_SQLSTATES = frozenset({"25006", "53100", "53200", "53300", "57P01", "57P03"})


def database_unavailable(error: BaseException) -> bool:
    """Whether ``error`` says the database cannot be written now (not a query's bug)."""
    if isinstance(error, OperationalError | InterfaceError):
        return True
    if isinstance(error, DatabaseError):
        return getattr(error.__cause__, "sqlstate", None) in _UNAVAILABLE_SQLSTATES
    return False


def database_error_line(error: BaseException) -> str:
    """``the database is not writable: <the driver's first line>``, one line."""
    lines = str(error).strip().splitlines()
    detail = " ".join(lines[0].split())[:300] if lines else type(error).__name__
    return f"the database is not writable: {detail}"
