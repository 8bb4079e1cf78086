"""Storing a device log a phone uploads (phone protocol, "Log upload").

The body is streamed to a part file beside its final name (never read whole), refused
as soon as it passes MaxLogFileSize, then renamed into
``DeviceUpdateLogs/Client/<LogType>/<device>/<file>`` atomically within LogStoreQuota
(``phones.services.log_store``); the same file uploaded again is stored once. Its row is
written in a batch by the recorder, like the request audit: an upload makes no query.
"""

from __future__ import annotations

import datetime as dt
import errno
import os
from collections.abc import Iterator
from typing import BinaryIO

from django.http import UnreadablePostError

from phones.choices import PhoneError
from phones.logs import LogUpload
from phones.protocol import ProtocolError
from phones.recorder import recorder
from phones.services.log_store import QuotaExceeded, log_keep, log_part_create, log_path
from phones.services.records import StoredLog
from portal.selectors import EffectiveLogConfig


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
