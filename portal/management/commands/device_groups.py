"""Device groups: named sets of phones a rollout wave can target (``group:NAME``)."""

from __future__ import annotations

from typing import Any

from portal.errors import DomainError
from portal.management.base import Actions, Handler, PortalCommand
from portal.models import DeviceGroup
from portal.selectors import device_identity_parse
from portal.services.fleet import device_group_delete, device_group_save

MEMBER_HELP = "MAC addresses in any form, serial numbers, MAC:<hex> or SN:<serial>"


def group_json(group: DeviceGroup) -> dict[str, Any]:
    return {
        "name": group.name,
        "description": group.description,
        "members": sorted(member.identity for member in group.members.all()),
    }


def _group(name: str) -> DeviceGroup:
    group = DeviceGroup.objects.filter(name__iexact=name.strip()).first()
    if group is None:
        raise DomainError(f"no device group named {name.strip()!r}", code="not_found")
    return group


class Command(PortalCommand):
    help = "Device groups: named sets of phones that rollout waves name as group:NAME."

    def add_actions(self, subparsers: Actions) -> None:
        listing = self.action_parser(subparsers, "list", "list device groups and their phones")
        listing.add_argument("--member", metavar="PHONE", help="only groups holding this phone")

        change = self.action_parser(
            subparsers,
            "set",
            "create the group NAME, or change it: --members replaces its phones (give none "
            "to empty it); what is not given stays",
        )
        change.add_argument("name", metavar="NAME")
        change.add_argument("--members", nargs="*", metavar="PHONE", help=MEMBER_HELP)
        change.add_argument("--description")
        change.add_argument("--new-name", metavar="NAME", help="rename it")

        remove = self.action_parser(
            subparsers, "remove", "delete a group (refused while an active rollout names it)"
        )
        remove.add_argument("name", metavar="NAME")

    def handlers(self) -> dict[str, Handler]:
        return {"list": self.list_groups, "set": self.set_group, "remove": self.remove_group}

    def list_groups(self, options: dict[str, Any]) -> None:
        groups = DeviceGroup.objects.prefetch_related("members")
        if options["member"]:
            _, kind, identifier = device_identity_parse(options["member"])
            groups = groups.filter(
                members__identifier_type=kind, members__identifier=identifier
            ).distinct()
        found = list(groups)
        if self.as_json:
            self.emit_json([group_json(group) for group in found])
            return
        if not found:
            self.emit("no device groups")
            return
        self.emit_table(
            ("NAME", "PHONES", "DESCRIPTION"),
            ((group.name, str(len(group.members.all())), group.description) for group in found),
        )

    def _done(self, message: str, group: dict[str, Any]) -> None:
        if self.as_json:
            self.emit_json({"ok": True, "message": message, "device_group": group})
        else:
            self.emit(message)

    def set_group(self, options: dict[str, Any]) -> None:
        group = DeviceGroup.objects.filter(name__iexact=options["name"].strip()).first()
        before = group_json(group) if group else None
        members = options["members"]
        if members is None:
            members = before["members"] if before else []
        description = options["description"]
        if description is None:
            description = before["description"] if before else ""
        saved = device_group_save(
            name=options["new_name"] or (group.name if group else options["name"]),
            members=members,
            description=description,
            group=group,
            actor=self.actor,
        )
        after = group_json(saved)
        count = len(after["members"])
        if before is None:
            message = f"created device group {saved.name} ({count} phones)"
        elif after == before:
            message = f"device group {saved.name} is unchanged"
        else:
            message = f"changed device group {saved.name} ({count} phones)"
        self._done(message, after)

    def remove_group(self, options: dict[str, Any]) -> None:
        group = _group(options["name"])
        described = group_json(group)
        device_group_delete(group=group, actor=self.actor)
        self._done(f"removed device group {described['name']}", described)
