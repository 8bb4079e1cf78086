"""The phone protocol's XML: a tolerant, safe reader of update checks and the writer of
responses (spec: phone-protocol.md).

Element names match case-insensitively on their local name, namespaces and unknown
elements are ignored, Brand/Manufacturer stand for Vendor; DTDs and entities are refused.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from xml.etree.ElementTree import Element
from xml.sax.saxutils import escape

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import ParseError, fromstring

from phones.choices import PhoneError
from portal.identifiers import normalise_mac, normalise_version

MAX_BODY = 64 * 1024
MAX_MODULES = 64
MAX_FIELD = 256
_VENDOR_NAMES = ("vendor", "brand", "manufacturer")


class ProtocolError(Exception):
    """A request the protocol refuses; ``code`` is the spec's error code."""

    def __init__(self, message: str, *, code: PhoneError = PhoneError.INVALID_REQUEST) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


@dataclass(frozen=True)
class Module:
    update_type: str
    file_name: str
    version: str
    timestamp: str


@dataclass(frozen=True)
class UpdateCheck:
    device_type: str
    mac: str
    serial: str
    vendor: str
    model: str
    revision: str
    locale: str
    user_id: str
    modules: tuple[Module, ...] = field(default_factory=tuple)

    @property
    def identity(self) -> str:
        """The inventory key: the MAC when the phone gives one, else its serial number."""
        return f"MAC:{self.mac}" if self.mac else f"SN:{self.serial.upper()}"


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1].lower()


def _children(element: Element) -> dict[str, Element]:
    found: dict[str, Element] = {}
    for child in element:
        if isinstance(child.tag, str):
            found.setdefault(_local(child.tag), child)
    return found


def _text(elements: dict[str, Element], *names: str) -> str:
    for name in names:
        element = elements.get(name)
        if element is not None:
            value = (element.text or "").strip()
            if len(value) > MAX_FIELD:
                raise ProtocolError(f"{name} is longer than {MAX_FIELD} characters")
            if any(not character.isprintable() for character in value):
                raise ProtocolError(f"{name} contains control characters")
            return value
    return ""


def parse_update_check(body: bytes) -> UpdateCheck:
    """Read an update check; ``ProtocolError`` for anything the spec refuses."""
    if len(body) > MAX_BODY:
        raise ProtocolError(
            f"the request is larger than {MAX_BODY} bytes", code=PhoneError.TOO_LARGE
        )
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise ProtocolError("the request is not valid UTF-8") from None
    try:
        root = fromstring(text, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except (ParseError, DefusedXmlException) as error:
        raise ProtocolError(f"malformed XML: {error}") from None
    if _local(root.tag) != "request":
        raise ProtocolError("the document is not a <Request>")
    fields = _children(root)
    raw_mac = _text(fields, "macaddress")
    serial = _text(fields, "serialnumber")
    if not raw_mac and not serial:
        raise ProtocolError("MACAddress and SerialNumber are both empty")
    try:
        mac = normalise_mac(raw_mac) if raw_mac else ""
    except ValueError:
        raise ProtocolError(f"MACAddress {raw_mac!r} is not a MAC address") from None
    if serial and not re.fullmatch(r"[A-Za-z0-9_.:-]{1,64}", serial):
        raise ProtocolError(f"SerialNumber {serial!r} is not a serial number")
    modules: list[Module] = []
    container = fields.get("modules")
    if container is not None:
        for element in container:
            if not isinstance(element.tag, str) or _local(element.tag) != "module":
                continue
            if len(modules) == MAX_MODULES:
                raise ProtocolError(f"more than {MAX_MODULES} modules")
            modules.append(_module(_children(element)))
    device_type = _text(fields, "devicetype")
    if not device_type:
        raise ProtocolError("DeviceType is empty")
    return UpdateCheck(
        device_type=device_type,
        mac=mac,
        serial=serial,
        vendor=_text(fields, *_VENDOR_NAMES),
        model=_text(fields, "model"),
        revision=_text(fields, "revision"),
        locale=_text(fields, "locale"),
        user_id=_text(fields, "userid"),
        modules=tuple(modules),
    )


def _module(fields: dict[str, Element]) -> Module:
    file_name = _text(fields, "filename")
    update_type = _text(fields, "updatetype") or file_name.rsplit(".", 1)[0]
    if not update_type:
        raise ProtocolError("a Module has neither UpdateType nor FileName")
    raw_version = _text(fields, "version")
    try:
        version = normalise_version(raw_version) if raw_version else ""
    except ValueError:
        raise ProtocolError(f"Version {raw_version!r} is not a version") from None
    return Module(
        update_type=update_type,
        file_name=file_name,
        version=version,
        timestamp=_text(fields, "timestamp"),
    )


@dataclass(frozen=True)
class OfferedFile:
    name: str
    signature_name: str
    size: int
    sha256: str
    timestamp: str


@dataclass(frozen=True)
class OfferedModule:
    update_type: str
    version: str
    base_url: str
    external_base_url: str
    files: tuple[OfferedFile, ...]


def render_response(modules: list[OfferedModule]) -> bytes:
    """The update check response; ``NumOfFiles`` 0 with nothing to offer."""
    count = sum(len(module.files) for module in modules)
    parts = [
        '<?xml version="1.0" encoding="utf-8"?>\n<Response>',
        f"<NumOfFiles>{count}</NumOfFiles>",
    ]
    if modules:
        first = modules[0]
        parts.append(f"<BaseURL>{escape(first.base_url)}</BaseURL>")
        parts.append(f"<ExternalBaseURL>{escape(first.external_base_url)}</ExternalBaseURL>")
        parts.append("<Modules>")
        for module in modules:
            parts.append(
                f"<Module><UpdateType>{escape(module.update_type)}</UpdateType>"
                f"<Version>{escape(module.version)}</Version>"
                f"<BaseURL>{escape(module.base_url)}</BaseURL>"
                f"<ExternalBaseURL>{escape(module.external_base_url)}</ExternalBaseURL><Files>"
            )
            for item in module.files:
                parts.append(
                    f"<File><FileName>{escape(item.name)}</FileName>"
                    f"<SignatureFileName>{escape(item.signature_name)}</SignatureFileName>"
                    f"<Size>{item.size}</Size><SHA256>{item.sha256}</SHA256>"
                    f"<TimeStamp>{escape(item.timestamp)}</TimeStamp></File>"
                )
            parts.append("</Files></Module>")
        parts.append("</Modules>")
    parts.append("</Response>")
    return "".join(parts).encode("utf-8")
