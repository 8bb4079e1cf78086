"""Device log uploads (phone protocol, "Log upload"; management, "Device log
configuration"): the upload's query parameters, checked against the configuration.

Storing the upload is ``phones.services.log_uploads``; the store on disk and its quota
counter are ``phones.services.log_store``; deleting logs by age is
``phones.services.log_retention``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from phones.choices import Channel, PhoneError
from phones.protocol import (
    MAX_FILE_NAME,
    MAX_NAME,
    MAX_USER,
    ProtocolError,
    phone_field,
    phone_mac,
    phone_serial,
    shown,
)
from portal.selectors import EffectiveLogConfig


@dataclass(frozen=True)
class LogUpload:
    log_type: str
    name: str
    mac: str
    serial: str
    user: str
    channel: Channel

    @property
    def device(self) -> str:
        return self.mac or self.serial


def log_upload_parse(
    *, params: dict[str, str], channel: Channel, config: EffectiveLogConfig
) -> LogUpload:
    """Check the query parameters against the configuration; ``ProtocolError`` if refused.

    The bounds are the update check's (``phones.protocol``): ``name`` a bare file name
    of at most 255 characters, ``mac`` 12 hex digits, ``serial`` a serial number (never
    ``.`` or ``..``: with no MAC it names the device's folder), ``user`` at most 256.
    """
    name = params.get("name", "")
    if (
        not name
        or len(name) > MAX_FILE_NAME
        or len(name.encode()) > MAX_FILE_NAME  # the file system's limit is in bytes
        or name.startswith(".")  # hidden names are the store's own (part files, usage)
        or any(c in name for c in "/\\")
        or ".." in name
        or not name.isprintable()
    ):
        raise ProtocolError(
            "name must be a bare file name of at most 255 printable characters, not "
            f"starting with a dot: {shown(name, MAX_FILE_NAME)}"
        )
    raw_mac, serial = params.get("mac", "").strip(), params.get("serial", "").strip()
    if not raw_mac and not serial:
        raise ProtocolError("mac and serial are both empty")
    mac = phone_mac("mac", raw_mac) if raw_mac else ""
    if serial:
        phone_serial("serial", serial)
    user = phone_field("user", params.get("user", "").strip(), MAX_USER)
    log_type = params.get("type", "")
    allowed_types = {t.lower(): t for t in config.valid_log_file_types}
    if log_type.lower() not in allowed_types:
        raise ProtocolError(
            f"log type {shown(log_type, MAX_NAME)} is not allowed",
            code=PhoneError.UNSUPPORTED_LOG_TYPE,
        )
    extension = os.path.splitext(name)[1].lower()
    if extension not in {e.lower() for e in config.valid_log_file_extensions}:
        raise ProtocolError(
            f"file extension {shown(extension or '(none)', MAX_NAME)} is not allowed",
            code=PhoneError.UNSUPPORTED_LOG_TYPE,
        )
    return LogUpload(
        log_type=allowed_types[log_type.lower()],
        name=name,
        mac=mac,
        serial=serial,
        user=user,
        channel=channel,
    )
