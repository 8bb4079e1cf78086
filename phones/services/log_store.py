"""This server's device-log store on disk and its usage counter: part files, keeping a
received log within the quota, deleting old files, and the counter's copy in the database.

Logs live in ``DeviceUpdateLogs/Client/<LogType>/<device>/<file>``. An upload is
received into a hidden part file beside its target (``.upload-<hex>.part``, in the same
folder: the final rename is atomic and cheap) and renamed into place once complete.

``.usage`` at the top of the store holds the bytes and files the store holds. Every
change to the count (a log's room reserved, a log deleted) is made under that file's
exclusive lock (``flock``), so every web process and worker of this server sees one
total, and a log is kept only if the total stays within the quota: concurrent uploads
never pass it. The counter is rebuilt by walking the folder only when it is missing or
unreadable (first use, removed by hand), never on an ordinary upload. The database
holds a copy of the total for the control panel (``LogStoreUsage``, ``usage_publish``),
refreshed whenever logs are recorded or cleared.
"""

from __future__ import annotations

import contextlib
import fcntl
import filecmp
import logging
import os
import stat
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import BinaryIO

from django.conf import settings

from phones.models import LogStoreUsage

logger = logging.getLogger(__name__)
CLIENT = "Client"
USAGE_FILE = ".usage"
PART_PREFIX, PART_SUFFIX = ".upload-", ".part"
DELETE_BATCH = 500
_FORMAT = "{:020d} {:012d}\n"  # fixed width: a rewrite never leaves old digits behind


@dataclass(frozen=True)
class Usage:
    bytes: int
    files: int


class QuotaExceeded(Exception):
    def __init__(self, usage: Usage, quota: int) -> None:
        super().__init__(f"the log store is full ({usage.bytes} of {quota} bytes used)")


@dataclass(frozen=True)
class OldFile:
    path: str  # absolute
    size: int
    mtime: float


def _root() -> str:
    return str(settings.DEVICE_LOG_DIR)


def log_path(log_type: str, device: str, name: str) -> str:
    """Where a device's log is kept, relative to the store."""
    return os.path.join(CLIENT, log_type, device, name)


def is_part(name: str) -> bool:
    return name.startswith(PART_PREFIX) and name.endswith(PART_SUFFIX)


def log_part_create(relative: str) -> tuple[BinaryIO, str]:
    """A new, empty part file beside ``relative`` (its folder created when missing)."""
    folder = os.path.dirname(os.path.join(_root(), relative))
    path = os.path.join(folder, f"{PART_PREFIX}{uuid.uuid4().hex}{PART_SUFFIX}")
    for _ in range(3):
        try:
            return open(path, "xb"), path
        except FileNotFoundError:
            # The device's first log, or a clean-up removed its emptied folder just now.
            os.makedirs(folder, exist_ok=True)
    return open(path, "xb"), path


class _Counter:
    def __init__(self, fd: int) -> None:
        self._fd = fd
        try:
            total, files = (int(part) for part in os.pread(fd, 64, 0).split())
            self.usage = Usage(total, files)
        except ValueError:
            self.usage = _walk_usage()
            logger.info("log store usage counted from disk: %s", self.usage)
            self._write()

    def add(self, size: int, files: int) -> None:
        self.usage = Usage(max(self.usage.bytes + size, 0), max(self.usage.files + files, 0))
        self._write()

    def _write(self) -> None:
        os.pwrite(self._fd, _FORMAT.format(self.usage.bytes, self.usage.files).encode(), 0)


@contextmanager
def _locked() -> Iterator[_Counter]:
    path = os.path.join(_root(), USAGE_FILE)
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    except FileNotFoundError:
        os.makedirs(_root(), exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield _Counter(fd)
    finally:
        os.close(fd)  # releases the lock


def _files() -> Iterator[tuple[str, str, os.stat_result]]:
    """(folder, name, stat) of every regular file under Client/, links never followed."""
    top = os.path.join(_root(), CLIENT)
    if not os.path.isdir(top):
        return
    for folder, _, names, dir_fd in os.fwalk(top):
        for name in names:
            with contextlib.suppress(FileNotFoundError):
                info = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
                if stat.S_ISREG(info.st_mode):
                    yield folder, name, info


def _walk_usage() -> Usage:
    total = files = 0
    for _, name, info in _files():
        if not is_part(name):
            total, files = total + info.st_size, files + 1
    return Usage(total, files)


def log_store_usage() -> Usage:
    with _locked() as counter:
        return counter.usage


def usage_publish(*, server: str) -> None:
    """Copy the store's usage counter to the database, for the control panel."""
    usage = log_store_usage()
    LogStoreUsage.objects.update_or_create(
        server=server, defaults={"total_bytes": usage.bytes, "files": usage.files}
    )


def log_keep(part: str, relative: str, *, size: int, quota: int) -> bool:
    """Rename a received part file to ``relative`` in the store, within the quota.

    False when the same content is already there (stored once); ``QuotaExceeded``
    (nothing renamed) when keeping it would take the store past ``quota`` bytes. Only
    the reservation is made under the counter's lock, so uploads wait on each other
    for a few microseconds and never take the store past the quota together. Two
    uploads of one name at the same moment can leave the count off by that one file.
    """
    target = os.path.join(_root(), relative)
    try:
        info = os.lstat(target)
    except FileNotFoundError:
        existing = None
    else:
        if not stat.S_ISREG(info.st_mode):
            raise OSError(f"{target} is not a regular file")
        existing = info.st_size
        if existing == size and filecmp.cmp(part, target, shallow=False):
            return False
    growth, new_files = size - (existing or 0), 0 if existing is not None else 1
    with _locked() as counter:
        if counter.usage.bytes + growth > quota:
            raise QuotaExceeded(counter.usage, quota)
        counter.add(growth, new_files)
    try:
        os.replace(part, target)
    except BaseException:
        with _locked() as counter:
            counter.add(-growth, -new_files)  # the reservation goes back
        raise
    return True


def files_older_than(cutoff: float) -> tuple[list[OldFile], list[OldFile]]:
    """The logs last written before ``cutoff`` (a POSIX time), and the part files a
    killed process left behind (an upload in progress writes to its part all along)."""
    logs: list[OldFile] = []
    parts: list[OldFile] = []
    for folder, name, info in _files():
        if info.st_mtime < cutoff:
            old = OldFile(os.path.join(folder, name), info.st_size, info.st_mtime)
            (parts if is_part(name) else logs).append(old)
    return logs, parts


def files_delete(logs: list[OldFile], parts: list[OldFile]) -> None:
    """Delete these files, unless a log was written again since it was listed; emptied
    device folders go too. The lock is taken per batch, so uploads never wait long."""
    files = logs + parts
    for start in range(0, len(files), DELETE_BATCH):
        with _locked() as counter:
            for old in files[start : start + DELETE_BATCH]:
                try:
                    info = os.lstat(old.path)
                except FileNotFoundError:
                    continue
                if not stat.S_ISREG(info.st_mode) or info.st_mtime != old.mtime:
                    continue  # replaced by a new upload meanwhile: it stays
                os.unlink(old.path)
                if not is_part(os.path.basename(old.path)):
                    counter.add(-info.st_size, -1)
                with contextlib.suppress(OSError):  # other logs of the device remain
                    os.rmdir(os.path.dirname(old.path))
