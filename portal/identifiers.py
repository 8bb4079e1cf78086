"""Phone identifiers and firmware versions: validation and normal forms.

Shared by the control panel (test devices, rules) and the phone endpoints, so a MAC or
a version typed by an administrator compares equal to the one a phone sends.
"""

from __future__ import annotations

import re

_MAC_JOINED = re.compile(r"^(?:[0-9A-Fa-f]{2}){6,}$")
_MAC_SEPARATED = re.compile(r"^[0-9A-Fa-f]{2}(?:([-:])[0-9A-Fa-f]{2})(?:\1[0-9A-Fa-f]{2}){4,}$")
_SERIAL = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_VERSION = re.compile(r"^\d{1,9}(?:\.\d{1,9}){0,7}$")


def normalise_mac(value: str) -> str:
    """Six or more two-hex-digit pairs, joined or separated by one kind of ``-`` or ``:``.

    Returns the upper-case hex digits without separators; ``ValueError`` otherwise.
    """
    text = value.strip()
    if not (_MAC_JOINED.match(text) or _MAC_SEPARATED.match(text)):
        raise ValueError(f"{value!r} is not a MAC address (six or more hex pairs)")
    return re.sub(r"[-:]", "", text).upper()


def normalise_serial(value: str) -> str:
    """Letters, digits, ``-`` and ``_`` (1 to 64); matched case-insensitively, kept as typed."""
    text = value.strip()
    if not _SERIAL.match(text):
        raise ValueError(f"{value!r} is not a serial number (letters, digits, - and _)")
    return text


def parse_version(value: str) -> tuple[int, ...]:
    """A dotted-integer version (``4.0.7577.4387``); ``ValueError`` otherwise."""
    text = value.strip()
    if not _VERSION.match(text):
        raise ValueError(f"{value!r} is not a version (dotted integers)")
    return tuple(int(part) for part in text.split("."))


def normalise_version(value: str) -> str:
    """The canonical text of a version: ``4.0.7577.04387`` becomes ``4.0.7577.4387``."""
    return ".".join(str(part) for part in parse_version(value))
