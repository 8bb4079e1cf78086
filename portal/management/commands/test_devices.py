"""Test devices: list, add, change and remove the phones that receive pending versions."""

from __future__ import annotations

from typing import Any

from portal.choices import IdentifierType
from portal.errors import DomainError
from portal.management.base import Actions, Handler, PortalCommand
from portal.models import TestDevice
from portal.selectors import scope_resolve
from portal.services.testdevices import testdevice_create, testdevice_delete, testdevice_update

SCOPE_HELP = "global or site:<name> (default: global)"
TYPE_HELP = f"identifier type: {' or '.join(IdentifierType.values)}"


def device_json(device: TestDevice) -> dict[str, Any]:
    return {
        "scope": device.scope,
        "name": device.name,
        "identifier_type": device.identifier_type,
        "identifier": device.identifier,
    }


def _device(scope: str, name: str) -> TestDevice:
    site = scope_resolve(scope)
    device = (
        TestDevice.objects.select_related("site")
        .filter(site=site, name__iexact=name.strip())
        .first()
    )
    if device is None:
        where = f"site:{site.name}" if site else "global"
        raise DomainError(f"no test device named {name.strip()!r} in {where}", code="not_found")
    return device


class Command(PortalCommand):
    help = (
        "Test devices (phones named by MAC address or serial number, in the global scope "
        "or a site's scope) receive pending versions before everyone else."
    )

    def add_actions(self, subparsers: Actions) -> None:
        listing = self.action_parser(subparsers, "list", "list test devices")
        listing.add_argument("--scope", help="only this scope: global or site:<name>")

        add = self.action_parser(subparsers, "add", "add a test device")
        add.add_argument("--scope", default="global", help=SCOPE_HELP)
        add.add_argument("--name", required=True, help="unique within its scope")
        add.add_argument(
            "--identifier",
            required=True,
            help="MAC address (six or more hex pairs, joined or separated by - or :) "
            "or serial number (letters, digits, - and _)",
        )
        add.add_argument(
            "--type",
            dest="identifier_type",
            required=True,
            choices=IdentifierType.values,
            help=TYPE_HELP,
        )

        change = self.action_parser(
            subparsers,
            "set",
            "change the test device named --name in --scope; give at least one of "
            "--new-name, --new-scope, --identifier, --type (a new type alone re-checks the "
            "current identifier)",
        )
        change.add_argument("--scope", default="global", help=f"its scope now: {SCOPE_HELP}")
        change.add_argument("--name", required=True, help="its name now")
        change.add_argument("--new-name", help="rename it")
        change.add_argument("--new-scope", help="move it: global or site:<name>")
        change.add_argument("--identifier", help="a new MAC address or serial number")
        change.add_argument(
            "--type",
            dest="identifier_type",
            choices=IdentifierType.values,
            help=f"a new {TYPE_HELP}",
        )

        remove = self.action_parser(subparsers, "remove", "remove a test device")
        remove.add_argument("--scope", default="global", help=SCOPE_HELP)
        remove.add_argument("--name", required=True)

    def handlers(self) -> dict[str, Handler]:
        return {
            "list": self.list_devices,
            "add": self.add_device,
            "set": self.change_device,
            "remove": self.remove_device,
        }

    def list_devices(self, options: dict[str, Any]) -> None:
        devices = TestDevice.objects.select_related("site")
        if options["scope"] is not None:
            devices = devices.filter(site=scope_resolve(options["scope"]))
        found = list(devices)
        if self.as_json:
            self.emit_json([device_json(device) for device in found])
            return
        if not found:
            self.emit("no test devices")
            return
        self.emit_table(
            ("SCOPE", "NAME", "TYPE", "IDENTIFIER"),
            (
                (device.scope, device.name, device.identifier_type, device.identifier)
                for device in found
            ),
        )

    def _done(self, message: str, device: TestDevice) -> None:
        if self.as_json:
            self.emit_json({"ok": True, "message": message, "test_device": device_json(device)})
        else:
            self.emit(message)

    def add_device(self, options: dict[str, Any]) -> None:
        device = testdevice_create(
            scope=options["scope"],
            name=options["name"],
            identifier_type=options["identifier_type"],
            identifier=options["identifier"],
            actor=self.actor,
        )
        self._done(f"added {device} ({device.identifier_type} {device.identifier})", device=device)

    def change_device(self, options: dict[str, Any]) -> None:
        changes = {
            "scope": options["new_scope"],
            "name": options["new_name"],
            "identifier_type": options["identifier_type"],
            "identifier": options["identifier"],
        }
        if all(value is None for value in changes.values()):
            self.refuse("nothing to change: give --new-name, --new-scope, --identifier or --type")
        device = _device(options["scope"], options["name"])
        before = device_json(device)
        device = testdevice_update(device=device, actor=self.actor, **changes)
        after = device_json(device)
        if after == before:
            self._done(f"{device} is unchanged", device=device)
            return
        changed = ", ".join(
            f"{key} {before[key]!r} -> {after[key]!r}" for key in after if before[key] != after[key]
        )
        self._done(f"changed {device}: {changed}", device=device)

    def remove_device(self, options: dict[str, Any]) -> None:
        device = _device(options["scope"], options["name"])
        described = device_json(device)
        text = f"removed {device}"
        testdevice_delete(device=device, actor=self.actor)
        if self.as_json:
            self.emit_json({"ok": True, "message": text, "test_device": described})
        else:
            self.emit(text)
