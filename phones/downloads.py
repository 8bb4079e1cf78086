"""Image downloads from this server's own store (development and tests).

In production nginx serves ``/DeviceUpdateFiles_Int/`` and ``/DeviceUpdateFiles_Ext/``
straight from the store (deploy/nginx), so no Python worker is held by a transfer;
this view gives the same answers when Django serves them itself: ``Range`` (206),
``HEAD``, ``ETag``/``Last-Modified``, 404 for anything outside the store, and 503 with
``Retry-After`` beyond the concurrent-download cap. A whole image sent is recorded
(``DownloadEvent``, through the recorder's batch) for the observed outcomes.
"""

from __future__ import annotations

import os
import re
import stat
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO

from django.conf import settings
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.utils import timezone
from django.utils.http import http_date, parse_http_date_safe
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_safe

from phones.auth import client_address
from phones.choices import PhoneError
from phones.decision import decision_tables
from phones.errors import phone_error
from phones.metrics import DOWNLOADS, REQUEST_DURATION
from phones.recorder import recorder
from phones.services.records import DownloadRecord

_CHUNK = 256 * 1024
_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")
# A position of more digits is past any file: read as this (int() of thousands of digits
# is refused by Python, and is quadratic before that).
_MAX_DIGITS = 18
_FAR = 10**_MAX_DIGITS
_slots_lock = threading.Lock()
_slots: dict[str, threading.BoundedSemaphore] = {}


def _slots_for(limit: int) -> threading.BoundedSemaphore:
    key = f"{settings.SERVER_STORE_DIR}:{limit}"
    with _slots_lock:
        return _slots.setdefault(key, threading.BoundedSemaphore(limit))


def resolve_in_store(store: Path, relative: str) -> Path | None:
    """The regular file ``relative`` names inside ``store``, or None.

    Refuses empty components, names starting with ``.`` (``..``, and the temporary
    copies a replication is writing), backslashes, NULs, and any path whose real
    location (symlinks followed) is not the same file inside the store.
    """
    parts = relative.split("/")
    if not relative or any(not p or p.startswith(".") or "\\" in p or "\0" in p for p in parts):
        return None
    root = store.resolve()
    candidate = root.joinpath(*parts)
    try:
        real = candidate.resolve(strict=True)
        info = os.lstat(candidate)
    except (OSError, RuntimeError):
        return None
    if real != candidate or not stat.S_ISREG(info.st_mode):
        return None  # a symlink somewhere on the way, or not a file
    return real


class _Transfer:
    """The bytes of a range of an open file; closing it (the server does, when the
    response ends or the phone hangs up, even before the first byte) frees the file
    and the download slot exactly once."""

    def __init__(
        self,
        handle: BinaryIO,
        length: int,
        slots: threading.BoundedSemaphore,
        on_complete: Callable[[], None] | None = None,
    ) -> None:
        self._handle = handle
        self._remaining = length
        self._slots: threading.BoundedSemaphore | None = slots
        self._on_complete = on_complete  # called once, as the last chunk is handed over

    def __iter__(self) -> Iterator[bytes]:
        while self._remaining > 0:
            chunk = self._handle.read(min(_CHUNK, self._remaining))
            if not chunk:
                break
            self._remaining -= len(chunk)
            if self._remaining == 0 and self._on_complete is not None:
                # Before the last chunk goes out: once the phone has every byte, the
                # download is on record (no race with a phone that checks at once).
                on_complete, self._on_complete = self._on_complete, None
                on_complete()
            yield chunk

    def close(self) -> None:
        if self._slots is not None:
            self._handle.close()
            self._slots.release()
            self._slots = None


def _position(digits: str) -> int:
    return int(digits) if len(digits) <= _MAX_DIGITS else _FAR


# No CSRF check: nothing here changes state, and any method but GET and HEAD gets the
# plain 405 (a phone never sees the control panel's HTML 403).
@csrf_exempt
@require_safe
def download(request: HttpRequest, path: str) -> HttpResponse | StreamingHttpResponse:
    with REQUEST_DURATION.labels("download").time():
        response = _download(request, path)
    DOWNLOADS.labels(str(response.status_code)).inc()
    return response


def _download(request: HttpRequest, path: str) -> HttpResponse | StreamingHttpResponse:
    target = resolve_in_store(settings.SERVER_STORE_DIR, path)
    if target is None:
        return phone_error(PhoneError.NOT_FOUND, "no such file on this server")
    info = target.stat()
    etag = f'"{info.st_mtime_ns:x}-{info.st_size:x}"'
    headers = {
        "ETag": etag,
        "Last-Modified": http_date(info.st_mtime),
        "Accept-Ranges": "bytes",
        "Cache-Control": "private, max-age=3600",
    }
    since = parse_http_date_safe(request.headers.get("If-Modified-Since", ""))
    if request.headers.get("If-None-Match") == etag or (
        "If-None-Match" not in request.headers and since and since >= int(info.st_mtime)
    ):
        response = HttpResponse(status=304)
        for name, value in headers.items():
            response[name] = value
        return response

    start, end = 0, info.st_size - 1
    status = 200
    wanted = request.headers.get("Range")
    if wanted and request.headers.get("If-Range", etag) == etag:
        match = _RANGE.match(wanted.strip())
        if match and (match[1] or match[2]):
            if match[1]:
                start = _position(match[1])
                end = min(_position(match[2]), info.st_size - 1) if match[2] else info.st_size - 1
            else:
                start = max(info.st_size - _position(match[2]), 0)
            if start > end or start >= info.st_size:
                response = HttpResponse(status=416)
                response["Content-Range"] = f"bytes */{info.st_size}"
                return response
            status = 206
            headers["Content-Range"] = f"bytes {start}-{end}/{info.st_size}"
        # A malformed or multi-part Range is ignored: the whole file (RFC 9110).
    length = end - start + 1
    headers["Content-Length"] = str(length)

    if request.method == "HEAD":
        response = HttpResponse(status=status, content_type="application/octet-stream")
    else:
        slots = _slots_for(settings.DOWNLOAD_MAX_CONCURRENT)
        if not slots.acquire(blocking=False):
            return phone_error(
                PhoneError.BUSY,
                "too many downloads in progress; try again later",
                retry_after=settings.DOWNLOAD_RETRY_AFTER,
            )
        handle = target.open("rb")
        handle.seek(start)
        on_complete = None
        if status == 200 and _is_image(path):
            on_complete = _recording(path, client_address(request))
        response = StreamingHttpResponse(  # type: ignore[assignment]
            _Transfer(handle, length, slots, on_complete),
            status=status,
            content_type="application/octet-stream",
        )
    for name, value in headers.items():
        response[name] = value
    return response


def _is_image(path: str) -> bool:
    """An image file of a stored version (not its catalog or description), from memory."""
    folder, _, name = path.rpartition("/")
    files = decision_tables.get().folders.get(folder, ())
    return any(file.name == name for file in files)


def _recording(path: str, address: str | None) -> Callable[[], None]:
    folder, _, name = path.rpartition("/")

    def record() -> None:
        recorder.record(
            DownloadRecord(
                created_at=timezone.now(), client_address=address, folder=folder, file_name=name
            )
        )

    return record
