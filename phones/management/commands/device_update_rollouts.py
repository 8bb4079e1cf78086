"""Staged rollouts: plan one, list and show them (with what the phones were seen
doing), advance, pause, resume, cancel or restore one, and run the observation job."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

from phones.api.serializers import progress_data
from phones.services.rollout_watch import rollout_progress, rollouts_observe
from portal.choices import RolloutState
from portal.management.base import Actions, Handler, PortalCommand
from portal.models import Rollout
from portal.selectors import rollout_by_id, rule_by_identity
from portal.services.rollout_plans import MAX_COUNT, RolloutPlan, plan_summary, wave_parse
from portal.services.rollouts import (
    ROLLOUT_MOVES,
    rollout_advance,
    rollout_cancel,
    rollout_pause,
    rollout_plan,
    rollout_restore,
    rollout_resume,
)
from portal.waves import wave_describe

ROLLOUT_HELP = "the rollout's number (7 or #7)"
RULE_HELP = "service:WebServer:<pool FQDN>/<rule Id GUID>"

# action -> (service, help), the help from the state machine
TRANSITIONS: dict[str, tuple[Callable[..., Rollout], str]] = {
    move.action: (service, f"{move.help} ({' or '.join(sorted(move.allowed))})")
    for move, service in (
        (ROLLOUT_MOVES["advance"], rollout_advance),
        (ROLLOUT_MOVES["pause"], rollout_pause),
        (ROLLOUT_MOVES["resume"], rollout_resume),
        (ROLLOUT_MOVES["cancel"], rollout_cancel),
        (ROLLOUT_MOVES["restore"], rollout_restore),
    )
}


def count(text: str) -> int:
    """A whole number; its range is the service's to check (one clear message)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if abs(value) > MAX_COUNT:
        raise argparse.ArgumentTypeError(f"{value} is too large")
    return value


def rollout_json(rollout: Rollout) -> dict[str, Any]:
    """The rollout as the API shows it (waves and the current wave numbered from 1)."""
    return {
        "id": rollout.pk,
        "rule": rollout.rule.identity,
        "device_class": rollout.rule.device_class,
        "from_version": rollout.from_version,
        "to_version": rollout.to_version,
        "state": rollout.state,
        "reason": rollout.reason,
        "current_wave": rollout.current_wave + 1,
        "wave_started_at": rollout.wave_started_at,
        "counting_since": rollout.counting_since,
        "plan": plan_summary(rollout),
        "waves": [
            {
                "number": wave.position + 1,
                "label": wave_describe(wave),
                "percent": wave.percent,
                "sites": [site.name for site in wave.sites.all()],
                "groups": [group.name for group in wave.groups.all()],
                "started_at": wave.started_at,
                "completed_at": wave.completed_at,
            }
            for wave in rollout.waves.all()
        ],
        "actor_name": rollout.actor_name,
        "created_at": rollout.created_at,
        "updated_at": rollout.updated_at,
        "finished_at": rollout.finished_at,
    }


def _fetched(rollout_id: int | str) -> Rollout:
    rollout = rollout_by_id(rollout_id)
    return (
        Rollout.objects.select_related("rule__pool")
        .prefetch_related("waves__sites", "waves__groups")
        .get(pk=rollout.pk)
    )


def _wave_text(rollout: Rollout) -> str:
    waves = list(rollout.waves.all())
    current = waves[rollout.current_wave]
    return f"wave {rollout.current_wave + 1} of {len(waves)} ({wave_describe(current)})"


def summary_line(rollout: Rollout) -> str:
    """``rollout #7 running, wave 2 of 5 (25 %): advanced by hand``."""
    return f"rollout #{rollout.pk} {rollout.state}, {_wave_text(rollout)}: {rollout.reason}"


def gates_text(plan: dict[str, Any]) -> str:
    limit = plan["failure_max_phones"]
    failure = f"> {plan['failure_percent']} %" + (
        f" or > {limit} phones" if limit is not None else ""
    )
    return (
        f"soak {plan['min_soak_minutes']} min; success >= {plan['success_percent']} %; "
        f"failure {failure} (sample >= {plan['min_sample']}); "
        f"silent {plan['silence_minutes']} min = failed; "
        f"advance {'automatic' if plan['automatic_advance'] else 'by hand'}; "
        f"halt {'automatic' if plan['automatic_halt'] else 'off'}"
    )


def _when(value: Any) -> str:
    return f"{value:%Y-%m-%d %H:%M}" if value else "-"


class Command(PortalCommand):
    help = (
        "Staged rollouts: a rule's pending version approved wave by wave (percentages of "
        "the rule's phones, or sites and device groups), judged by what the phones are "
        "seen running. Every refusal is one 'error:' line and exit status 1."
    )

    def add_actions(self, subparsers: Actions) -> None:
        plan = self.action_parser(
            subparsers, "plan", "start approving a rule's pending version wave by wave"
        )
        plan.add_argument("rule", metavar="RULE_IDENTITY", help=RULE_HELP)
        plan.add_argument(
            "--wave",
            dest="waves",
            action="append",
            default=[],
            metavar="WAVE",
            help="in order, once per wave: a cumulative percentage (5, 25, 100) or "
            "site:NAME / group:NAME (several joined by commas)",
        )
        plan.add_argument(
            "--min-soak-minutes",
            type=count,
            metavar="N",
            help="minutes a wave runs before it may pass (default 60)",
        )
        plan.add_argument(
            "--success-percent",
            type=count,
            metavar="X",
            help="a wave passes when >= X %% of its phones run the version (default 95)",
        )
        plan.add_argument(
            "--failure-percent",
            type=count,
            metavar="Y",
            help="halt when > Y %% of a wave's observed phones failed (default 5)",
        )
        plan.add_argument(
            "--failure-max-phones",
            type=count,
            metavar="N",
            help="halt also when more than N phones of a wave failed",
        )
        plan.add_argument(
            "--min-sample",
            type=count,
            metavar="N",
            help="observed phones a wave needs before the failure gate applies (default 10)",
        )
        plan.add_argument(
            "--silence-minutes",
            type=count,
            metavar="N",
            help="a phone silent this long after an offer counts as failed (default 2880)",
        )
        plan.add_argument(
            "--manual-advance",
            action="store_true",
            help="report a wave as ready instead of advancing by itself",
        )
        plan.add_argument("--no-automatic-halt", action="store_true",
                          help="never halt by itself (the failure gate only reports)")  # fmt: skip

        listing = self.action_parser(subparsers, "list", "list rollouts, newest first")
        listing.add_argument(
            "--state",
            metavar="S",
            choices=RolloutState.values,
            help=f"only rollouts in this state: {', '.join(RolloutState.values)}",
        )
        listing.add_argument("--rule", metavar="IDENTITY", help=f"only this rule's: {RULE_HELP}")

        show = self.action_parser(
            subparsers, "show", "show a rollout: plan, state, reason, per-wave progress, failures"
        )
        show.add_argument("rollout", metavar="ID", help=ROLLOUT_HELP)

        for name, (_service, help_text) in TRANSITIONS.items():
            parser = self.action_parser(subparsers, name, help_text)
            parser.add_argument("rollout", metavar="ID", help=ROLLOUT_HELP)
            parser.add_argument("--reason", help="recorded in the audit trail")

        self.action_parser(
            subparsers,
            "observe",
            "run the observation job once now: derive outcomes, check every running "
            "rollout's gates, advance or halt",
        )

    def handlers(self) -> dict[str, Handler]:
        return {
            "plan": self.plan,
            "list": self.list_rollouts,
            "show": self.show,
            **dict.fromkeys(TRANSITIONS, self.transition),
            "observe": self.observe,
        }

    def _done(self, rollout: Rollout) -> None:
        rollout = _fetched(rollout.pk)
        line = summary_line(rollout)
        if self.as_json:
            self.emit_json({"ok": True, "message": line, "rollout": rollout_json(rollout)})
        else:
            self.emit(line)

    def plan(self, options: dict[str, Any]) -> None:
        rule = rule_by_identity(options["rule"])
        gates = {
            name: options[name]
            for name in ("min_soak_minutes", "success_percent", "failure_percent",
                         "failure_max_phones", "min_sample", "silence_minutes")
            if options[name] is not None
        }  # fmt: skip
        plan = RolloutPlan(
            waves=tuple(wave_parse(text) for text in options["waves"]),
            automatic_advance=not options["manual_advance"],
            automatic_halt=not options["no_automatic_halt"],
            **gates,
        )
        self._done(rollout_plan(rule=rule, plan=plan, actor=self.actor))

    def list_rollouts(self, options: dict[str, Any]) -> None:
        rollouts = Rollout.objects.select_related("rule__pool").prefetch_related(
            "waves__sites", "waves__groups"
        )
        if options["state"]:
            rollouts = rollouts.filter(state=options["state"])
        if options["rule"]:
            rollouts = rollouts.filter(rule=rule_by_identity(options["rule"]))
        found = list(rollouts.order_by("-created_at", "-id"))
        if self.as_json:
            self.emit_json([rollout_json(rollout) for rollout in found])
            return
        if not found:
            self.emit("no rollouts")
            return
        self.emit_table(
            ("ID", "STATE", "WAVE", "VERSIONS", "RULE", "CREATED"),
            (
                (
                    f"#{rollout.pk}",
                    rollout.state,
                    f"{rollout.current_wave + 1}/{len(rollout.waves.all())}",
                    f"{rollout.from_version or '-'} -> {rollout.to_version}",
                    rollout.rule.identity,
                    _when(rollout.created_at),
                )
                for rollout in found
            ),
        )

    def show(self, options: dict[str, Any]) -> None:
        rollout = _fetched(options["rollout"])
        progress = progress_data(rollout_progress(rollout=rollout))
        if self.as_json:
            self.emit_json({**rollout_json(rollout), "progress": progress})
            return
        plan = plan_summary(rollout)
        self.emit(f"rollout #{rollout.pk}  {rollout.state}  {_wave_text(rollout)}")
        self.emit(f"rule        {rollout.rule.identity} ({rollout.rule.device_class})")
        self.emit(f"versions    {rollout.from_version or '-'} -> {rollout.to_version}")
        self.emit(f"reason      {rollout.reason}")
        self.emit(f"plan        {' | '.join(plan['waves'])}")
        self.emit(f"gates       {gates_text(plan)}")
        self.emit(f"gate now    {progress['gate']}")
        self.emit(f"population  {progress['population']} phones")
        self.emit(f"planned by  {rollout.actor_name} at {_when(rollout.created_at)}")
        self.emit("")
        self.emit_table(
            ("WAVE", "PLAN", "STARTED", "COMPLETED", "PLANNED", "OFFERED", "DOWNLOADED",
             "RUNNING", "FAILED", "FAILED BEFORE"),
            (
                (str(wave["number"]), wave["label"], _when(wave["started_at"]),
                 _when(wave["completed_at"]), str(wave["planned"]), str(wave["offered"]),
                 str(wave["downloaded"]), str(wave["running"]), str(wave["failed"]),
                 str(wave["failed_before"]))
                for wave in progress["waves"]
            ),
        )  # fmt: skip
        if not progress["failed_phones"]:
            self.emit("\nno failed phones")
            return
        self.emit("\nfailed phones:")
        self.emit_table(
            ("IDENTITY", "WAVE", "FAILED AT", "WHY"),
            (
                (phone["identity"], str(phone["wave"]), _when(phone["failed_at"]),
                 phone["failure"])
                for phone in progress["failed_phones"]
            ),
        )  # fmt: skip

    def transition(self, options: dict[str, Any]) -> None:
        service, _help = TRANSITIONS[options["action"]]
        reason = {"reason": options["reason"]} if options["reason"] else {}
        rollout = service(rollout=rollout_by_id(options["rollout"]), actor=self.actor, **reason)
        self._done(rollout)

    def observe(self, options: dict[str, Any]) -> None:
        run = rollouts_observe()
        if run.outcomes is None:
            self.refuse("another observation run is in progress; nothing was done")
        if self.as_json:
            self.emit_json(
                {
                    "checks": run.outcomes.checks,
                    "downloads": run.outcomes.downloads,
                    "transitions": dict(sorted(run.outcomes.transitions.items())),
                    "rollouts": run.rollouts,
                }
            )
            return
        for line in run.lines():
            self.emit(line)
