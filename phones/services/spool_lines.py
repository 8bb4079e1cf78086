"""The spool's line format: each phone record as one compact JSON line (a list: its kind,
then its values), written by the web processes (``phones.recorder``) and read back by
the loader (``phones.services.spool_loader``), which writes them with
``phones.services.records``."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from typing import Any

from phones.services.records import (
    _AUDIT_FIELDS,
    _DEVICE_STATE,
    _SPOOLED_FIELDS,
    CheckRecord,
    CheckRow,
    DownloadRecord,
    Loaded,
    Record,
    StoredLog,
    _audit_row,
    audit_line,
)


def _when(value: dt.datetime) -> str:
    return value.isoformat()


def spool_line(record: Record, server: str) -> bytes:
    """The record as one compact JSON line (a list: its kind, then its values)."""
    if isinstance(record, CheckRecord):
        row = _audit_row(record, server)
        device = None
        if record.check is not None and record.decision is not None:
            device = [
                {m.update_type: m.version for m in record.check.modules},
                record.decision.targets,
                str(_DEVICE_STATE[record.decision.outcome]),
            ]
        values: list[Any] = [
            "c", server, row["request_id"].hex, _when(record.created_at),
            *(row[name] for name in _AUDIT_FIELDS[3:]), device, audit_line(record, server),
        ]  # fmt: skip
    elif isinstance(record, StoredLog):
        values = [
            "l", _when(record.created_at), str(record.channel), record.log_type,
            record.device, record.mac, record.serial, record.user, record.name,
            record.size, record.path,
        ]  # fmt: skip
    else:
        values = [
            "d", _when(record.created_at), record.client_address, record.folder,
            record.file_name,
        ]  # fmt: skip
    return _encode(values).encode() + b"\n"


_encode = json.JSONEncoder(ensure_ascii=True, separators=(",", ":"), default=str).encode


def spool_records(lines: list[bytes]) -> list[Loaded | bytes]:
    """Spool lines read back, in one parse when they are all whole (a line that is not
    one ``spool_line`` wrote stays as its bytes, for the quarantine)."""
    try:
        batch = json.loads(b"[" + b",".join(lines) + b"]")
    except ValueError:
        batch = None
    if batch is None or len(batch) != len(lines):
        batch = []
        for line in lines:
            try:
                batch.append(json.loads(line))
            except ValueError:
                batch.append(None)
    loaded: list[Loaded | bytes] = []
    for line, values in zip(lines, batch, strict=True):
        try:
            loaded.append(_loaded(values))
        except (ValueError, TypeError, KeyError, IndexError):
            loaded.append(line)
    return loaded


def spool_record(line: bytes) -> Loaded:
    """A spool line read back; ``ValueError`` if it is not one ``spool_line`` wrote."""
    return _loaded(json.loads(line))


def _loaded(values: Any) -> Loaded:
    if not isinstance(values, list) or not values:
        raise ValueError("not a spool record")
    kind = values[0]
    if kind == "c" and len(values) == len(_AUDIT_FIELDS) + 3:
        audit = dict(zip(_SPOOLED_FIELDS, values[2:-2], strict=True))
        audit["server"] = server = values[1]
        audit["request_id"] = uuid.UUID(audit["request_id"])
        audit["created_at"] = when = dt.datetime.fromisoformat(audit["created_at"])
        if not isinstance(audit["status"], int):
            raise ValueError("a check's status is not a number")
        device = values[-2]
        device_row = None
        if device is not None:
            installed, targets, state = device
            device_row = {
                "identity": audit["identity"],
                "mac": audit["mac"],
                "serial": audit["serial"],
                "device_type": audit["device_type"],
                "brand": audit["vendor"],
                "model": audit["model"],
                "revision": audit["revision"],
                "locale": audit["locale"],
                "installed": installed,
                "targets": targets,
                "state": state,
                "test_device": audit["test_device"],
                "first_seen": when,
                "last_seen": when,
                "last_user": audit["user"],
                "last_address": audit["client_address"],
                "last_channel": audit["channel"],
                "last_server": server,
            }
        return CheckRow(audit, device_row, str(values[-1]))
    if kind == "l" and len(values) == 11:
        return StoredLog(dt.datetime.fromisoformat(values[1]), *values[2:])
    if kind == "d" and len(values) == 5:
        return DownloadRecord(dt.datetime.fromisoformat(values[1]), *values[2:])
    raise ValueError(f"not a spool record of a known kind: {str(kind)[:20]!r}")
