"""Reads of the fleet: a phone's identity as the inventory spells it."""

from __future__ import annotations

from portal.choices import IdentifierType
from portal.errors import DomainError
from portal.identifiers import normalise_mac, normalise_serial


def device_identity_parse(text: str) -> tuple[str, str, str]:
    """``MAC:…``, ``SN:…``, a MAC in any form or a serial number, as
    (identity, identifier type, identifier) with the inventory's spelling."""
    value = text.strip()
    kind, _, rest = value.partition(":")
    if kind.upper() == "SN" and rest:
        return _serial_identity(rest)
    if kind.upper() == "MAC" and rest:
        value = rest
    try:
        mac = normalise_mac(value)
    except ValueError:
        if kind.upper() == "MAC":
            raise DomainError(f"{rest!r} is not a MAC address", field="identity") from None
        return _serial_identity(value)
    return f"MAC:{mac}", IdentifierType.MAC_ADDRESS, mac


def _serial_identity(value: str) -> tuple[str, str, str]:
    try:
        serial = normalise_serial(value)
    except ValueError:
        raise DomainError(
            f"{value!r} is neither a MAC address nor a serial number", field="identity"
        ) from None
    return f"SN:{serial.upper()}", IdentifierType.SERIAL_NUMBER, serial.upper()
