"""The phone protocol's XML: a tolerant, safe reader of update checks and the writer of
responses (spec: phone-protocol.md).

Element names match case-insensitively on their local name, namespaces and unknown
elements are ignored, Brand/Manufacturer stand for Vendor; DTDs and entities are refused
(defusedxml's refusals, applied to a streaming expat reader that keeps only the fields
the protocol reads: building a tree for them cost more than the rest of a check).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from xml.parsers import expat
from xml.sax.saxutils import escape

from defusedxml import (
    DefusedXmlException,
    DTDForbidden,
    EntitiesForbidden,
    ExternalReferenceForbidden,
)

from phones.choices import PhoneError
from portal.identifiers import normalise_mac, normalise_version

MAX_BODY = 64 * 1024
MAX_MODULES = 64
MAX_FIELD = 256
_VENDOR_NAMES = ("vendor", "brand", "manufacturer")
_SERIAL = re.compile(r"[A-Za-z0-9_.:-]{1,64}")


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


class _Reader:
    """What expat streams, kept only where the protocol reads it.

    The fields are the ``text`` ElementTree would give (the character data before an
    element's first child) of the root's children and of each ``Module``'s children in
    the first ``Modules``, first occurrence of each local name; nothing else is kept,
    and no tree is built. The handlers refuse a DTD and every entity declaration or
    external reference, as defusedxml's parsers do, so none is ever expanded.
    """

    def __init__(self) -> None:
        self.root = ""
        self.fields: dict[str, str] = {}
        self.modules: list[dict[str, str]] = []
        self._depth = 0
        self._in_modules = False  # inside the first Modules of the root
        self._seen_modules = False
        self._module: dict[str, str] | None = None
        self._target: dict[str, str] | None = None  # where the text being read goes
        self._key = ""
        self._text: list[str] = []
        self._text_depth = 0

    def parse(self, text: str) -> None:
        parser = expat.ParserCreate(namespace_separator="}")
        parser.buffer_text = True
        parser.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)
        parser.StartDoctypeDeclHandler = _refuse_dtd
        parser.EntityDeclHandler = _refuse_entity
        parser.UnparsedEntityDeclHandler = _refuse_entity
        parser.ExternalEntityRefHandler = _refuse_external
        parser.StartElementHandler = self._start
        parser.EndElementHandler = self._end
        parser.CharacterDataHandler = self._data
        parser.Parse(text, True)

    def _start(self, name: str, attributes: object) -> None:
        if self._target is not None:
            self._keep()  # an element's text ends at its first child
        self._depth += 1
        depth = self._depth
        local = name.rpartition("}")[2].lower()
        if depth == 1:
            self.root = local
        elif depth == 2:
            if local == "modules" and not self._seen_modules:
                self._seen_modules = self._in_modules = True
            self._read_into(self.fields, local)
        elif depth == 3 and self._in_modules and local == "module":
            # One more than the limit is kept, so the refusal comes where it always did.
            if len(self.modules) <= MAX_MODULES:
                self._module = {}
                self.modules.append(self._module)
        elif depth == 4 and self._module is not None:
            self._read_into(self._module, local)

    def _read_into(self, target: dict[str, str], key: str) -> None:
        if key not in target:
            target[key] = ""
            self._target, self._key, self._text = target, key, []
            self._text_depth = self._depth

    def _keep(self) -> None:
        assert self._target is not None
        self._target[self._key] = "".join(self._text)
        self._target = None

    def _end(self, name: str) -> None:
        if self._target is not None and self._text_depth == self._depth:
            self._keep()
        if self._depth == 3:
            self._module = None
        elif self._depth == 2:
            self._in_modules = False
        self._depth -= 1

    def _data(self, data: str) -> None:
        if self._target is not None:
            self._text.append(data)


def _refuse_dtd(name: str, *args: object) -> None:
    raise DTDForbidden(name, None, None)


def _refuse_entity(name: str, *args: object) -> None:
    raise EntitiesForbidden(name, None, None, None, None, None)


def _refuse_external(
    context: str, base: str | None, system_id: str | None, public_id: str | None
) -> int:
    raise ExternalReferenceForbidden(context, base, system_id, public_id)


def _text(fields: dict[str, str], *names: str) -> str:
    for name in names:
        raw = fields.get(name)
        if raw is not None:
            value = raw.strip()
            if len(value) > MAX_FIELD:
                raise ProtocolError(f"{name} is longer than {MAX_FIELD} characters")
            if not value.isprintable():
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
    reader = _Reader()
    try:
        reader.parse(text)
    except (expat.ExpatError, DefusedXmlException) as error:
        raise ProtocolError(f"malformed XML: {error}") from None
    if reader.root != "request":
        raise ProtocolError("the document is not a <Request>")
    fields = reader.fields
    raw_mac = _text(fields, "macaddress")
    serial = _text(fields, "serialnumber")
    if not raw_mac and not serial:
        raise ProtocolError("MACAddress and SerialNumber are both empty")
    try:
        mac = normalise_mac(raw_mac) if raw_mac else ""
    except ValueError:
        raise ProtocolError(f"MACAddress {raw_mac!r} is not a MAC address") from None
    if serial and not _SERIAL.fullmatch(serial):
        raise ProtocolError(f"SerialNumber {serial!r} is not a serial number")
    modules: list[Module] = []
    for module_fields in reader.modules:
        if len(modules) == MAX_MODULES:
            raise ProtocolError(f"more than {MAX_MODULES} modules")
        modules.append(_module(module_fields))
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


def _module(fields: dict[str, str]) -> Module:
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
