"""This server's device-log store on disk, and the usage counter its quota is checked on.

Logs live in ``DeviceUpdateLogs/Client/<LogType>/<device>/<file>``. Beside them,
``.usage`` holds the bytes and files the store holds. Every change to the store (a log
kept, a log deleted) is made under that file's exclusive lock (``flock``), so every web
process and worker of this server sees one total, and a log is kept only if the total
stays within the quota: concurrent uploads never pass it. The counter is rebuilt by
walking the folder only when it is missing or unreadable (first use, removed by hand),
never on an ordinary upload. The database holds a copy of the total for the control
panel (``LogStoreUsage``), refreshed whenever logs are recorded or cleared.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import logging
import os
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings

logger = logging.getLogger(__name__)
CLIENT = "Client"
INCOMING = ".incoming"
USAGE_FILE = ".usage"
_FORMAT = "{:020d} {:012d}\n"  # fixed width: a rewrite never leaves old digits behind


@dataclass(frozen=True)
class Usage:
    bytes: int
    files: int


class QuotaExceeded(Exception):
    def __init__(self, usage: Usage, quota: int) -> None:
        super().__init__(f"the log store is full ({usage.bytes} of {quota} bytes used)")


@dataclass(frozen=True)
class OldLog:
    relative: Path
    size: int
    mtime: float


def log_store_root() -> Path:
    return Path(settings.DEVICE_LOG_DIR)


def incoming_dir() -> Path:
    """Where uploads are received before they are kept (same file system: atomic moves)."""
    folder = log_store_root() / INCOMING
    folder.mkdir(parents=True, exist_ok=True)
    return folder


class _Counter:
    def __init__(self, fd: int, root: Path) -> None:
        self._fd = fd
        try:
            total, files = (int(part) for part in os.pread(fd, 64, 0).split())
            self.usage = Usage(total, files)
        except ValueError:
            self.usage = _walk_usage(root)
            logger.info("log store usage counted from disk: %s", self.usage)
            self._write()

    def add(self, size: int, files: int) -> None:
        self.usage = Usage(max(self.usage.bytes + size, 0), max(self.usage.files + files, 0))
        self._write()

    def _write(self) -> None:
        os.pwrite(self._fd, _FORMAT.format(self.usage.bytes, self.usage.files).encode(), 0)


@contextmanager
def _locked(*, shared: bool = False) -> Iterator[_Counter]:
    root = log_store_root()
    root.mkdir(parents=True, exist_ok=True)
    fd = os.open(root / USAGE_FILE, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_SH if shared else fcntl.LOCK_EX)
        if shared and os.fstat(fd).st_size == 0:
            fcntl.flock(fd, fcntl.LOCK_EX)  # first use: count it once, exclusively
        yield _Counter(fd, root)
    finally:
        os.close(fd)  # releases the lock


def _walk(root: Path) -> Iterator[tuple[str, list[str], list[str], int]]:
    """Every folder of logs (never following a symbolic link)."""
    return os.fwalk(root / CLIENT) if (root / CLIENT).is_dir() else iter(())


def _walk_usage(root: Path) -> Usage:
    total = files = 0
    for _, _, names, dir_fd in _walk(root):
        for name in names:
            info = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
            if stat.S_ISREG(info.st_mode):
                total, files = total + info.st_size, files + 1
    return Usage(total, files)


def log_store_usage() -> Usage:
    with _locked(shared=True) as counter:
        return counter.usage


def _regular_size(path: Path) -> int | None:
    try:
        info = path.lstat()
    except FileNotFoundError:
        return None
    if not stat.S_ISREG(info.st_mode):
        raise OSError(f"{path} is not a regular file")
    return info.st_size


def _sha256_of(path: Path) -> str:
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def log_keep(temporary: Path, relative: Path, *, size: int, sha256: str, quota: int) -> bool:
    """Move a received log to ``relative`` in the store, within the quota.

    False when the same content is already there (stored once); ``QuotaExceeded``
    (nothing moved) when keeping it would take the store past ``quota`` bytes.
    """
    target = log_store_root() / relative
    with _locked() as counter:
        existing = _regular_size(target)
        if existing == size and _sha256_of(target) == sha256:
            return False
        growth = size - (existing or 0)
        if counter.usage.bytes + growth > quota:
            raise QuotaExceeded(counter.usage, quota)
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(temporary, target)
        counter.add(growth, 0 if existing is not None else 1)
        return True


def logs_older_than(cutoff: float) -> list[OldLog]:
    """The logs in the store last written before ``cutoff`` (a POSIX time)."""
    root = log_store_root()
    old: list[OldLog] = []
    for folder, _, names, dir_fd in _walk(root):
        for name in names:
            info = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
            if stat.S_ISREG(info.st_mode) and info.st_mtime < cutoff:
                relative = Path(folder, name).relative_to(root)
                old.append(OldLog(relative, info.st_size, info.st_mtime))
    return old


def logs_delete(logs: list[OldLog]) -> None:
    """Delete these logs, unless one was written again since it was listed; the emptied
    device folders go too."""
    root = log_store_root()
    with _locked() as counter:
        for log in logs:
            path = root / log.relative
            try:
                info = path.lstat()
            except FileNotFoundError:
                continue
            if not stat.S_ISREG(info.st_mode) or info.st_mtime != log.mtime:
                continue  # replaced by a new upload meanwhile: it stays
            path.unlink()
            counter.add(-info.st_size, -1)
            with contextlib.suppress(OSError):  # other logs of the device remain
                path.parent.rmdir()


def incoming_sweep(cutoff: float) -> None:
    """Delete receptions a killed process left behind, last written before ``cutoff``
    (an upload in progress writes to its file all along)."""
    folder = log_store_root() / INCOMING
    for leftover in folder.iterdir() if folder.is_dir() else []:
        if leftover.lstat().st_mtime < cutoff:
            leftover.unlink(missing_ok=True)
