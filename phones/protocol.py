"""The phone protocol's XML: a tolerant, safe reader of update checks and the writer of
responses (spec: phone-protocol.md).

Element names match case-insensitively on their local name, namespaces and unknown
elements are ignored, Brand/Manufacturer stand for Vendor; DTDs and entities are refused
(defusedxml's refusals, applied to a streaming expat reader that keeps only the fields
the protocol reads: building a tree for them cost more than the rest of a check).

Every field has the bound and character set of phone-protocol.md ("Parsing rules"),
checked here as the request is read (``phone_field`` and the constants below; the log
upload's parameters use the same checks): a value outside them refuses the request
with ``InvalidRequest`` naming the field, the value shown cut to its bound, so nothing
longer than a model column ever reaches the audit or the inventory.
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
# The bounds of phone-protocol.md, in characters; every one fits its model column
# (RequestAudit, Device, DeviceLog: 64 to 256).
MAX_NAME = 64  # DeviceType, Vendor, Model, Revision, Locale, UpdateType: folder names
MAX_SERIAL = 64
MAX_USER = 256
MAX_FILE_NAME = 255
MAX_VERSION = 64
MAX_TIMESTAMP = 64
MAX_MAC_TEXT = 17  # 12 hex digits with a separator between pairs: 00-04-F2-11-22-33
_VENDOR_NAMES = ("vendor", "brand", "manufacturer")
# Letters, digits and "_.:-", not "." or ".." (a serial number names a log folder).
SERIAL = re.compile(r"(?!\.\.?$)[A-Za-z0-9_.:-]{1,64}")


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


def shown(value: str, bound: int) -> str:
    """``value`` as a refusal shows it: quoted, escaped, cut to ``bound`` characters."""
    return repr(value[:bound]) + ("..." if len(value) > bound else "")


def phone_field(label: str, value: str, bound: int, *, folder: bool = False) -> str:
    """``value`` if it is within ``bound`` characters and printable (no control
    characters); a ``folder`` value (it names a folder of the store) also has no ``/``
    or ``\\`` and is not ``.`` or ``..``. ``ProtocolError`` naming ``label`` otherwise."""
    if len(value) > bound:
        raise ProtocolError(f"{label} is longer than {bound} characters: {shown(value, bound)}")
    if not value.isprintable():
        raise ProtocolError(f"{label} contains control characters: {shown(value, bound)}")
    if folder and ("/" in value or "\\" in value or value in (".", "..")):
        raise ProtocolError(f"{label} cannot name a folder: {shown(value, bound)}")
    return value


def phone_mac(label: str, raw: str) -> str:
    """A MAC address as 12 upper-case hex digits; ``ProtocolError`` naming ``label``."""
    try:
        if len(raw) > MAX_MAC_TEXT:
            raise ValueError(raw)
        mac = normalise_mac(raw)
        if len(mac) != 12:
            raise ValueError(raw)
    except ValueError:
        raise ProtocolError(
            f"{label} {shown(raw, MAX_MAC_TEXT)} is not a MAC address (12 hex digits)"
        ) from None
    return mac


def phone_serial(label: str, serial: str) -> str:
    """A serial number: letters, digits and ``_.:-``, at most 64, not ``.`` or ``..``."""
    if not SERIAL.fullmatch(serial):
        raise ProtocolError(
            f"{label} {shown(serial, MAX_SERIAL)} is not a serial number "
            f"(at most {MAX_SERIAL} letters, digits, '_', '.', ':' or '-')"
        )
    return serial


def _text(fields: dict[str, str], label: str, bound: int, *, folder: bool = False) -> str:
    """The field ``label`` (matched on its lower-case name), stripped and checked."""
    raw = fields.get(label.lower())
    if raw is None:
        return ""
    return phone_field(label, raw.strip(), bound, folder=folder)


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
    raw_mac = fields.get("macaddress", "").strip()
    serial = fields.get("serialnumber", "").strip()
    if not raw_mac and not serial:
        raise ProtocolError("MACAddress and SerialNumber are both empty")
    mac = phone_mac("MACAddress", raw_mac) if raw_mac else ""
    if serial:
        phone_serial("SerialNumber", serial)
    if len(reader.modules) > MAX_MODULES:
        raise ProtocolError(f"more than {MAX_MODULES} modules")
    modules = tuple(_module(module_fields) for module_fields in reader.modules)
    device_type = _text(fields, "DeviceType", MAX_NAME, folder=True)
    if not device_type:
        raise ProtocolError("DeviceType is empty")
    vendor = ""
    for name in _VENDOR_NAMES:  # the first of the synonyms present counts
        if name in fields:
            vendor = phone_field("Vendor", fields[name].strip(), MAX_NAME, folder=True)
            break
    return UpdateCheck(
        device_type=device_type,
        mac=mac,
        serial=serial,
        vendor=vendor,
        model=_text(fields, "Model", MAX_NAME, folder=True),
        revision=_text(fields, "Revision", MAX_NAME, folder=True),
        locale=_text(fields, "Locale", MAX_NAME, folder=True),
        user_id=_text(fields, "UserID", MAX_USER),
        modules=modules,
    )


def _module(fields: dict[str, str]) -> Module:
    file_name = _text(fields, "FileName", MAX_FILE_NAME)
    update_type = _text(fields, "UpdateType", MAX_NAME, folder=True)
    if not update_type:
        # The stem of FileName stands for it, under the same bound.
        update_type = phone_field("UpdateType", file_name.rsplit(".", 1)[0], MAX_NAME, folder=True)
    if not update_type:
        raise ProtocolError("a Module has neither UpdateType nor FileName")
    raw_version = _text(fields, "Version", MAX_VERSION)
    try:
        version = normalise_version(raw_version) if raw_version else ""
    except ValueError:
        raise ProtocolError(f"Version {shown(raw_version, MAX_VERSION)} is not a version") from None
    return Module(
        update_type=update_type,
        file_name=file_name,
        version=version,
        timestamp=_text(fields, "TimeStamp", MAX_TIMESTAMP),
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
