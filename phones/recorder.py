"""The process's spool: every record (update check, whole download sent, stored device
log) appended to a file on this server's local disk before the phone gets its answer.

Append, then answer: ``recorder.record`` encodes the record as one compact line
(``phones.services.spool_lines.spool_line``) and writes it with one ``os.write`` to this
process's own spool file (``O_APPEND``, no fsync: a killed process loses nothing the
kernel has). The web process makes no database write on the phone path; the loader
(``phones.services.spool_loader``, ``manage.py phone_record_loader``) writes the rows.

Each process writes its own file, named by when it was opened and the process id, and
holds an exclusive ``flock`` on it while it may still write to it: a file nobody locks is
finished (rotated or its process gone, even by ``kill -9``), and the loader deletes it
once its lines are written. Files rotate by size (``PHONE_SPOOL_FILE_BYTES``) and age
(``PHONE_SPOOL_FILE_SECONDS``). The folder is bounded (``PHONE_SPOOL_MAX_BYTES``): past
the bound phones are still answered, but their records are dropped loudly: each adds one
byte to ``dropped.count`` in the folder (shown on ``/healthz``, audited by the loader)
and an error in the log.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import threading
import time
from pathlib import Path

from django.conf import settings

from phones.services.records import Record
from phones.services.spool_lines import spool_line

logger = logging.getLogger(__name__)
SPOOL_SUFFIX = ".spool"
DROPPED_FILE = "dropped.count"
BOUND_EVERY = 1.0  # seconds between two looks at the folder's size


def spool_dir() -> Path:
    return Path(settings.PHONE_SPOOL_DIR)


def spool_usage(folder: Path) -> int:
    """The bytes the folder's spool files hold."""
    total = 0
    try:
        with os.scandir(folder) as entries:
            for entry in entries:
                if entry.name.endswith(SPOOL_SUFFIX):
                    # The loader may delete it meanwhile.
                    with contextlib.suppress(OSError):
                        total += entry.stat().st_size
    except OSError:  # no folder (yet), or none that can be read: the writes will say so
        return 0
    return total


def spool_dropped(folder: Path | None = None) -> int:
    """How many records were dropped because the spool folder was full."""
    try:
        return (folder or spool_dir()).joinpath(DROPPED_FILE).stat().st_size
    except FileNotFoundError:
        return 0


class Recorder:
    """This process's spool file: one line per record, rotated by size and age."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._fd = -1
        self._pid = 0
        self._dir: Path | None = None
        self._written = 0
        self._rotate_at = 0.0  # monotonic
        self._bound_at = 0.0  # monotonic: when to look at the folder's size again
        self._full = False
        self._last_alarm = 0.0

    def record(self, record: Record) -> None:
        """Append ``record`` to this process's spool file (one ``os.write``)."""
        line = spool_line(record, settings.SERVER_FQDN)
        with self._lock:
            now = time.monotonic()
            if (
                self._pid != os.getpid()
                or self._dir != settings.PHONE_SPOOL_DIR
                or (self._fd < 0 and now >= self._bound_at)
                or (
                    self._fd >= 0
                    and (now >= self._rotate_at or self._written >= settings.PHONE_SPOOL_FILE_BYTES)
                )
            ):
                self._open(now)
            elif now >= self._bound_at:
                self._bound(now)
            if self._full or self._fd < 0:
                self._drop(now, "the spool folder is full" if self._full else "no spool file")
                return
            try:
                written = os.write(self._fd, line)
            except OSError as error:
                written = 0
                self._drop(now, f"the spool file could not be written: {error}")
            if written != len(line):
                # A torn line ends this file (the loader quarantines it); start another.
                self._close()
                self._bound_at = 0.0  # the next record opens a new file
                if written:
                    self._drop(now, "the spool file took part of a line")
            else:
                self._written += written

    def close(self) -> None:
        """Stop writing this process's file (the loader may then finish it)."""
        with self._lock:
            self._close()

    def _open(self, now: float) -> None:
        self._close()
        folder = Path(settings.PHONE_SPOOL_DIR)
        self._dir, self._pid = folder, os.getpid()
        self._written = 0
        self._rotate_at = now + settings.PHONE_SPOOL_FILE_SECONDS
        self._bound(now)
        if self._full:
            return
        name = f"{time.time_ns():020d}-{self._pid}"
        # Locked under a name the loader ignores, then renamed: the loader never sees a
        # file of a live writer unlocked.
        partial = folder / f".{name}.new"
        try:
            folder.mkdir(parents=True, exist_ok=True, mode=0o700)
            fd = os.open(partial, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_EXCL, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
                os.rename(partial, folder / f"{name}{SPOOL_SUFFIX}")
            except OSError:
                os.close(fd)
                raise
        except OSError as error:  # the phone is still answered; the record is dropped
            logger.error("could not open a spool file in %s: %s", folder, error)
            return
        self._fd = fd

    def _close(self) -> None:
        if self._fd >= 0:
            if self._pid == os.getpid():
                os.close(self._fd)  # releases the lock: the file is finished
            self._fd = -1

    def _bound(self, now: float) -> None:
        self._bound_at = now + BOUND_EVERY
        folder = Path(settings.PHONE_SPOOL_DIR)
        full = spool_usage(folder) >= settings.PHONE_SPOOL_MAX_BYTES
        if full and not self._full:
            logger.error(
                "the spool folder %s holds %d bytes or more: records are dropped until "
                "the loader (manage.py phone_record_loader) catches up",
                folder, settings.PHONE_SPOOL_MAX_BYTES,
            )  # fmt: skip
        self._full = full

    def _drop(self, now: float, why: str) -> None:
        folder = Path(settings.PHONE_SPOOL_DIR)
        try:
            folder.mkdir(parents=True, exist_ok=True, mode=0o700)
            fd = os.open(folder / DROPPED_FILE, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                os.write(fd, b"x")
            finally:
                os.close(fd)
        except OSError as error:
            logger.error("could not count a dropped record in %s: %s", folder, error)
        if now - self._last_alarm >= 1.0 or self._last_alarm == 0.0:
            self._last_alarm = now
            logger.error("a phone record was dropped: %s (%s)", why, folder)


recorder = Recorder()


def spool_notices() -> list[str]:
    """What ``/healthz`` says about the spool: a full folder, records dropped."""
    folder = spool_dir()
    notices = []
    if spool_usage(folder) >= settings.PHONE_SPOOL_MAX_BYTES:
        notices.append(
            f"the spool folder {folder} reached its bound "
            f"({settings.PHONE_SPOOL_MAX_BYTES} bytes): phones are answered but their "
            "records are dropped until the loader (phone_record_loader) catches up"
        )
    dropped = spool_dropped(folder)
    if dropped:
        notices.append(
            f"{dropped} phone records were dropped because the spool folder was full "
            f"(counted in {folder / DROPPED_FILE}; audited as phones.spool.dropped)"
        )
    return notices
