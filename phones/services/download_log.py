"""nginx's download log read into ``DownloadEvent`` rows: the "downloaded" outcome when
nginx, not Django, sends the images (production).

nginx writes one JSON object a line (``log_format deviceupdate_downloads`` in
deploy/nginx/deviceupdate.conf.template). Each run reads whole lines from the position
saved beside the log (``<log>.position``), at most ``max_lines`` lines and ``max_bytes``
bytes, and keeps what phones/downloads.py records when Django serves a file: a whole
image sent, i.e. a GET answered 200 with every byte sent, for a file whose
``UpdateFile`` role is image (never a catalog or a description, never a range).

The client address is the one the update check records for the same phone: nginx
hands every check to Django with ``X-Forwarded-For: $remote_addr`` (replacing any
forwarded header), and Django, nginx being a trusted proxy, takes that. So the download's
address is nginx's ``$remote_addr`` too; an ``X-Forwarded-For`` a client sends is never
believed, whoever sends it (Django never sees it either).

Rotation: a log with another inode than the saved one, or shorter than the saved
offset, was rotated. The rest of the old file is read first when it is still there as
``<log>.1`` (logrotate with ``delaycompress``), then the new file from its start.
The rows are written before the position is saved: a run that dies in between reads
those lines again, and a download on record twice is harmless (the observation takes
the earliest). Two runs take turns (``flock`` on ``<log>.lock``); a malformed line is
counted and skipped, never fatal.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import ipaddress
import json
import logging
import os
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from phones.models import DownloadEvent
from portal.choices import UpdateFileRole
from portal.models import UpdateFile

logger = logging.getLogger(__name__)

LINES_PER_RUN = 50_000
BYTES_PER_RUN = 16 * 1024 * 1024
# The download URLs, as deviceupdate/urls.py routes them to phones.downloads.
_DOWNLOAD_PATH = re.compile(r"^/DeviceUpdateFiles_(?:Int|Ext)/(?P<path>.+)$")
_IN_CHUNK = 500
_FIELDS = (
    "msec",
    "remote_addr",
    "method",
    "status",
    "completion",
    "body_bytes_sent",
    "content_length",
    "uri",
)


class MalformedLine(ValueError):
    """A line that is not one of the deviceupdate_downloads format."""


@dataclass(frozen=True)
class AccessLine:
    """One request as nginx logged it."""

    created_at: dt.datetime
    remote_addr: str
    method: str
    status: int
    complete: bool
    body_bytes_sent: int
    content_length: int | None
    uri: str


@dataclass(frozen=True)
class Download:
    """A whole file sent: when, to whom, which folder and file (spelled as in the URL)."""

    created_at: dt.datetime
    client_address: str | None
    folder: str
    file_name: str


@dataclass
class DownloadLogResult:
    """What one run read: lines, downloads recorded, lines that were no whole image
    download, malformed lines, where it stopped and whether more is waiting."""

    lines: int = 0
    recorded: int = 0
    ignored: int = 0
    malformed: int = 0
    offset: int = 0
    rotated: bool = False
    more: bool = False
    busy: bool = False


@dataclass(frozen=True)
class _Position:
    device: int
    inode: int
    offset: int

    def names(self, info: os.stat_result) -> bool:
        return (self.device, self.inode) == (info.st_dev, info.st_ino)


def access_line_parse(raw: bytes) -> AccessLine:
    """The fields of one log line; MalformedLine when it is not one of ours."""
    try:
        fields = json.loads(raw)
    except ValueError as error:  # also a line that is not UTF-8
        raise MalformedLine(f"not JSON: {error}") from None
    if not isinstance(fields, dict):
        raise MalformedLine("not a JSON object")
    if any(not isinstance(fields.get(name), str) for name in _FIELDS):
        raise MalformedLine("a field is missing or not a string")
    try:
        created_at = dt.datetime.fromtimestamp(float(fields["msec"]), tz=dt.UTC)
        status = int(fields["status"])
        body_bytes_sent = int(fields["body_bytes_sent"])
        length = fields["content_length"]
        content_length = int(length) if length not in ("", "-") else None
    except (ValueError, OverflowError, OSError) as error:
        raise MalformedLine(f"a field is not a number: {error}") from None
    return AccessLine(
        created_at=created_at,
        remote_addr=fields["remote_addr"],
        method=fields["method"],
        status=status,
        complete=fields["completion"] == "OK",
        body_bytes_sent=body_bytes_sent,
        content_length=content_length,
        uri=fields["uri"],
    )


def client_address_of(line: AccessLine) -> str | None:
    """nginx's peer, spelled as Django records it (see the module docstring); None when
    it is no IP address (a UNIX socket)."""
    try:
        return str(ipaddress.ip_address(line.remote_addr))
    except ValueError:
        return None


def download_of(line: AccessLine) -> Download | None:
    """The file a whole 200 GET under /DeviceUpdateFiles_Int|Ext/ sent; None for anything
    else (HEAD, a range, 304, a refusal, a transfer cut short)."""
    if line.method != "GET" or line.status != 200 or not line.complete:
        return None
    if line.content_length is not None and line.body_bytes_sent != line.content_length:
        return None
    match = _DOWNLOAD_PATH.match(line.uri)
    if match is None:
        return None
    folder, _, name = match["path"].rpartition("/")
    return Download(line.created_at, client_address_of(line), folder, name)


def download_log_read(
    *,
    server: str,
    log: Path,
    max_lines: int = LINES_PER_RUN,
    max_bytes: int = BYTES_PER_RUN,
) -> DownloadLogResult:
    """Record the whole image downloads logged since the saved position (at most
    ``max_lines`` lines / ``max_bytes`` bytes), then save the new position."""
    if max_lines < 1 or max_bytes < 1:
        raise ValueError("max_lines and max_bytes must be positive")
    result = DownloadLogResult()
    if not log.parent.is_dir():
        return result  # no nginx writing here (development)
    with _turn(log) as ours, contextlib.ExitStack() as files:
        if not ours:
            result.busy = True
            return result
        saved = _position_load(log)
        live = _open(log, files)
        source = live
        start = 0
        rotated = False
        if saved is not None and live is not None and saved.names(live[1]):
            if live[1].st_size >= saved.offset:
                start = saved.offset
            else:
                result.rotated = True  # truncated in place (copytruncate)
        elif saved is not None:
            result.rotated = True
            old = _open(log.with_name(f"{log.name}.1"), files)
            if old is not None and saved.names(old[1]) and old[1].st_size >= saved.offset:
                source, start, rotated = old, saved.offset, True
        if source is None:
            return result
        handle, info = source
        lines, end, overlong = _read_lines(
            handle, start=start, size=info.st_size, max_lines=max_lines, max_bytes=max_bytes
        )
        result.lines = len(lines) + overlong
        result.malformed = overlong
        _record(lines, server=server, result=result)
        result.more = end < info.st_size
        position = _Position(info.st_dev, info.st_ino, end)
        if rotated and live is not None and (not result.more or not (lines or overlong)):
            # The old file is done (a line it ends in without a newline will never be
            # finished: nginx writes a line at once): the new one from its start.
            if result.more:
                result.malformed += 1
                result.lines += 1
            position = _Position(live[1].st_dev, live[1].st_ino, 0)
            result.more = live[1].st_size > 0
        result.offset = position.offset
        if position != saved:
            _position_save(log, position)
    if result.malformed:
        logger.warning("%s: skipped %d malformed lines", log, result.malformed)
    return result


def _record(lines: Iterable[bytes], *, server: str, result: DownloadLogResult) -> None:
    candidates: list[Download] = []
    for raw in lines:
        if not raw.strip():
            continue
        try:
            line = access_line_parse(raw)
        except MalformedLine:
            result.malformed += 1
            continue
        download = download_of(line)
        if download is None:
            result.ignored += 1
        else:
            candidates.append(download)
    images = _image_files({download.folder for download in candidates})
    events = [
        DownloadEvent(server=server, **vars(download))
        for download in candidates
        if (download.folder, download.file_name) in images
    ]
    DownloadEvent.objects.bulk_create(events, batch_size=1_000)
    result.recorded = len(events)
    result.ignored += len(candidates) - len(events)


def _image_files(folders: set[str]) -> set[tuple[str, str]]:
    """(folder, name) of the image files of these version folders."""
    wanted = sorted(folders)
    found: set[tuple[str, str]] = set()
    for start in range(0, len(wanted), _IN_CHUNK):
        found.update(
            UpdateFile.objects.filter(
                role=UpdateFileRole.IMAGE, version__folder__in=wanted[start : start + _IN_CHUNK]
            ).values_list("version__folder", "name")
        )
    return found


def _read_lines(
    handle: BinaryIO, *, start: int, size: int, max_lines: int, max_bytes: int
) -> tuple[list[bytes], int, int]:
    """Whole lines from ``start`` (a line still being written waits for the next run):
    the lines, the offset after them, and 1 when a line longer than ``max_bytes`` was
    skipped instead (so the reader never sticks)."""
    handle.seek(start)
    chunk = handle.read(max(0, min(max_bytes, size - start)))
    lines: list[bytes] = []
    position = 0
    while len(lines) < max_lines:
        newline = chunk.find(b"\n", position)
        if newline < 0:
            break
        lines.append(chunk[position:newline])
        position = newline + 1
    if position == 0 and len(chunk) == max_bytes:
        return [], start + len(chunk), 1
    return lines, start + position, 0


def _open(path: Path, files: contextlib.ExitStack) -> tuple[BinaryIO, os.stat_result] | None:
    try:
        handle = files.enter_context(path.open("rb"))
    except FileNotFoundError:
        return None
    return handle, os.fstat(handle.fileno())


@contextlib.contextmanager
def _turn(log: Path) -> Iterator[bool]:
    """True while this run holds the log's lock; False when another run does."""
    fd = os.open(log.with_name(f"{log.name}.lock"), os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        yield True
    finally:
        os.close(fd)  # closing releases the lock


def _position_load(log: Path) -> _Position | None:
    path = log.with_name(f"{log.name}.position")
    try:
        fields = json.loads(path.read_bytes())
        return _Position(int(fields["device"]), int(fields["inode"]), int(fields["offset"]))
    except FileNotFoundError:
        return None
    except (ValueError, TypeError, KeyError) as error:
        logger.warning("%s unreadable (%s): reading %s from its start", path, error, log)
        return None


def _position_save(log: Path, position: _Position) -> None:
    """Replace the position file whole (never a half-written one after a crash)."""
    path = log.with_name(f"{log.name}.position")
    temporary = log.with_name(f".{log.name}.position.{os.getpid()}")
    with temporary.open("w") as handle:
        json.dump(vars(position), handle)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)
