"""Device logs (phone protocol, "Log upload"; management, "Device log configuration").

An upload is streamed to a temporary file beside the store (never read whole), refused
as soon as it passes MaxLogFileSize, then moved into
``DeviceUpdateLogs/Client/<LogType>/<device>/<file>`` atomically. The store's size is
kept in ``LogStoreUsage`` under a row lock in the same transaction, so concurrent
uploads never pass LogStoreQuota. The same file uploaded again is stored once.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import os
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.db import transaction
from django.http import UnreadablePostError
from django.utils import timezone

from phones.choices import Channel
from phones.models import DeviceLog, LogStoreUsage, RequestAudit
from phones.protocol import ProtocolError
from phones.recorder import audit_files_dir
from portal.identifiers import normalise_mac
from portal.models import Server
from portal.selectors import EffectiveLogConfig, log_config_effective
from portal.services.audit import Actor, audit_record

logger = logging.getLogger(__name__)
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


def server_log_config() -> EffectiveLogConfig:
    """The log settings in force for this server (its site's, else global, else defaults)."""
    server = Server.objects.select_related("pool__site").filter(fqdn=settings.SERVER_FQDN).first()
    return log_config_effective(site=server.pool.site if server else None)


def log_upload_parse(
    *, params: dict[str, str], channel: Channel, config: EffectiveLogConfig
) -> LogUpload:
    """Check the query parameters against the configuration; ``ProtocolError`` if refused."""
    name = params.get("name", "")
    if (
        not name
        or len(name) > 255
        or name in (".", "..")
        or any(c in name for c in "/\\")
        or ".." in name
        or not name.isprintable()
    ):
        raise ProtocolError("name must be a bare file name of printable characters")
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
        raise ProtocolError(f"log type {log_type!r} is not allowed", code="UnsupportedLogType")
    extension = os.path.splitext(name)[1].lower()
    if extension not in {e.lower() for e in config.valid_log_file_extensions}:
        raise ProtocolError(
            f"file extension {extension or '(none)'!r} is not allowed", code="UnsupportedLogType"
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
) -> DeviceLog:
    """Stream the body to disk and keep it; ``ProtocolError`` (nothing kept) if refused."""
    limit = config.max_log_file_size
    if declared_length is not None and declared_length > limit:
        raise ProtocolError(f"the file is larger than {limit} bytes", code="TooLarge")
    root = settings.DEVICE_LOG_DIR
    incoming = root / ".incoming"
    incoming.mkdir(parents=True, exist_ok=True)
    temporary = incoming / uuid.uuid4().hex
    try:
        size, sha256 = _receive(temporary, chunks, limit=limit, expected=declared_length)
        return _keep(upload, temporary, size, sha256, quota=config.log_store_quota)
    finally:
        temporary.unlink(missing_ok=True)


def _receive(
    path: Path, chunks: Iterator[bytes], *, limit: int, expected: int | None
) -> tuple[int, str]:
    digest = hashlib.sha256()
    size = 0
    with open(path, "xb") as out:
        try:
            for chunk in chunks:
                size += len(chunk)
                if size > limit:
                    # Refused as soon as the limit is passed; the rest is never read.
                    raise ProtocolError(f"the file is larger than {limit} bytes", code="TooLarge")
                digest.update(chunk)
                out.write(chunk)
        except (OSError, UnreadablePostError):
            raise ProtocolError(f"the upload was interrupted after {size} bytes") from None
    if expected is not None and size != expected:
        raise ProtocolError(f"the upload was interrupted ({size} of {expected} bytes)")
    return size, digest.hexdigest()


def _keep(upload: LogUpload, temporary: Path, size: int, sha256: str, *, quota: int) -> DeviceLog:
    server = settings.SERVER_FQDN
    relative = Path("Client", upload.log_type, upload.device, upload.name)
    target = settings.DEVICE_LOG_DIR / relative
    with transaction.atomic():
        LogStoreUsage.objects.get_or_create(server=server)
        usage = LogStoreUsage.objects.select_for_update().get(server=server)
        existing = (
            DeviceLog.objects.select_for_update()
            .filter(server=server, log_type=upload.log_type, device=upload.device, name=upload.name)
            .first()
        )
        if existing is not None and existing.sha256 == sha256 and target.is_file():
            return existing  # the same file again: stored once
        delta = size - (existing.size if existing else 0)
        if usage.total_bytes + delta > quota:
            raise ProtocolError(
                f"the log store is full ({usage.total_bytes} of {quota} bytes used)",
                code="QuotaExceeded",
            )
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(temporary, target)
        log = existing or DeviceLog(
            server=server, log_type=upload.log_type, device=upload.device, name=upload.name
        )
        log.created_at = timezone.now()
        log.channel = upload.channel
        log.mac, log.serial, log.user = upload.mac, upload.serial, upload.user
        log.size, log.sha256, log.path = size, sha256, str(relative)
        log.save()
        usage.total_bytes += delta
        usage.files += 0 if existing else 1
        usage.save(update_fields=["total_bytes", "files"])
        return log


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

    The rows go in one transaction; the files only after it commits, so a rollback
    never leaves rows pointing at deleted files.
    """
    server = settings.SERVER_FQDN
    cutoff_day = older_than.strftime("%Y%m%d")
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
        LogStoreUsage.objects.get_or_create(server=server)
        usage = LogStoreUsage.objects.select_for_update().get(server=server)
        old = list(DeviceLog.objects.filter(server=server, created_at__lt=older_than))
        removed, removed_bytes = len(old), sum(log.size for log in old)
        DeviceLog.objects.filter(pk__in=[log.pk for log in old]).delete()
        usage.total_bytes = max(usage.total_bytes - removed_bytes, 0)
        usage.files = max(usage.files - removed, 0)
        usage.save(update_fields=["total_bytes", "files"])
        audit_rows, _ = RequestAudit.objects.filter(
            server=server, created_at__lt=older_than
        ).delete()
        audit_record(
            actor=actor,
            action="phones.logs.cleared",
            obj=usage,
            changes={
                "older_than": [None, older_than.isoformat()],
                "device_logs": [removed, 0],
                "device_log_bytes": [removed_bytes, 0],
                "audit_rows": [audit_rows, 0],
                "audit_files": [len(audit_files), 0],
                "audit_file_bytes": [file_bytes, 0],
            },
        )
    for path in [settings.DEVICE_LOG_DIR / log.path for log in old] + audit_files:
        path.unlink(missing_ok=True)
    return ClearResult(removed, removed_bytes, audit_rows, len(audit_files), file_bytes)
