"""List device update rules, and approve, reset, restore or remove them by identity."""

from __future__ import annotations

from typing import Any

from portal.choices import RuleAction, RuleState
from portal.errors import DomainError
from portal.management.base import Actions, Handler, PortalCommand
from portal.models import DeviceUpdateRule
from portal.selectors import rule_by_identity, rules_list
from portal.services.rules import RuleOutcome, rules_apply

ACTION_HELP = {
    RuleAction.APPROVE: "approve the pending version (R := A; A := P; P := empty); needs P",
    RuleAction.RESET: "cancel the pending version (P := empty); needs P",
    RuleAction.RESTORE: "roll back (A := R; R := empty; with no R nothing is offered); needs A",
    RuleAction.REMOVE: "delete the rule (its files stay until the pool's unused files are cleared)",
}


def rule_json(rule: DeviceUpdateRule) -> dict[str, Any]:
    return {
        "identity": rule.identity,
        "pool": rule.pool.fqdn,
        "rule_id": str(rule.rule_id),
        "device_type": rule.device_type,
        "brand": rule.brand,
        "model": rule.model,
        "revision": rule.revision,
        "locale": rule.locale,
        "update_type": rule.update_type,
        "state": str(rule.state),
        "pending_version": rule.pending_version,
        "approved_version": rule.approved_version,
        "restore_version": rule.restore_version,
    }


class Command(PortalCommand):
    help = (
        "Device update rules (service:WebServer:<pool FQDN>/<rule Id>). 'list' shows them; "
        "approve, reset, restore and remove act on each IDENTITY on its own, report each "
        "outcome and exit with status 1 if any was refused."
    )

    def add_actions(self, subparsers: Actions) -> None:
        listing = self.action_parser(subparsers, "list", "list rules, optionally filtered")
        listing.add_argument("--pool", metavar="FQDN", help="only the rules of this pool")
        listing.add_argument("--brand", metavar="B", help="only this brand (any case)")
        listing.add_argument("--model", metavar="M", help="only this model (any case)")
        listing.add_argument(
            "--state",
            metavar="S",
            choices=RuleState.values,
            help=f"only rules in this state: {', '.join(RuleState.values)}",
        )
        for action, help_text in ACTION_HELP.items():
            parser = self.action_parser(subparsers, action, help_text)
            parser.add_argument(
                "identities",
                nargs="+",
                metavar="IDENTITY",
                help="service:WebServer:<pool FQDN>/<rule Id GUID>",
            )

    def handlers(self) -> dict[str, Handler]:
        return {
            "list": self.list_rules,
            **dict.fromkeys(RuleAction.values, self.apply_action),
        }

    def list_rules(self, options: dict[str, Any]) -> None:
        rules = list(
            rules_list(
                pool_fqdn=options["pool"],
                brand=options["brand"],
                model=options["model"],
                state=options["state"],
            )
        )
        if self.as_json:
            self.emit_json([rule_json(rule) for rule in rules])
            return
        if not rules:
            self.emit("no rules")
            return
        self.emit_table(
            ("IDENTITY", "STATE", "DEVICE CLASS", "PENDING", "APPROVED", "RESTORE"),
            (
                (
                    rule.identity,
                    rule.state,
                    rule.device_class,
                    rule.pending_version or "-",
                    rule.approved_version or "-",
                    rule.restore_version or "-",
                )
                for rule in rules
            ),
        )

    def apply_action(self, options: dict[str, Any]) -> None:
        action = RuleAction(options["action"])
        outcomes: list[RuleOutcome] = []
        # Each identity on its own: one unknown or refused rule stops nothing else.
        for identity in dict.fromkeys(options["identities"]):
            try:
                rule = rule_by_identity(identity)
            except DomainError as error:
                outcomes.append(RuleOutcome(identity=identity, ok=False, message=error.message))
                continue
            outcomes.extend(rules_apply(action=action, rules=[rule], actor=self.actor))
        if self.as_json:
            self.emit_json(
                [
                    {"identity": outcome.identity, "ok": outcome.ok, "message": outcome.message}
                    for outcome in outcomes
                ]
            )
        for outcome in outcomes:
            if not outcome.ok:
                self.report_refusal(outcome.message)
            elif not self.as_json:
                self.emit(f"{outcome.identity}: {outcome.message}")
        if not all(outcome.ok for outcome in outcomes):
            raise SystemExit(1)
