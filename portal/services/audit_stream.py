"""The audit stream: every audit-trail row, once committed, as one JSON line to a sink
a SIEM reads (``DEVICEUPDATE_AUDIT_SINK``: syslog, a file, or none).

A sink that fails never fails the audited change: the change is committed before the
line is written; the failure is counted, and logged once until the sink works again
(tried again 30 s after a failure; the lines meanwhile are counted as lost).
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from functools import partial
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import transaction

from deviceupdate.syslog import FACILITIES, SEVERITY_NOTICE, rfc5424_message, syslog_send
from portal.models import AuditEntry

logger = logging.getLogger(__name__)

APP_NAME = "deviceupdate"
MSGID = "audit"
SEND_TIMEOUT_SECONDS = 5.0
# After a failure the sink is not tried again for this long (those lines are counted as
# lost): a receiver that does not answer must not hold every audited change for the
# send timeout, row after row.
RETRY_AFTER_SECONDS = 30.0

_lock = threading.Lock()
_state: dict[str, Any] = {"failures": 0, "failing": False, "retry_at": 0.0}


def audit_stream_failures() -> int:
    """How many audit lines this process could not write to the sink."""
    failures: int = _state["failures"]
    return failures


def audit_line(entry: AuditEntry) -> str:
    """The row as one line of JSON, ASCII only (anything else escaped), keys sorted."""
    record: dict[str, Any] = {
        "id": entry.pk,
        "created_at": entry.created_at.isoformat(),
        "actor": entry.actor_name,
        "action": entry.action,
        "object_type": entry.object_type,
        "object_id": entry.object_id,
        "object": entry.object_repr,
        "changes": entry.changes,
    }
    return json.dumps(record, sort_keys=True, separators=(",", ":"), ensure_ascii=True, default=str)


def audit_syslog_message(entry: AuditEntry) -> bytes:
    """The RFC 5424 message that carries the row's line (its time is the row's)."""
    return rfc5424_message(
        facility=FACILITIES[settings.AUDIT_SYSLOG_FACILITY],
        severity=SEVERITY_NOTICE,
        timestamp=entry.created_at,
        hostname=settings.SERVER_FQDN,
        app_name=APP_NAME,
        procid=str(os.getpid()),
        msgid=MSGID,
        message=audit_line(entry),
    )


def _append(path: Path, line: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    # One write of the whole line to a file opened for appending: lines of several
    # processes never interleave, and a log rotation (rename) is followed at once.
    descriptor = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
    try:
        os.write(descriptor, f"{line}\n".encode("ascii"))
    finally:
        os.close(descriptor)


def audit_stream_write(*, entry: AuditEntry) -> bool:
    """Write one committed row to the configured sink; False (counted) if it failed."""
    sink = settings.AUDIT_SINK
    if _state["failing"] and time.monotonic() < _state["retry_at"]:
        with _lock:
            _state["failures"] += 1
        return False
    try:
        if sink == "syslog":
            syslog_send(
                audit_syslog_message(entry),
                address=settings.AUDIT_SYSLOG_ADDRESS,
                protocol=settings.AUDIT_SYSLOG_PROTOCOL,
                timeout=SEND_TIMEOUT_SECONDS,
            )
        elif sink == "file":
            _append(Path(settings.AUDIT_FILE), audit_line(entry))
    except (OSError, ValueError) as error:
        with _lock:
            _state["failures"] += 1
            first = not _state["failing"]
            _state["failing"] = True
            _state["retry_at"] = time.monotonic() + RETRY_AFTER_SECONDS
        if first:
            logger.error(
                "the audit stream (%s) failed, lines are being lost until it works again: %s",
                sink,
                error,
            )
        return False
    if _state["failing"]:
        with _lock:
            _state["failing"] = False
        logger.warning("the audit stream (%s) works again", sink)
    return True


def audit_stream_queue(*, entry: AuditEntry) -> None:
    """After the current transaction commits, write ``entry`` to the sink (if any)."""
    if settings.AUDIT_SINK != "none":
        transaction.on_commit(partial(audit_stream_write, entry=entry), robust=True)
