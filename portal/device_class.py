"""The device class (update-package spec, "Layout inside the cabinet"): DeviceType,
Brand, Model, Revision and Locale, the first five levels of an update folder; and a
rule's class, the device class with its UpdateType.

Rules, stored versions and phones each spell a class as they were written, and it is
compared ignoring case everywhere (a phone reporting ``polycom`` gets the rule for
``Polycom``). This module is its one home, shared by the control panel and the phone
endpoints (``portal`` never imports ``phones``): the decision table's lookup key, the
case-insensitive query on rules, versions and the inventory, and the folder path.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from django.db.models import Q

# Device type, brand, model, revision, locale, lower-cased: the decision table's key.
ClassKey = tuple[str, str, str, str, str]

# The folder levels of a device class, with the description's elements that name them.
CLASS_LEVELS = (
    ("DeviceType", "device_type"),
    ("Brand", "brand"),
    ("Model", "model"),
    ("Revision", "revision"),
    ("Locale", "locale"),
)
CLASS_FIELDS = tuple(attribute for _tag, attribute in CLASS_LEVELS)
RULE_CLASS_FIELDS = (*CLASS_FIELDS, "update_type")
# An update folder: <device class>/<Version>/<UpdateType>.
FOLDER_DEPTH = len(CLASS_LEVELS) + 2
# The order of the query's conditions: the model first, as it leaves the fewest rows
# for the others (PostgreSQL keeps the order of conditions of the same cost).
_QUERY_ORDER = ("model", "brand", "device_type", "revision", "locale")


def class_key(device_type: str, brand: str, model: str, revision: str, locale: str) -> ClassKey:
    """The lookup key of a class: a plain function, so the phone endpoint builds no
    object per update check."""
    return (device_type.lower(), brand.lower(), model.lower(), revision.lower(), locale.lower())


class _Classed(Protocol):
    """A row naming a device class: a rule, a stored version, a phone, a description."""

    @property
    def device_type(self) -> str: ...
    @property
    def brand(self) -> str: ...
    @property
    def model(self) -> str: ...
    @property
    def revision(self) -> str: ...
    @property
    def locale(self) -> str: ...


class _RuleClassed(_Classed, Protocol):
    @property
    def update_type(self) -> str: ...


def _same(field: str, value: str, *, exact_first: bool) -> Q:
    if exact_first:
        # Equal values are equal ignoring case, so the exact match changes no result;
        # but for the many rows spelled as the class is, the database skips the case
        # folding, the most of a scan of the inventory.
        return Q(**{field: value}) | Q(**{f"{field}__iexact": value})
    return Q(**{f"{field}__iexact": value})


@dataclass(frozen=True, eq=False)
class DeviceClass:
    """DeviceType/Brand/Model/Revision/Locale as written; equal, hashed and queried
    ignoring case."""

    device_type: str
    brand: str
    model: str
    revision: str
    locale: str

    @classmethod
    def of(cls, row: _Classed) -> DeviceClass:
        return cls(row.device_type, row.brand, row.model, row.revision, row.locale)

    @classmethod
    def from_path(cls, path: str) -> DeviceClass:
        """``UCPhone/Polycom/CX600/Rev-1/ENU``, or an update folder that starts with it
        (``…/ENU/4.0.7577.4387/CPE``); ``ValueError`` for anything else."""
        levels = path.split("/")
        if len(levels) not in (len(CLASS_LEVELS), FOLDER_DEPTH) or not all(levels):
            raise ValueError(
                f"{path!r} is not a device class path <DeviceType>/<Brand>/<Model>/"
                "<Revision>/<Locale> (or an update folder that starts with one)"
            )
        return cls(*levels[: len(CLASS_LEVELS)])

    @property
    def key(self) -> ClassKey:
        return class_key(self.device_type, self.brand, self.model, self.revision, self.locale)

    @property
    def path(self) -> str:
        """The folder levels as written: ``UCPhone/Polycom/CX600/Rev-1/ENU``."""
        return "/".join((self.device_type, self.brand, self.model, self.revision, self.locale))

    @property
    def name(self) -> str:
        """What people read: ``Polycom CX600 Rev-1 ENU`` (the device type is always
        ``UCPhone``, so it says nothing)."""
        return " ".join((self.brand, self.model, self.revision, self.locale))

    def q(self, prefix: str = "", *, exact_first: bool = False) -> Q:
        """Rows of this class, ignoring case; ``prefix`` reaches it through a relation
        (``"rule__"``). ``exact_first`` also tries each exact value first, for the
        inventory, where most phones spell their class as the rule does."""
        query = Q()
        for name in _QUERY_ORDER:
            query &= _same(f"{prefix}{name}", getattr(self, name), exact_first=exact_first)
        return query

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, DeviceClass):
            return NotImplemented
        return self.key == other.key

    def __hash__(self) -> int:
        return hash(self.key)

    def __str__(self) -> str:
        return self.path


@dataclass(frozen=True, eq=False)
class RuleClass:
    """What one rule serves and one stored version updates: a device class and an
    update type, as written; equal, hashed and queried ignoring case."""

    device_type: str
    brand: str
    model: str
    revision: str
    locale: str
    update_type: str

    @classmethod
    def of(cls, row: _RuleClassed) -> RuleClass:
        return cls(row.device_type, row.brand, row.model, row.revision, row.locale, row.update_type)

    @property
    def device_class(self) -> DeviceClass:
        return DeviceClass(self.device_type, self.brand, self.model, self.revision, self.locale)

    @property
    def key(self) -> tuple[ClassKey, str]:
        """The decision table's keys: the class, then the update type."""
        return self.device_class.key, self.update_type.lower()

    @property
    def path(self) -> str:
        """``UCPhone/Polycom/CX600/Rev-1/ENU/CPE``, as rules are shown."""
        return f"{self.device_class.path}/{self.update_type}"

    @property
    def name(self) -> str:
        """What people read: ``Polycom CX600 Rev-1 ENU CPE``."""
        return f"{self.device_class.name} {self.update_type}"

    def q(self, prefix: str = "") -> Q:
        """Rows of this class and update type, ignoring case (rules, stored versions)."""
        return self.device_class.q(prefix) & Q(**{f"{prefix}update_type__iexact": self.update_type})

    def as_fields(self) -> dict[str, str]:
        """The model fields, for creating a rule of this class."""
        return {name: getattr(self, name) for name in RULE_CLASS_FIELDS}

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, RuleClass):
            return NotImplemented
        return self.key == other.key

    def __hash__(self) -> int:
        return hash(self.key)

    def __str__(self) -> str:
        return self.path
