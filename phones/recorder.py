"""The process's buffer of records (update checks, whole downloads sent, stored device
logs), written out in batches off the hot path.

Each web process buffers its update checks and writes them out at least every
LogFlushInterval, or sooner when the buffer reaches MaxLogCacheLimit bytes, and on a
graceful shutdown. The logs phones upload are already on disk when they are buffered;
their rows and the store's usage are written within about a second, so the helpdesk
sees them promptly. The records and their writes are in ``phones.services.records``.
"""

from __future__ import annotations

import atexit
import logging
import threading
import time

from django.conf import settings
from django.db import connection

from phones.decision import server_log_config
from phones.services.records import Record, StoredLog, write_records

logger = logging.getLogger(__name__)
LOG_ROWS_WITHIN = 1.0  # seconds: how soon an uploaded log is listed


class Recorder:
    """The process's buffer of update checks and stored logs, flushed by size, by time
    and at exit."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._flushing = threading.Lock()
        self._buffer: list[Record] = []
        self._bytes = 0
        self._logs_since: float | None = None  # when the oldest buffered log came
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._limits = (300.0, 512_000)  # LogFlushInterval (s), MaxLogCacheLimit (bytes)

    def record(self, record: Record) -> None:
        with self._lock:
            self._buffer.append(record)
            self._bytes += record.weight()
            if isinstance(record, StoredLog) and self._logs_since is None:
                self._logs_since = time.monotonic()
            full = self._bytes >= self._limits[1]
            if self._thread is None and settings.PHONE_AUDIT_FLUSH_THREAD:
                self._thread = threading.Thread(
                    target=self._run, name="phone-audit-flush", daemon=True
                )
                self._thread.start()
                atexit.register(self.flush)
        if full:
            self._wake.set()

    def pending(self) -> int:
        with self._lock:
            return len(self._buffer)

    def flush(self) -> int:
        """Write out everything buffered; records that fail to write are kept.

        One flush at a time: the one at exit waits for the thread's to finish, so a
        graceful stop never ends while records are half written.
        """
        with self._flushing:
            with self._lock:
                records, self._buffer, self._bytes = self._buffer, [], 0
                self._logs_since = None
            if not records:
                return 0
            try:
                return write_records(records, server=settings.SERVER_FQDN)
            except Exception:
                logger.exception("could not write %d audit records; keeping them", len(records))
                with self._lock:
                    self._buffer = records + self._buffer
                    self._bytes += sum(record.weight() for record in records)
                    if self._logs_since is None and any(isinstance(r, StoredLog) for r in records):
                        self._logs_since = time.monotonic()
                return 0

    def _run(self) -> None:
        self._refresh_limits()  # the configured interval applies from the first wait on
        while True:
            deadline = time.monotonic() + self._limits[0]
            # Wake each second: a buffered log is written within LOG_ROWS_WITHIN.
            while not self._wake.wait(timeout=LOG_ROWS_WITHIN) and not self._due(deadline):
                pass
            self._wake.clear()
            self.flush()
            self._refresh_limits()

    def _due(self, deadline: float) -> bool:
        now, logs_since = time.monotonic(), self._logs_since
        return now >= deadline or (logs_since is not None and now - logs_since >= LOG_ROWS_WITHIN)

    def _refresh_limits(self) -> None:
        try:
            self._limits = _configured_limits()
        except Exception:
            logger.exception("could not read the log settings; keeping %s", self._limits)
        finally:
            # Between flushes (minutes when no logs come in) hold no database session.
            connection.close()


def _configured_limits() -> tuple[float, int]:
    config = server_log_config()
    return config.log_flush_interval_minutes * 60.0, config.max_log_cache_limit


recorder = Recorder()
