"""Test devices: add, change, remove; identifiers validated and stored normalised."""

from __future__ import annotations

from typing import Any

from django.db import IntegrityError, transaction

from portal.choices import IdentifierType
from portal.errors import DomainError
from portal.identifiers import normalise_mac, normalise_serial
from portal.models import TestDevice
from portal.selectors import scope_resolve
from portal.services.audit import Actor, audit_record, diff, snapshot
from portal.services.generation import decision_generation_bump

FIELDS = ("site", "name", "identifier_type", "identifier")


def _normalised_identifier(identifier_type: str, identifier: str) -> str:
    try:
        kind = IdentifierType(identifier_type)
    except ValueError:
        raise DomainError(
            f"{identifier_type!r} is not an identifier type (MACAddress or SerialNumber)",
            field="identifier_type",
        ) from None
    try:
        if kind is IdentifierType.MAC_ADDRESS:
            return normalise_mac(identifier)
        return normalise_serial(identifier)
    except ValueError as error:
        raise DomainError(str(error), field="identifier") from None


def _checked_name(name: str) -> str:
    text = name.strip()
    if not text or len(text) > 100 or not text.isprintable():
        raise DomainError("a name of 1 to 100 printable characters is required", field="name")
    return text


def _save(device: TestDevice, *, actor: Actor, action: str, before: dict[str, Any]) -> None:
    duplicate = TestDevice.objects.filter(site=device.site, name__iexact=device.name).exclude(
        pk=device.pk
    )
    if duplicate.exists():
        raise DomainError(
            f"a test device named {device.name!r} already exists in {device.scope}", field="name"
        )
    try:
        with transaction.atomic():
            device.save()
            decision_generation_bump()
            audit_record(
                actor=actor,
                action=action,
                obj=device,
                changes=diff(before, snapshot(device, FIELDS)),
            )
    except IntegrityError:
        # A concurrent add of the same name won the race.
        raise DomainError(
            f"a test device named {device.name!r} already exists in {device.scope}", field="name"
        ) from None


def testdevice_create(
    *, scope: str, name: str, identifier_type: str, identifier: str, actor: Actor
) -> TestDevice:
    """Add a test device to the ``global`` or ``site:<name>`` scope."""
    device = TestDevice(
        site=scope_resolve(scope),
        name=_checked_name(name),
        identifier_type=identifier_type,
        identifier=_normalised_identifier(identifier_type, identifier),
    )
    _save(device, actor=actor, action="portal.test_device.created", before={})
    return device


def testdevice_update(
    *,
    device: TestDevice,
    actor: Actor,
    scope: str | None = None,
    name: str | None = None,
    identifier_type: str | None = None,
    identifier: str | None = None,
) -> TestDevice:
    """Change any of scope, name, identifier type and identifier; others stay."""
    before = snapshot(device, FIELDS)
    if scope is not None:
        device.site = scope_resolve(scope)
    if name is not None:
        device.name = _checked_name(name)
    new_type = identifier_type if identifier_type is not None else device.identifier_type
    if identifier_type is not None or identifier is not None:
        device.identifier = _normalised_identifier(
            new_type, identifier if identifier is not None else device.identifier
        )
        device.identifier_type = new_type
    if snapshot(device, FIELDS) == before:
        return device
    _save(device, actor=actor, action="portal.test_device.changed", before=before)
    return device


def testdevice_delete(*, device: TestDevice, actor: Actor) -> None:
    with transaction.atomic():
        audit_record(
            actor=actor,
            action="portal.test_device.removed",
            obj=device,
            changes=diff(snapshot(device, FIELDS), {}),
        )
        device.delete()
        decision_generation_bump()
