"""Device log uploads (phone protocol, "Log upload"; management, "Device log
configuration"): the upload's query parameters, checked against the configuration.

Storing the upload is ``phones.services.log_uploads``; the store on disk and its quota
counter are ``phones.services.log_store``; deleting logs by age is
``phones.services.log_retention``.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

from phones.choices import Channel, PhoneError
from phones.protocol import ProtocolError
from portal.identifiers import normalise_mac
from portal.selectors import EffectiveLogConfig

_SERIAL = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")


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
    """Check the query parameters against the configuration; ``ProtocolError`` if refused."""
    name = params.get("name", "")
    if (
        not name
        or len(name) > 255
        or name.startswith(".")  # hidden names are the store's own (part files, usage)
        or any(c in name for c in "/\\")
        or ".." in name
        or not name.isprintable()
    ):
        raise ProtocolError(
            "name must be a bare file name of printable characters, not starting with a dot"
        )
    raw_mac, serial = params.get("mac", "").strip(), params.get("serial", "").strip()
    if not raw_mac and not serial:
        raise ProtocolError("mac and serial are both empty")
    try:
        mac = normalise_mac(raw_mac) if raw_mac else ""
    except ValueError:
        raise ProtocolError(f"mac {raw_mac!r} is not a MAC address") from None
    if serial and not _SERIAL.match(serial):
        raise ProtocolError(f"serial {serial!r} is not a serial number")
    log_type = params.get("type", "")
    allowed_types = {t.lower(): t for t in config.valid_log_file_types}
    if log_type.lower() not in allowed_types:
        raise ProtocolError(
            f"log type {log_type!r} is not allowed", code=PhoneError.UNSUPPORTED_LOG_TYPE
        )
    extension = os.path.splitext(name)[1].lower()
    if extension not in {e.lower() for e in config.valid_log_file_extensions}:
        raise ProtocolError(
            f"file extension {extension or '(none)'!r} is not allowed",
            code=PhoneError.UNSUPPORTED_LOG_TYPE,
        )
    return LogUpload(
        log_type=allowed_types[log_type.lower()],
        name=name,
        mac=mac,
        serial=serial,
        user=params.get("user", "")[:256],
        channel=channel,
    )
