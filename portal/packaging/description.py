"""The update description (``<UpdateType>.xml``): parsed safely, checked against its folder."""

from __future__ import annotations

import datetime
import re
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from xml.etree.ElementTree import Element, ParseError

import defusedxml.ElementTree
from defusedxml import DefusedXmlException

from portal.device_class import CLASS_LEVELS, DeviceClass
from portal.packaging.errors import PackageError

# The folder path of an update, component by component, and the matching XML elements.
FOLDER_FIELDS = (*CLASS_LEVELS, ("Version", "version"), ("UpdateType", "update_type"))
_GUID = re.compile(r"^\{?[0-9A-Fa-f]{8}(-[0-9A-Fa-f]{4}){3}-[0-9A-Fa-f]{12}\}?$")
# Versions are compared numerically (downgrade detection), so only dotted numbers pass.
_VERSION = re.compile(r"^[0-9]{1,9}(\.[0-9]{1,9}){0,3}$")
_MAX_DESCRIPTION_BYTES = 1 << 20


@dataclass(frozen=True)
class UpdateDescription:
    id: uuid.UUID
    device_type: str
    brand: str
    model: str
    revision: str
    locale: str
    update_type: str
    version: str
    release_date: datetime.date | None
    description: str | None
    images: tuple[str, ...]

    @property
    def device_class(self) -> DeviceClass:
        return DeviceClass.of(self)

    @property
    def folder(self) -> str:
        """The folder path inside the cabinet this description belongs in."""
        return f"{self.device_class.path}/{self.version}/{self.update_type}"

    @property
    def version_key(self) -> tuple[int, ...]:
        return tuple(int(part) for part in self.version.split("."))


def parse_description(data: bytes, *, member: str | None = None) -> UpdateDescription:
    """Parse a description; DTDs, entities and anything malformed are refused."""
    if len(data) > _MAX_DESCRIPTION_BYTES:
        raise PackageError("the description is larger than 1 MiB", member=member)
    try:
        root = defusedxml.ElementTree.fromstring(data, forbid_dtd=True)
    except DefusedXmlException:
        raise PackageError(
            "the description contains a DTD or entity declaration, which is refused", member=member
        ) from None
    except ParseError as error:
        raise PackageError(
            f"the description is not well-formed XML ({error})", member=member
        ) from None
    if root.tag != "DeviceUpdate":
        raise PackageError(
            f"the description's root element is {root.tag}, not DeviceUpdate", member=member
        )
    text = _Fields(root, member)
    raw_id = text.required("Id")
    if not _GUID.match(raw_id):
        raise PackageError(f"the description's Id {raw_id!r} is not a GUID", member=member)
    version = text.required("Version")
    if not _VERSION.match(version):
        raise PackageError(
            f"the description's Version {version!r} is not a dotted number", member=member
        )
    release_date = text.optional("ReleaseDate")
    try:
        parsed_date = datetime.date.fromisoformat(release_date) if release_date else None
    except ValueError:
        raise PackageError(
            f"the description's ReleaseDate {release_date!r} is not a date (YYYY-MM-DD)",
            member=member,
        ) from None
    return UpdateDescription(
        id=uuid.UUID(raw_id.strip("{}")),
        device_type=text.component("DeviceType"),
        brand=text.component("Brand"),
        model=text.component("Model"),
        revision=text.component("Revision"),
        locale=text.component("Locale"),
        update_type=text.component("UpdateType"),
        version=version,
        release_date=parsed_date,
        description=text.optional("Description"),
        images=_images(root, member),
    )


class _Fields:
    """Reads the single-valued child elements of the root."""

    def __init__(self, root: Element, member: str | None) -> None:
        self._root = root
        self._member = member

    def optional(self, tag: str) -> str | None:
        elements = self._root.findall(tag)
        if len(elements) > 1:
            raise PackageError(
                f"the description has {len(elements)} {tag} elements", member=self._member
            )
        if not elements:
            return None
        if len(elements[0]):
            raise PackageError(f"the description's {tag} has child elements", member=self._member)
        value = (elements[0].text or "").strip()
        return value or None

    def required(self, tag: str) -> str:
        value = self.optional(tag)
        if value is None:
            raise PackageError(f"the description has no {tag}", member=self._member)
        return value

    def component(self, tag: str) -> str:
        value = self.required(tag)
        if "/" in value or "\\" in value or value in (".", ".."):
            raise PackageError(
                f"the description's {tag} {value!r} is not a folder name", member=self._member
            )
        return value


def _images(root: Element, member: str | None) -> tuple[str, ...]:
    containers = root.findall("Images")
    if len(containers) != 1:
        raise PackageError("the description must have exactly one Images element", member=member)
    names: list[str] = []
    for element in containers[0]:
        if element.tag != "Image":
            raise PackageError(f"unexpected {element.tag} element in Images", member=member)
        name = (element.text or "").strip()
        if not name or "/" in name or "\\" in name:
            raise PackageError(f"the image name {name!r} is not a file name", member=member)
        if name.casefold() in (existing.casefold() for existing in names):
            raise PackageError(f"the image {name} is listed twice", member=member)
        names.append(name)
    if not names:
        raise PackageError("the description lists no image", member=member)
    return tuple(names)


def check_description_matches_folder(
    description: UpdateDescription,
    *,
    folder: str,
    file_names: Iterable[str],
    member: str | None = None,
) -> None:
    """Refuse a description that disagrees with its folder path or with the folder's images.

    ``folder`` is the update folder's path in the cabinet (``/`` separated) and
    ``file_names`` the names of the files directly inside it.
    """
    components = folder.split("/")
    if len(components) != len(FOLDER_FIELDS):
        raise PackageError(
            f"the update folder {folder} does not have the {len(FOLDER_FIELDS)} levels "
            "<DeviceType>/<Brand>/<Model>/<Revision>/<Locale>/<Version>/<UpdateType>",
            member=member,
        )
    for component, (tag, attribute) in zip(components, FOLDER_FIELDS, strict=True):
        value = getattr(description, attribute)
        if component != value:
            raise PackageError(
                f"the description's {tag} is {value!r} but the folder says {component!r}",
                member=member,
            )
    images_in_folder = {name for name in file_names if name.casefold().endswith(".nbt")}
    listed = set(description.images)
    missing = sorted(listed - images_in_folder)
    unlisted = sorted(images_in_folder - listed)
    if missing:
        raise PackageError(
            f"the description lists images missing from the folder: {', '.join(missing)}",
            member=member,
        )
    if unlisted:
        raise PackageError(
            f"the folder has images the description does not list: {', '.join(unlisted)}",
            member=member,
        )
