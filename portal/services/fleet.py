"""Per-phone holds and pins, device groups and maintenance windows (Step 7).

Each change is audited and moves the decision generation, so every web process
honours it within about a second; a refusal raises ``DomainError`` and changes nothing.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

from django.db import IntegrityError, transaction
from django.db.models import Q

from portal.choices import DeviceControlKind, RolloutState, Weekday
from portal.errors import DomainError
from portal.identifiers import normalise_version
from portal.models import (
    DeviceControl,
    DeviceGroup,
    DeviceGroupMember,
    DeviceUpdateRule,
    MaintenanceWindow,
    RolloutWave,
    Site,
)
from portal.selectors import device_identity_parse, rule_versions
from portal.services.audit import Actor, audit_record
from portal.services.generation import decision_generation_bump

MAX_GROUP_MEMBERS = 100_000


def _control_save(
    *, identity: str, rule: DeviceUpdateRule, kind: DeviceControlKind, version: str, actor: Actor
) -> DeviceControl:
    with transaction.atomic():
        control = (
            DeviceControl.objects.select_for_update().filter(identity=identity, rule=rule).first()
        )
        before = (control.kind, control.version) if control else (None, None)
        if control is None:
            control = DeviceControl(identity=identity, rule=rule)
        control.kind = kind
        control.version = version
        control.actor_name = actor.name[:150]
        control.save()
        decision_generation_bump()
        audit_record(
            actor=actor,
            action=f"portal.device.{'held' if kind == DeviceControlKind.HOLD else 'pinned'}",
            obj=control,
            changes={
                "rule": [None, rule.identity],
                "kind": [before[0], kind.value],
                "version": [before[1] or None, version or None],
            },
        )
        return control


def device_hold(*, identity: str, rule: DeviceUpdateRule, actor: Actor) -> DeviceControl:
    """Never offer the phone updates for the rule until released."""
    key, _, _ = device_identity_parse(identity)
    return _control_save(
        identity=key, rule=rule, kind=DeviceControlKind.HOLD, version="", actor=actor
    )


def device_pin(
    *, identity: str, rule: DeviceUpdateRule, version: str, actor: Actor
) -> DeviceControl:
    """Offer the phone this version of the rule, whatever the rule says, until released."""
    key, _, _ = device_identity_parse(identity)
    try:
        version = normalise_version(version)
    except ValueError as error:
        raise DomainError(str(error), field="version") from None
    if version not in rule_versions(rule):
        raise DomainError(
            f"{rule.identity} never had version {version}", field="version", code="unknown_version"
        )
    return _control_save(
        identity=key, rule=rule, kind=DeviceControlKind.PIN, version=version, actor=actor
    )


def device_release(*, identity: str, rule: DeviceUpdateRule, actor: Actor) -> None:
    """Lift the phone's hold or pin on the rule."""
    key, _, _ = device_identity_parse(identity)
    with transaction.atomic():
        control = DeviceControl.objects.select_for_update().filter(identity=key, rule=rule).first()
        if control is None:
            raise DomainError(
                f"{key} is neither held nor pinned for {rule.identity}",
                field="identity",
                code="not_found",
            )
        audit_record(
            actor=actor,
            action="portal.device.released",
            obj=control,
            changes={
                "rule": [rule.identity, None],
                "kind": [control.kind, None],
                "version": [control.version or None, None],
            },
        )
        control.delete()
        decision_generation_bump()


def device_group_save(
    *,
    name: str,
    members: Iterable[str],
    description: str = "",
    group: DeviceGroup | None = None,
    actor: Actor,
) -> DeviceGroup:
    """Create a device group, or replace an existing one's name, description and
    members (MACs in any form or serial numbers)."""
    text = name.strip()
    if not text or len(text) > 100 or not text.isprintable():
        raise DomainError("a name of 1 to 100 printable characters is required", field="name")
    parsed: dict[tuple[str, str], None] = {}
    for member in members:
        if not member.strip():
            continue
        _, kind, identifier = device_identity_parse(member)
        parsed[(kind, identifier)] = None
    if len(parsed) > MAX_GROUP_MEMBERS:
        raise DomainError(f"a group holds at most {MAX_GROUP_MEMBERS} phones", field="members")
    clash = DeviceGroup.objects.filter(name__iexact=text)
    if group is not None:
        clash = clash.exclude(pk=group.pk)
    if clash.exists():
        raise DomainError(f"a device group named {text!r} already exists", field="name")
    try:
        with transaction.atomic():
            created = group is None
            group = group or DeviceGroup()
            before = (
                {}
                if created
                else {
                    "name": group.name,
                    "description": group.description,
                    "members": _member_identities(group),
                }
            )
            group.name, group.description = text, description.strip()[:400]
            group.save()
            group.members.all().delete()
            DeviceGroupMember.objects.bulk_create(
                DeviceGroupMember(group=group, identifier_type=kind, identifier=identifier)
                for kind, identifier in parsed
            )
            after = {
                "name": group.name,
                "description": group.description,
                "members": _member_identities(group),
            }
            decision_generation_bump()
            audit_record(
                actor=actor,
                action=f"portal.device_group.{'created' if created else 'changed'}",
                obj=group,
                changes={
                    key: [before.get(key), after[key]]
                    for key in after
                    if before.get(key) != after[key]
                },
            )
            return group
    except IntegrityError:
        raise DomainError(f"a device group named {text!r} already exists", field="name") from None


def _member_identities(group: DeviceGroup) -> list[str]:
    # A fresh query: members a caller prefetched would be the old ones after the change.
    return sorted(m.identity for m in DeviceGroupMember.objects.filter(group=group))


def device_group_delete(*, group: DeviceGroup, actor: Actor) -> None:
    """Delete a group that no active rollout's wave names."""
    in_use = RolloutWave.objects.filter(
        groups=group, rollout__state__in=RolloutState.active()
    ).first()
    if in_use is not None:
        raise DomainError(
            f"device group {group.name!r} is in a wave of active rollout #{in_use.rollout_id}"
        )
    with transaction.atomic():
        audit_record(
            actor=actor,
            action="portal.device_group.deleted",
            obj=group,
            changes={"name": [group.name, None]},
        )
        group.delete()
        decision_generation_bump()


def maintenance_window_create(
    *, site: Site, weekday: int, start: dt.time, end: dt.time, actor: Actor
) -> MaintenanceWindow:
    """A weekly window in the site's local time; not empty, not overlapping another."""
    if weekday not in Weekday.values:
        raise DomainError(f"{weekday!r} is not a weekday (0 Monday to 6 Sunday)", field="weekday")
    if end <= start:
        raise DomainError(
            f"the window {start:%H:%M}–{end:%H:%M} is empty: the end must be after the start "
            "(split a window across midnight into two)",
            field="end",
        )
    overlapping = MaintenanceWindow.objects.filter(
        Q(start__lt=end) & Q(end__gt=start), site=site, weekday=weekday
    ).first()
    if overlapping is not None:
        raise DomainError(f"the window overlaps {overlapping}", field="start")
    with transaction.atomic():
        window = MaintenanceWindow.objects.create(site=site, weekday=weekday, start=start, end=end)
        decision_generation_bump()
        audit_record(
            actor=actor,
            action="portal.maintenance_window.created",
            obj=window,
            changes={"window": [None, str(window)], "time_zone": [None, site.time_zone]},
        )
        return window


def maintenance_window_delete(*, window: MaintenanceWindow, actor: Actor) -> None:
    with transaction.atomic():
        audit_record(
            actor=actor,
            action="portal.maintenance_window.deleted",
            obj=window,
            changes={"window": [str(window), None]},
        )
        window.delete()
        decision_generation_bump()
