"""Logging filters of the service's handlers."""

from __future__ import annotations

import logging

from django.core.exceptions import PermissionDenied, SuspiciousOperation


class RefusalsWithoutTraceback(logging.Filter):
    """A request refused on purpose (``PermissionDenied``: a helpdesk user on an
    administrator's page; ``SuspiciousOperation``: an unknown Host) is logged as its
    one line (``Forbidden (Permission denied): /admin/...``) without the traceback
    Django attaches: the refusal is the expected answer, not a fault."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and isinstance(
            record.exc_info[1], PermissionDenied | SuspiciousOperation
        ):
            record.exc_info = None
            record.exc_text = None
        return True
