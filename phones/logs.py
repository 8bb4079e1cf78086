"""Device logs (phone protocol, "Log upload"; management, "Device log configuration").

An upload is streamed to a part file beside its final name (never read whole), refused
as soon as it passes MaxLogFileSize, then renamed into
``DeviceUpdateLogs/Client/<LogType>/<device>/<file>`` atomically within LogStoreQuota
(``phones.logstore``); the same file uploaded again is stored once. Its row is written
in a batch by the recorder, like the request audit: an upload makes no query.
"""

from __future__ import annotations

import datetime as dt
import errno
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO

from django.conf import settings
from django.db import transaction
from django.http import UnreadablePostError

from phones.choices import Channel, PhoneError
from phones.logstore import (
    QuotaExceeded,
    files_delete,
    files_older_than,
    log_keep,
    log_part_create,
    log_path,
)
from phones.models import DeviceLog, LogStoreUsage, RequestAudit
from phones.protocol import ProtocolError
from phones.recorder import StoredLog, audit_files_dir, recorder, usage_publish
from portal.identifiers import normalise_mac
from portal.selectors import EffectiveLogConfig
from portal.services.audit import Actor, audit_record

_SERIAL = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")
_AUDIT_FILE = re.compile(r"^RequestHandlerAuditLog_(?P<server>.+)_(?P<day>\d{8})\.log$")


@dataclass(frozen=True)
class LogUpload:
    log_type: str
    name: str
    mac: str
    serial: str
    user: str
    channel: Channel

    @property
    def device(self) -> str:
        return self.mac or self.serial


def log_upload_parse(
    *, params: dict[str, str], channel: Channel, config: EffectiveLogConfig
) -> LogUpload:
    """Check the query parameters against the configuration; ``ProtocolError`` if refused."""
    name = params.get("name", "")
    if (
        not name
        or len(name) > 255
        or name.startswith(".")  # hidden names are the store's own (part files, usage)
        or any(c in name for c in "/\\")
        or ".." in name
        or not name.isprintable()
    ):
        raise ProtocolError(
            "name must be a bare file name of printable characters, not starting with a dot"
        )
    raw_mac, serial = params.get("mac", "").strip(), params.get("serial", "").strip()
    if not raw_mac and not serial:
        raise ProtocolError("mac and serial are both empty")
    try:
        mac = normalise_mac(raw_mac) if raw_mac else ""
    except ValueError:
        raise ProtocolError(f"mac {raw_mac!r} is not a MAC address") from None
    if serial and not _SERIAL.match(serial):
        raise ProtocolError(f"serial {serial!r} is not a serial number")
    log_type = params.get("type", "")
    allowed_types = {t.lower(): t for t in config.valid_log_file_types}
    if log_type.lower() not in allowed_types:
        raise ProtocolError(
            f"log type {log_type!r} is not allowed", code=PhoneError.UNSUPPORTED_LOG_TYPE
        )
    extension = os.path.splitext(name)[1].lower()
    if extension not in {e.lower() for e in config.valid_log_file_extensions}:
        raise ProtocolError(
            f"file extension {extension or '(none)'!r} is not allowed",
            code=PhoneError.UNSUPPORTED_LOG_TYPE,
        )
    return LogUpload(
        log_type=allowed_types[log_type.lower()],
        name=name,
        mac=mac,
        serial=serial,
        user=params.get("user", "")[:256],
        channel=channel,
    )


def log_upload_store(
    *,
    upload: LogUpload,
    chunks: Iterator[bytes],
    declared_length: int | None,
    config: EffectiveLogConfig,
) -> bool:
    """Stream the body to disk and keep it; ``ProtocolError`` (nothing kept) if refused.

    False when the same file was already stored. The log is listed (its row written)
    by the recorder within about a second.
    """
    limit = config.max_log_file_size
    if declared_length is not None and declared_length > limit:
        raise ProtocolError(f"the file is larger than {limit} bytes", code=PhoneError.TOO_LARGE)
    relative = log_path(upload.log_type, upload.device, upload.name)
    out, part = log_part_create(relative)
    kept = False
    try:
        with out:
            size, written = _receive(out, chunks, limit=limit, expected=declared_length)
        kept = log_keep(part, relative, size=size, quota=config.log_store_quota)
    except QuotaExceeded as error:
        raise ProtocolError(str(error), code=PhoneError.QUOTA_EXCEEDED) from None
    finally:
        if not kept:  # refused, interrupted or the same file again: nothing partial stays
            os.unlink(part)
    if kept:
        recorder.record(
            StoredLog(
                # The file's own time: retention deletes rows and files by the same clock.
                created_at=dt.datetime.fromtimestamp(written, tz=dt.UTC),
                channel=upload.channel,
                log_type=upload.log_type,
                device=upload.device,
                mac=upload.mac,
                serial=upload.serial,
                user=upload.user,
                name=upload.name,
                size=size,
                path=relative,
            )
        )
    return kept


def _receive(
    out: BinaryIO, chunks: Iterator[bytes], *, limit: int, expected: int | None
) -> tuple[int, float]:
    """Write the body to ``out``: its size and modification time."""
    size = 0
    received = iter(chunks)
    while True:
        try:
            chunk = next(received, b"")
        except (OSError, UnreadablePostError):
            raise ProtocolError(f"the upload was interrupted after {size} bytes") from None
        if not chunk:
            break
        size += len(chunk)
        if size > limit:
            # Refused as soon as the limit is passed; the rest is never read.
            raise ProtocolError(f"the file is larger than {limit} bytes", code=PhoneError.TOO_LARGE)
        try:
            out.write(chunk)
        except OSError as error:
            if error.errno in (errno.ENOSPC, errno.EDQUOT):
                raise ProtocolError(
                    "the log store's disk is full", code=PhoneError.QUOTA_EXCEEDED
                ) from None
            raise
    if expected is not None and size != expected:
        raise ProtocolError(f"the upload was interrupted ({size} of {expected} bytes)")
    out.flush()
    return size, os.fstat(out.fileno()).st_mtime


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
