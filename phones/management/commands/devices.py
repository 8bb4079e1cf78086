"""Phones: show one (inventory, holds and pins, observed outcomes), hold or pin it for
a rule, release it, and list every hold and pin."""

from __future__ import annotations

from typing import Any

from phones.models import Device, DeviceOutcome
from phones.selectors import device_outcomes
from portal.choices import DeviceControlKind
from portal.errors import DomainError
from portal.management.base import Actions, Handler, PortalCommand
from portal.models import DeviceControl
from portal.selectors import device_identity_parse, rule_by_identity
from portal.services.fleet import device_hold, device_pin, device_release

IDENTITY_HELP = "MAC:<hex>, SN:<serial>, a MAC address in any form, or a serial number"
RULE_HELP = "service:WebServer:<pool FQDN>/<rule Id GUID>"


def device_json(device: Device) -> dict[str, Any]:
    return {
        "identity": device.identity,
        "mac": device.mac,
        "serial": device.serial,
        "device_type": device.device_type,
        "brand": device.brand,
        "model": device.model,
        "revision": device.revision,
        "locale": device.locale,
        "installed": device.installed,
        "targets": device.targets,
        "state": device.state,
        "test_device": device.test_device,
        "first_seen": device.first_seen,
        "last_seen": device.last_seen,
        "last_user": device.last_user,
        "last_address": device.last_address,
        "last_channel": device.last_channel,
        "last_server": device.last_server,
    }


def control_json(control: DeviceControl) -> dict[str, Any]:
    """A hold or pin as the API shows it."""
    return {
        "id": control.pk,
        "identity": control.identity,
        "rule": control.rule.identity,
        "device_class": control.rule.device_class,
        "kind": control.kind,
        "version": control.version,
        "actor_name": control.actor_name,
        "created_at": control.created_at,
    }


def outcome_json(outcome: DeviceOutcome) -> dict[str, Any]:
    """An observed outcome as the API shows it."""
    return {
        "rule": outcome.rule.identity,
        "device_class": outcome.rule.device_class,
        "version": outcome.version,
        "state": outcome.state,
        "offered_first": outcome.offered_first,
        "offered_last": outcome.offered_last,
        "offered_count": outcome.offered_count,
        "downloaded_at": outcome.downloaded_at,
        "running_at": outcome.running_at,
        "failed_at": outcome.failed_at,
        "failure": outcome.failure,
        "last_seen": outcome.last_seen,
        "updated_at": outcome.updated_at,
    }


def _what(control: DeviceControl) -> str:
    return f"pinned to {control.version}" if control.kind == DeviceControlKind.PIN else "held"


def _when(value: Any) -> str:
    return f"{value:%Y-%m-%d %H:%M}" if value else "-"


def _versions(versions: dict[str, str]) -> str:
    return ", ".join(f"{kind} {version}" for kind, version in sorted(versions.items())) or "-"


class Command(PortalCommand):
    help = (
        "Phones by identity (MAC:<hex> or SN:<serial>): show what is known of one, hold "
        "it (never offered a rule's updates), pin it to a version of a rule, release it."
    )

    def add_actions(self, subparsers: Actions) -> None:
        show = self.action_parser(
            subparsers, "show", "show a phone: inventory, holds and pins, observed outcomes"
        )
        show.add_argument("identity", metavar="IDENTITY", help=IDENTITY_HELP)

        hold = self.action_parser(
            subparsers, "hold", "never offer the phone the rule's updates (until released)"
        )
        hold.add_argument("identity", metavar="IDENTITY", help=IDENTITY_HELP)
        hold.add_argument("--rule", required=True, metavar="RULE", help=RULE_HELP)

        pin = self.action_parser(
            subparsers, "pin", "offer the phone this version of the rule (until released)"
        )
        pin.add_argument("identity", metavar="IDENTITY", help=IDENTITY_HELP)
        pin.add_argument("--rule", required=True, metavar="RULE", help=RULE_HELP)
        pin.add_argument("--version", required=True, metavar="V", help="a version the rule had")

        release = self.action_parser(subparsers, "release", "lift the phone's hold or pin")
        release.add_argument("identity", metavar="IDENTITY", help=IDENTITY_HELP)
        release.add_argument("--rule", required=True, metavar="RULE", help=RULE_HELP)

        controls = self.action_parser(subparsers, "controls", "list held and pinned phones")
        controls.add_argument("--rule", metavar="RULE", help=f"only this rule's: {RULE_HELP}")
        controls.add_argument(
            "--kind", choices=DeviceControlKind.values, help="only holds or only pins"
        )

    def handlers(self) -> dict[str, Handler]:
        return {
            "show": self.show,
            "hold": self.hold,
            "pin": self.pin,
            "release": self.release,
            "controls": self.list_controls,
        }

    def show(self, options: dict[str, Any]) -> None:
        identity, _, _ = device_identity_parse(options["identity"])
        device = Device.objects.filter(identity=identity).first()
        controls = list(
            DeviceControl.objects.select_related("rule__pool").filter(identity=identity)
        )
        outcomes = device_outcomes(identity=identity)
        if device is None and not controls and not outcomes:
            raise DomainError(f"no phone {identity} in the inventory", code="not_found")
        if self.as_json:
            self.emit_json(
                {
                    "identity": identity,
                    "device": device_json(device) if device else None,
                    "controls": [control_json(control) for control in controls],
                    "outcomes": [outcome_json(outcome) for outcome in outcomes],
                }
            )
            return
        self.emit(f"phone {identity}")
        if device is None:
            self.emit("  not in the inventory (it has not checked in)")
        else:
            self.emit(
                f"  {device.device_type} {device.brand} {device.model} {device.revision} "
                f"{device.locale}" + ("  (test device)" if device.test_device else "")
            )
            self.emit(f"  state       {device.state}")
            self.emit(f"  installed   {_versions(device.installed)}")
            self.emit(f"  targets     {_versions(device.targets)}")
            self.emit(
                f"  last seen   {_when(device.last_seen)} on {device.last_server} "
                f"({device.last_channel}, {device.last_address or '-'}"
                + (f", user {device.last_user})" if device.last_user else ")")
            )
            self.emit(f"  first seen  {_when(device.first_seen)}")
        self.emit("")
        if controls:
            self.emit("holds and pins:")
            for control in controls:
                self.emit(f"  {_what(control)} for {control.rule.identity} by {control.actor_name}")
        else:
            self.emit("no holds or pins")
        self.emit("")
        if not outcomes:
            self.emit("no observed outcomes")
            return
        self.emit("observed outcomes:")
        self.emit_table(
            ("RULE", "VERSION", "STATE", "OFFERED", "FIRST OFFERED", "DOWNLOADED", "RUNNING",
             "FAILED", "WHY"),
            (
                (outcome.rule.identity, outcome.version, outcome.state,
                 str(outcome.offered_count), _when(outcome.offered_first),
                 _when(outcome.downloaded_at), _when(outcome.running_at),
                 _when(outcome.failed_at), outcome.failure or "-")
                for outcome in outcomes
            ),
        )  # fmt: skip

    def _done(self, message: str, control: DeviceControl | None) -> None:
        if self.as_json:
            self.emit_json(
                {
                    "ok": True,
                    "message": message,
                    "control": control_json(control) if control else None,
                }
            )
        else:
            self.emit(message)

    def hold(self, options: dict[str, Any]) -> None:
        rule = rule_by_identity(options["rule"])
        control = device_hold(identity=options["identity"], rule=rule, actor=self.actor)
        self._done(f"{control.identity} held for {rule.identity}", control)

    def pin(self, options: dict[str, Any]) -> None:
        rule = rule_by_identity(options["rule"])
        control = device_pin(
            identity=options["identity"], rule=rule, version=options["version"], actor=self.actor
        )
        self._done(f"{control.identity} pinned to {control.version} for {rule.identity}", control)

    def release(self, options: dict[str, Any]) -> None:
        rule = rule_by_identity(options["rule"])
        identity, _, _ = device_identity_parse(options["identity"])
        device_release(identity=identity, rule=rule, actor=self.actor)
        self._done(f"{identity} released for {rule.identity}", None)

    def list_controls(self, options: dict[str, Any]) -> None:
        controls = DeviceControl.objects.select_related("rule__pool").order_by("identity", "pk")
        if options["rule"]:
            controls = controls.filter(rule=rule_by_identity(options["rule"]))
        if options["kind"]:
            controls = controls.filter(kind=options["kind"])
        found = list(controls)
        if self.as_json:
            self.emit_json([control_json(control) for control in found])
            return
        if not found:
            self.emit("no held or pinned phones")
            return
        self.emit_table(
            ("IDENTITY", "KIND", "VERSION", "RULE", "BY", "SINCE"),
            (
                (control.identity, control.kind, control.version or "-", control.rule.identity,
                 control.actor_name, _when(control.created_at))
                for control in found
            ),
        )  # fmt: skip
