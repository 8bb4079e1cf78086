"""Deleting this server's logs by age (management spec, "Device log configuration"
retention and "Clear device logs"): device logs, request-audit rows and daily audit
files, audited with what was removed, and the store's usage published again."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

from django.conf import settings
from django.db import transaction

from phones.models import DeviceLog, LogStoreUsage, RequestAudit
from phones.services.log_store import files_delete, files_older_than, usage_publish
from phones.services.records import audit_files_dir
from portal.services.audit import Actor, audit_record

_AUDIT_FILE = re.compile(r"^RequestHandlerAuditLog_(?P<server>.+)_(?P<day>\d{8})\.log$")


@dataclass(frozen=True)
class ClearResult:
    device_logs: int
    device_log_bytes: int
    audit_rows: int
    audit_files: int
    audit_file_bytes: int


def server_logs_clear(*, older_than: dt.datetime, actor: Actor) -> ClearResult:
    """Delete this server's device logs, request-audit rows and daily audit files older
    than ``older_than``; audited with what was removed.

    Device logs are found on disk by their time (a row carries its file's time), so a
    file whose row a killed process never wrote goes too. The rows go in one
    transaction; the files only after it commits, so a rollback never leaves rows
    pointing at deleted files.
    """
    server = settings.SERVER_FQDN
    cutoff_day = older_than.strftime("%Y%m%d")
    old_logs, old_parts = files_older_than(older_than.timestamp())
    removed_bytes = sum(log.size for log in old_logs)
    folder = audit_files_dir()
    audit_files = [
        path
        for path in (folder.glob("RequestHandlerAuditLog_*.log") if folder.exists() else [])
        if (match := _AUDIT_FILE.match(path.name))
        and match["server"] == server
        and match["day"] < cutoff_day
    ]
    file_bytes = sum(path.stat().st_size for path in audit_files)
    with transaction.atomic():
        DeviceLog.objects.filter(server=server, created_at__lt=older_than).delete()
        audit_rows, _ = RequestAudit.objects.filter(
            server=server, created_at__lt=older_than
        ).delete()
        usage, _ = LogStoreUsage.objects.get_or_create(server=server)
        audit_record(
            actor=actor,
            action="phones.logs.cleared",
            obj=usage,
            changes={
                "older_than": [None, older_than.isoformat()],
                "device_logs": [len(old_logs), 0],
                "device_log_bytes": [removed_bytes, 0],
                "audit_rows": [audit_rows, 0],
                "audit_files": [len(audit_files), 0],
                "audit_file_bytes": [file_bytes, 0],
            },
        )
    files_delete(old_logs, old_parts)
    for path in audit_files:
        path.unlink(missing_ok=True)
    usage_publish(server=server)
    return ClearResult(len(old_logs), removed_bytes, audit_rows, len(audit_files), file_bytes)
