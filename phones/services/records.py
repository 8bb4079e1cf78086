"""The recorder's batch writes: what an update check, a whole download sent and a stored
device log leave behind (the records), and how a batch of them is written.

An update check becomes a request-audit row (idempotent by request id), one inventory
upsert per phone (keeping when it was first seen) and a line in this server's daily
audit file; a download a ``DownloadEvent`` row; a stored log its row in the log list
(one upsert per file) and then the store's usage copied to the database. Each web
process appends its records to its spool (``phones.recorder``, in the line format of
``phones.services.spool_lines``); the loader (``phones.services.spool_loader``) writes
them here.

One record that cannot be written never costs the others: a batch that fails is written
again one record at a time, and a record that fails alone goes to the quarantine (JSON
lines in ``<data dir>/quarantine/phone-records.jsonl``, bounded, counted on ``/healthz``)
with an audit row; the rest are written. A database that cannot be reached at all is
no record's fault: that error goes back to the caller, which keeps the whole batch.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import re
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import InterfaceError, OperationalError, transaction

from phones.choices import Channel, DeviceState, Outcome
from phones.decision import Decision
from phones.models import Device, DeviceLog, DownloadEvent, RequestAudit
from phones.protocol import UpdateCheck
from phones.services.log_store import usage_publish
from phones.services.rows import RowWriter
from portal.models import AuditEntry

logger = logging.getLogger(__name__)
QUARANTINE_MAX_BYTES = 16 * 1024 * 1024  # past this, a failed record is only logged
QUARANTINE_LINE_MAX = 64 * 1024
# The database unreachable, locked or shutting down: the batch is kept and retried whole.
_UNREACHABLE = (OperationalError, InterfaceError)
_UNSAFE = re.compile(r"[;#,\r\n\t]")


@dataclass(frozen=True)
class CheckRecord:
    """One update check as audited: the request, the answer and why."""

    created_at: dt.datetime
    channel: Channel
    client_address: str | None
    check: UpdateCheck | None
    decision: Decision | None
    user: str
    outcome: Outcome
    status: int
    message: str = ""
    request_id: uuid.UUID = field(default_factory=uuid.uuid4)

    def weight(self) -> int:
        """Roughly the bytes the record holds, against MaxLogCacheLimit."""
        modules = len(self.check.modules) if self.check else 0
        return 400 + 120 * modules + len(self.message)


@dataclass(frozen=True)
class DownloadRecord:
    """A whole image this server sent (Django serving downloads itself)."""

    created_at: dt.datetime
    client_address: str | None
    folder: str
    file_name: str

    def weight(self) -> int:
        return 200 + len(self.folder) + len(self.file_name)


@dataclass(frozen=True)
class StoredLog:
    """A device log kept in this server's store, to be listed."""

    created_at: dt.datetime
    channel: Channel
    log_type: str
    device: str
    mac: str
    serial: str
    user: str
    name: str
    size: int
    path: str

    def weight(self) -> int:
        return 300 + len(self.name) + len(self.path)


def _clean(value: object) -> str:
    return _UNSAFE.sub(" ", str(value))


def audit_line(record: CheckRecord, server: str) -> str:
    """The daily file's line: fields by ';', modules by '#', module fields by ','."""
    check = record.check
    request_modules = "#".join(
        ",".join(_clean(v) for v in (m.update_type, m.file_name, m.version, m.timestamp))
        for m in (check.modules if check else ())
    )
    response_modules = "#".join(
        ",".join(_clean(v) for v in (m.update_type, f.name, m.version, f.timestamp))
        for m in (record.decision.offered if record.decision else ())
        for f in m.files
    )
    fields = [
        # As strftime("%Y-%m-%dT%H:%M:%SZ") writes it, at a fraction of its cost.
        record.created_at.isoformat(timespec="seconds")[:19] + "Z",
        record.client_address or "",
        check.device_type if check else "",
        check.mac if check else "",
        check.serial if check else "",
        check.vendor if check else "",
        check.model if check else "",
        check.revision if check else "",
        check.locale if check else "",
        request_modules,
        response_modules,
        record.user,
        server,
        record.channel,
        f"{record.outcome} {record.status}",
    ]
    return ";".join(
        _clean(value) if index not in (9, 10) else value for index, value in enumerate(fields)
    )


_DEVICE_STATE = {
    Outcome.OFFERED: DeviceState.UPDATE_OFFERED,
    Outcome.NOT_REPLICATED: DeviceState.AWAITING_COPY,
    Outcome.UP_TO_DATE: DeviceState.UP_TO_DATE,
    Outcome.NO_RULE: DeviceState.NO_RULE,
    Outcome.DEFERRED: DeviceState.DEFERRED,
    Outcome.HELD: DeviceState.HELD,
}


def audit_files_dir() -> Path:
    """Where the daily RequestHandlerAuditLog_<server>_<yyyymmdd>.log files go."""
    return settings.DEVICE_LOG_DIR / "Server" / "Audit" / "ImageUpdates"


Record = CheckRecord | StoredLog | DownloadRecord


@dataclass(frozen=True)
class CheckRow:
    """An update check as the loader reads it back: its audit row, its inventory row
    (None for a refusal) and its line in the daily audit file."""

    audit: dict[str, Any]
    device: dict[str, Any] | None
    line: str


Loaded = CheckRow | StoredLog | DownloadRecord


def check_row(record: CheckRecord, server: str) -> CheckRow:
    device = (
        _device_row(record, server)
        if record.check is not None and record.decision is not None
        else None
    )
    return CheckRow(_audit_row(record, server), device, audit_line(record, server))


def write_records(records: Iterable[Record | CheckRow], *, server: str) -> int:
    """Write what ``records`` hold; idempotent but for downloads, which a retry after a
    failed write may repeat (harmless: the observation job takes the earliest).

    Returns how many were written. A batch that fails is written one record at a time;
    a record that fails alone is quarantined (``records_quarantine``), never retried.
    ``OperationalError``/``InterfaceError`` (the database unreachable) are raised: the
    caller keeps every record of the batch for its next batch. Then the daily audit
    files get their lines (the loader writes those after its transaction commits).
    """
    written = write_records_batch(records, server=server)
    write_audit_files([r for r in written if isinstance(r, CheckRow)], server=server)
    return len(written)


def write_records_batch(records: Iterable[Record | CheckRow], *, server: str) -> list[Loaded]:
    """``write_records`` without the daily audit files: the records written."""
    batch: list[Loaded] = [
        check_row(r, server) if isinstance(r, CheckRecord) else r for r in records
    ]
    try:
        with transaction.atomic():
            _write_rows(batch, server=server)
        return batch
    except _UNREACHABLE:
        raise
    except Exception as error:  # a record the database refuses: find it, keep the rest
        logger.warning(
            "a batch of %d records failed (%s); writing them one at a time",
            len(batch), _one_line(error),
        )  # fmt: skip
    written: list[Loaded] = []
    for record in batch:
        try:
            with transaction.atomic():
                _write_rows([record], server=server)
        except _UNREACHABLE:
            raise
        except Exception as single:
            records_quarantine(record=record, server=server, error=single)
        else:
            written.append(record)
    return written


def _write_rows(records: list[Loaded], *, server: str) -> None:
    logs = [record for record in records if isinstance(record, StoredLog)]
    checks = [record for record in records if isinstance(record, CheckRow)]
    downloads = [record for record in records if isinstance(record, DownloadRecord)]
    if logs:
        _write_logs(logs, server=server)
    if downloads:
        DownloadEvent.objects.bulk_create(
            [DownloadEvent(server=server, **vars(record)) for record in downloads]
        )
    if checks:
        _write_checks(checks, server=server)


def _one_line(error: BaseException) -> str:
    text = " ".join(str(error).split()) or type(error).__name__
    return f"{type(error).__name__}: {text}"[:300]


def quarantine_path() -> Path:
    """This data directory's quarantine of records the database refused."""
    return Path(settings.DATA_DIR) / "quarantine" / "phone-records.jsonl"


def records_quarantine(
    *, record: Record | CheckRow | bytes, server: str, error: BaseException
) -> bool:
    """Keep a record the database refused as one JSON line beside the store, and audit
    it; False when the quarantine is full (the record is then only logged)."""
    reason = _one_line(error)
    row: Any
    if isinstance(record, CheckRecord):
        kind, key, row = "check", str(record.request_id), _audit_row(record, server)
    elif isinstance(record, CheckRow):
        kind, key, row = "check", str(record.audit["request_id"]), record.audit
    elif isinstance(record, bytes):  # a spool line that cannot be read back
        kind, key = "line", record[:80].decode("ascii", "replace")
        row = record.decode("utf-8", "replace")
    elif isinstance(record, StoredLog):
        kind, key, row = "log", record.path, dict(vars(record))
    else:
        kind, key, row = "download", f"{record.folder}/{record.file_name}", dict(vars(record))
    line = json.dumps(
        {"kind": kind, "key": key, "server": server, "error": reason, "row": row},
        default=str,
        ensure_ascii=True,
    )
    if len(line) > QUARANTINE_LINE_MAX:
        line = json.dumps(
            {"kind": kind, "key": key[:200], "server": server, "error": reason,
             "row_cut": line[:QUARANTINE_LINE_MAX // 2]},
        )  # fmt: skip
    path = quarantine_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    # O_APPEND: every process of this server adds whole lines to the one file.
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        kept = os.fstat(fd).st_size + len(line) + 1 <= QUARANTINE_MAX_BYTES
        if kept:
            os.write(fd, (line + "\n").encode())
    finally:
        os.close(fd)
    logger.error(
        "%s record %s could not be written (%s); %s",
        kind, key[:200], reason,
        f"quarantined in {path}" if kept else f"dropped: the quarantine {path} is full",
    )  # fmt: skip
    try:
        with transaction.atomic():
            AuditEntry.objects.create(
                actor_name="recorder",
                action="phones.record.quarantined",
                object_type=f"phones.{kind}",
                object_id=key[:100],
                object_repr=f"{kind} {key}"[:400],
                changes={
                    "quarantine": [None, str(path) if kept else "full"],
                    "error": [None, reason],
                },
            )
    except Exception as audit_error:  # the quarantine line is what matters
        logger.error(
            "could not audit the quarantined record %s: %s", key[:200], _one_line(audit_error)
        )
    return kept


def records_quarantined() -> int:
    """How many records the quarantine holds (its lines)."""
    try:
        with open(quarantine_path(), "rb") as handle:
            return sum(chunk.count(b"\n") for chunk in iter(lambda: handle.read(1 << 20), b""))
    except FileNotFoundError:
        return 0


def _write_logs(logs: list[StoredLog], *, server: str) -> None:
    """One row per file (the latest upload wins), then the store's usage as it is now."""
    latest = {(log.log_type, log.device, log.name): log for log in logs}
    DeviceLog.objects.bulk_create(
        [DeviceLog(server=server, **vars(log)) for log in latest.values()],
        update_conflicts=True,
        unique_fields=["server", "log_type", "device", "name"],
        update_fields=[
            "created_at", "channel", "mac", "serial", "user", "size", "path",
        ],
    )  # fmt: skip
    usage_publish(server=server)


_AUDIT_FIELDS = (
    "request_id", "created_at", "server", "channel", "client_address", "identity",
    "device_type", "mac", "serial", "vendor", "model", "revision", "locale", "user",
    "request_modules", "response_modules", "test_device", "outcome", "status", "message",
)  # fmt: skip
_SPOOLED_FIELDS = ("request_id", "created_at", *_AUDIT_FIELDS[3:])
_DEVICE_UPDATED = (
    "mac", "serial", "device_type", "brand", "model", "revision", "locale", "installed",
    "targets", "state", "test_device", "last_seen", "last_user", "last_address",
    "last_channel", "last_server",
)  # fmt: skip
# Idempotent by request id; one upsert per phone that keeps its first_seen, and never
# lets an older check (read later from another process's spool) undo a newer one.
_audit_rows = RowWriter(RequestAudit, _AUDIT_FIELDS, conflict="request_id")
_device_rows = RowWriter(
    Device,
    ("identity", "first_seen", *_DEVICE_UPDATED),
    conflict="identity",
    update=_DEVICE_UPDATED,
    newer="last_seen",
)


def _write_checks(records: list[CheckRow], *, server: str) -> None:
    """Audit rows and inventory upserts: one per phone, its latest check."""
    _audit_rows.write(record.audit for record in records)
    latest: dict[str, dict[str, Any]] = {}
    for record in records:
        device = record.device
        if device is not None:
            seen = latest.get(device["identity"])
            if seen is None or seen["last_seen"] <= device["last_seen"]:
                latest[device["identity"]] = device
    _device_rows.write(latest.values())


def write_audit_files(records: list[CheckRow], *, server: str) -> None:
    """The lines of this server's daily audit files, once the rows are written."""
    if not records:
        return
    by_day: dict[str, list[str]] = {}
    for record in records:
        by_day.setdefault(record.audit["created_at"].strftime("%Y%m%d"), []).append(record.line)
    folder = audit_files_dir()
    folder.mkdir(parents=True, exist_ok=True)
    for day, lines in by_day.items():
        with open(folder / f"RequestHandlerAuditLog_{server}_{day}.log", "a") as handle:
            handle.write("".join(line + "\n" for line in lines))


def _audit_row(record: CheckRecord, server: str) -> dict[str, Any]:
    check = record.check
    return {
        "request_id": record.request_id,
        "created_at": record.created_at,
        "server": server,
        "channel": record.channel,
        "client_address": record.client_address,
        "identity": check.identity if check else "",
        "device_type": check.device_type if check else "",
        "mac": check.mac if check else "",
        "serial": check.serial if check else "",
        "vendor": check.vendor if check else "",
        "model": check.model if check else "",
        "revision": check.revision if check else "",
        "locale": check.locale if check else "",
        "user": record.user[:256],
        "request_modules": [
            {"update_type": m.update_type, "file": m.file_name, "version": m.version}
            for m in (check.modules if check else ())
        ],
        "response_modules": [
            {
                "update_type": m.update_type,
                "rule": m.rule,
                "installed": m.installed,
                "target": m.target,
                "outcome": m.outcome.value,
                "why": m.note,
            }
            for m in (record.decision.modules if record.decision else ())
        ],
        "test_device": bool(record.decision and record.decision.test_device),
        "outcome": str(record.outcome),
        "status": record.status,
        "message": record.message[:400],
    }


def _device_row(record: CheckRecord, server: str) -> dict[str, Any]:
    check, decision = record.check, record.decision
    assert check is not None and decision is not None
    return {
        "identity": check.identity,
        "mac": check.mac,
        "serial": check.serial,
        "device_type": check.device_type,
        "brand": check.vendor,
        "model": check.model,
        "revision": check.revision,
        "locale": check.locale,
        "installed": {m.update_type: m.version for m in check.modules},
        "targets": decision.targets,
        "state": str(_DEVICE_STATE[decision.outcome]),
        "test_device": decision.test_device,
        "first_seen": record.created_at,
        "last_seen": record.created_at,
        "last_user": record.user[:256],
        "last_address": record.client_address,
        "last_channel": str(record.channel),
        "last_server": server,
    }
