"""The loader: this server's spool files (``phones.recorder``) written to the database.

One loader runs per server (``manage.py phone_record_loader``). Each batch reads the
whole lines the spool files hold past their saved positions (oldest file first, at most
``max_bytes``), writes them with the recorder's batch writes (``write_records``: large
``executemany``/``COPY`` batches, one inventory upsert per phone, a poison record
quarantined alone) and saves each file's new position (``SpoolPosition``) **in the same
transaction**: a loader killed mid-batch rolls both back and reads the same lines again,
so each record is written exactly once. A file no process holds locked any more, read to
its end, is finished: marked so in the same transaction, then deleted. A line that cannot
be read back (a torn write at a file's end) is quarantined like a poison record.

The daily audit files get their lines after the transaction commits (a loader killed in
between leaves those lines out of the files; the rows are written). The records dropped
because the spool folder was full are audited here (``phones.spool.dropped``).
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.db import connection, transaction

from phones.decision import server_log_config
from phones.models import SpoolPosition
from phones.recorder import DROPPED_FILE, SPOOL_SUFFIX, spool_dir, spool_dropped
from phones.services.records import (
    CheckRow,
    Loaded,
    records_quarantine,
    write_audit_files,
    write_records_batch,
)
from phones.services.spool_lines import spool_records
from portal.models import AuditEntry

logger = logging.getLogger(__name__)
LOAD_MAX_BYTES = 32 * 1024 * 1024  # one batch reads at most this much
LOCK_FILE = "loader.lock"


@dataclass(frozen=True)
class _Read:
    name: str
    end: int
    finished: bool


@dataclass
class Pending:
    """What the spool holds that the database does not yet."""

    bytes: int
    logs: bool  # a stored log waits (listed within about a second)


def _spool_files(folder: Path) -> list[str]:
    try:
        return sorted(name for name in os.listdir(folder) if name.endswith(SPOOL_SUFFIX))
    except FileNotFoundError:
        return []


def _positions(server: str) -> dict[str, SpoolPosition]:
    return {row.file: row for row in SpoolPosition.objects.filter(server=server)}


def _read_file(
    path: Path, start: int, budget: int, lines: list[bytes]
) -> tuple[int, bool, bytes | None]:
    """Append the whole lines past ``start`` to ``lines``: (the new position, finished,
    a torn last line of a finished file)."""
    with open(path, "rb") as handle:
        handle.seek(start)
        data = handle.read(budget)
        cut = data.rfind(b"\n") + 1
        lines.extend(data[:cut].splitlines())
        end = start + cut
        if len(data) >= budget:
            return end, False, None  # more to read next batch
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return end, False, None  # its process may still append
        # Nobody writes it any more: what came since is its last part.
        handle.seek(end)
        rest = handle.read()
    cut = rest.rfind(b"\n") + 1
    lines.extend(rest[:cut].splitlines())
    torn = rest[cut:] or None
    return end + len(rest), True, torn


def spool_load_once(*, max_bytes: int = LOAD_MAX_BYTES) -> int:
    """Write one batch of what this server's spool holds; returns the records written.

    The database unreachable: ``OperationalError``/``InterfaceError``, nothing written
    and no position moved (the next batch reads the same lines). Two loaders of the
    same spool take turns (``flock`` on ``loader.lock`` in the folder).
    """
    folder = spool_dir()
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    with open(folder / LOCK_FILE, "a") as lock:
        fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
        return _load_once(folder, max_bytes)


def _load_once(folder: Path, max_bytes: int) -> int:
    server = settings.SERVER_FQDN
    positions = _positions(server)
    names = _spool_files(folder)
    gone = [row.file for row in positions.values() if row.file not in names and row.finished]
    lines: list[bytes] = []
    torn: list[bytes] = []
    reads: list[_Read] = []
    budget = max_bytes
    for name in names:
        saved = positions.get(name)
        if saved is not None and saved.finished:  # finished, not yet deleted
            _unlink(folder / name)
            gone.append(name)
            continue
        start = saved.offset if saved is not None else 0
        try:
            end, finished, torn_line = _read_file(folder / name, start, budget, lines)
        except FileNotFoundError:
            continue
        if torn_line is not None:
            torn.append(torn_line)
        if end != start or finished:
            reads.append(_Read(name, end, finished))
        budget -= end - start
        if budget <= 0:
            break
    dropped = spool_dropped(folder)
    audited = positions.get(DROPPED_FILE)
    dropped_before = audited.offset if audited is not None else 0
    if not reads and not gone and dropped == dropped_before:
        return 0

    records: list[Loaded] = []
    for loaded in spool_records(lines):
        if isinstance(loaded, bytes):
            torn.append(loaded)
            logger.error("a spool line could not be read back: %r", loaded[:80])
        else:
            records.append(loaded)
    written: list[Loaded] = []
    with transaction.atomic():
        for line in torn:
            records_quarantine(
                record=line, server=server, error=ValueError("a spool line cannot be read back")
            )
        written = write_records_batch(records, server=server)
        SpoolPosition.objects.bulk_create(
            [SpoolPosition(server=server, file=r.name, offset=r.end, finished=r.finished)
             for r in reads]
            + ([SpoolPosition(server=server, file=DROPPED_FILE, offset=dropped)]
               if dropped != dropped_before else []),
            update_conflicts=True,
            unique_fields=["server", "file"],
            update_fields=["offset", "finished", "updated_at"],
        )  # fmt: skip
        if gone:
            SpoolPosition.objects.filter(server=server, file__in=gone).delete()
        if dropped > dropped_before:
            _audit_dropped(folder, dropped_before, dropped)
    write_audit_files([r for r in written if isinstance(r, CheckRow)], server=server)
    for read in reads:
        if read.finished:
            _unlink(folder / read.name)
    return len(written)


def _audit_dropped(folder: Path, before: int, now: int) -> None:
    logger.error(
        "%d phone records were dropped because the spool folder %s was full",
        now - before, folder,
    )  # fmt: skip
    AuditEntry.objects.create(
        actor_name="phone_record_loader",
        action="phones.spool.dropped",
        object_type="phones.spool",
        object_id=str(folder)[-100:],
        object_repr=f"spool {folder}"[:400],
        changes={"dropped": [before, now]},
    )


def _unlink(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)


def spool_pending() -> Pending:
    """How much the spool holds past the saved positions (reads only the unsaved tails)."""
    folder = spool_dir()
    positions = _positions(settings.SERVER_FQDN)
    total, logs = 0, False
    for name in _spool_files(folder):
        saved = positions.get(name)
        if saved is not None and saved.finished:
            continue
        start = saved.offset if saved is not None else 0
        try:
            with open(folder / name, "rb") as handle:
                handle.seek(start)
                tail = handle.read(LOAD_MAX_BYTES)
        except FileNotFoundError:
            continue
        total += len(tail)
        logs = logs or b'["l",' in tail
    return Pending(total, logs)


def spool_pending_records() -> int:
    """How many whole records wait in the spool (for tests and the benchmark)."""
    folder = spool_dir()
    positions = _positions(settings.SERVER_FQDN)
    count = 0
    for name in _spool_files(folder):
        saved = positions.get(name)
        if saved is not None and saved.finished:
            continue
        try:
            with open(folder / name, "rb") as handle:
                handle.seek(saved.offset if saved is not None else 0)
                count += handle.read().count(b"\n")
        except FileNotFoundError:
            continue
    return count


def loader_limits() -> tuple[float, int]:
    """LogFlushInterval (seconds) and MaxLogCacheLimit (bytes) in force for this server."""
    config = server_log_config()
    return config.log_flush_interval_minutes * 60.0, config.max_log_cache_limit


def spool_loader_run(*, stop: list[bool], interval: float | None = None, poll: float = 1.0) -> None:
    """Write a batch at least every LogFlushInterval (or ``interval`` seconds), sooner
    when MaxLogCacheLimit bytes wait or a stored log does (within about ``poll``
    seconds); until ``stop`` holds a value. A failed batch is retried after ``poll``.

    The log settings are read again at every poll: a change reaches the running loader
    at its next poll (said in its log), no restart needed."""
    last = time.monotonic()
    limits = (300.0, 512_000)
    in_force: tuple[float, int] | None = None
    while not stop:
        started = time.monotonic()
        try:
            limits = loader_limits()
        except Exception:
            logger.exception("could not read the log settings; keeping %s", limits)
        every = interval if interval is not None else limits[0]
        if (every, limits[1]) != in_force:
            # Said at start and at each change: when a changed setting took effect.
            in_force = (every, limits[1])
            logger.info(
                "writing the spool at least every %g s (%s), sooner when %d bytes wait "
                "(MaxLogCacheLimit)",
                every, "--interval" if interval is not None else "LogFlushInterval", limits[1],
            )  # fmt: skip
        try:
            pending = spool_pending()
            if pending.bytes and (
                pending.bytes >= limits[1] or pending.logs or started - last >= every
            ):
                written = spool_load_once()
                last = time.monotonic()
                logger.info("wrote %d phone records in %.3f s", written, last - started)
                if pending.bytes >= limits[1]:
                    continue  # more may wait: no pause
            elif not pending.bytes:
                last = started
        except Exception:
            logger.exception("the spool loader could not write a batch; retrying")
            connection.close()  # a fresh session next time (the database may be back)
        time.sleep(poll)
