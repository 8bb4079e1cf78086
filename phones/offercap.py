"""A server's budget of new offers per minute, shared by every process of the server.

The count lives in a small file per server, ``DATA_DIR/offer-cap/<fqdn>.count``
(``<minute> <count>``, the minute counted from the epoch), read and rewritten only under
the file's exclusive lock (``flock``), so the web processes of a server together never
offer more checks a minute than the cap. A new minute starts a new count.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import os

from django.conf import settings

FOLDER = "offer-cap"
_FORMAT = "{:020d} {:012d}\n"  # fixed width: a rewrite never leaves old digits behind


def _path(server_fqdn: str) -> str:
    name = server_fqdn.lower()
    if not name or "/" in name or name.startswith("."):
        raise ValueError(f"{server_fqdn!r} is not a server name")
    return os.path.join(settings.DATA_DIR, FOLDER, f"{name}.count")


def offer_take(*, server_fqdn: str, cap: int, now: dt.datetime) -> bool:
    """Take one offer from the server's budget for the minute of ``now``; False when
    ``cap`` offers were already taken in that minute. ``cap`` 0: no cap, always True."""
    if cap <= 0:
        return True
    minute = int(now.timestamp()) // 60
    path = _path(server_fqdn)
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    except FileNotFoundError:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            counted_minute, taken = (int(part) for part in os.pread(fd, 64, 0).split())
        except ValueError:  # a new file, or one cut short by hand: nothing taken yet
            counted_minute, taken = minute, 0
        if counted_minute != minute:
            taken = 0
        if taken >= cap:
            return False
        os.pwrite(fd, _FORMAT.format(minute, taken + 1).encode(), 0)
        return True
    finally:
        os.close(fd)  # releases the lock
