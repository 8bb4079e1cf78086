"""Reads of rollouts: the active and governing ones, and a rollout by its number.

The plan and its state machine are ``portal.services.rollouts``; the phone side's
half of "rollouts" (observation and watch) is ``phones.selectors`` and
``phones.services.rollout_watch``."""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass

from portal.choices import RolloutState
from portal.errors import DomainError
from portal.models import (
    DeviceGroupMember,
    DeviceUpdateRule,
    Rollout,
    RolloutWave,
)
from portal.waves import Reach, WaveTargets, reach_of


@dataclass(frozen=True)
class GoverningRollout:
    """A rollout that decides what its rule's phones are offered, with the phones
    its waves up to the current one take (``reach``)."""

    rollout: Rollout
    reach: Reach
    waves: tuple[WaveTargets, ...]

    @property
    def offering(self) -> bool:
        """Running: new phones of the reach are offered the version; otherwise only
        phones already running it keep it."""
        return self.rollout.state == RolloutState.RUNNING


def rollout_active(*, rule: DeviceUpdateRule) -> Rollout | None:
    """The rule's running, paused or halted rollout (at most one), if any."""
    return rule.rollouts.filter(state__in=RolloutState.active()).first()


def wave_targets_of(rollouts: list[Rollout]) -> dict[int, tuple[WaveTargets, ...]]:
    """Each rollout's waves in order, with the identities of their groups' members."""
    ids = [rollout.pk for rollout in rollouts]
    waves = list(RolloutWave.objects.filter(rollout_id__in=ids).order_by("rollout_id", "position"))
    wave_ids = [wave.pk for wave in waves]
    sites: dict[int, set[int]] = defaultdict(set)
    for wave_id, site_id in RolloutWave.sites.through.objects.filter(
        rolloutwave_id__in=wave_ids
    ).values_list("rolloutwave_id", "site_id"):
        sites[wave_id].add(site_id)
    groups: dict[int, set[int]] = defaultdict(set)
    for wave_id, group_id in RolloutWave.groups.through.objects.filter(
        rolloutwave_id__in=wave_ids
    ).values_list("rolloutwave_id", "devicegroup_id"):
        groups[wave_id].add(group_id)
    members: dict[int, set[str]] = defaultdict(set)
    for member in DeviceGroupMember.objects.filter(
        group_id__in={g for ids_ in groups.values() for g in ids_}
    ):
        members[member.group_id].add(member.identity)
    found: dict[int, list[WaveTargets]] = defaultdict(list)
    for wave in waves:
        found[wave.rollout_id].append(
            WaveTargets(
                percent=wave.percent,
                site_ids=frozenset(sites[wave.pk]),
                identities=frozenset(i for g in groups[wave.pk] for i in members[g]),
            )
        )
    return {rollout_id: tuple(targets) for rollout_id, targets in found.items()}


def rollouts_governing() -> dict[int, GoverningRollout]:
    """By rule id: the active rollout of each rule, or the latest cancelled one while its
    version is still the rule's pending version (who runs it keeps it)."""
    chosen: dict[int, Rollout] = {}
    candidates = Rollout.objects.select_related("rule").filter(
        state__in=[*RolloutState.active(), RolloutState.CANCELLED]
    )
    for rollout in candidates.order_by("rule_id", "created_at", "pk"):
        if rollout.state == RolloutState.CANCELLED and (
            rollout.rule.pending_version != rollout.to_version
        ):
            # Drops an earlier cancelled choice, never the rule's active rollout.
            earlier = chosen.get(rollout.rule_id)
            if earlier is not None and earlier.state not in RolloutState.active():
                del chosen[rollout.rule_id]
            continue
        current = chosen.get(rollout.rule_id)
        if current is None or current.state not in RolloutState.active():
            chosen[rollout.rule_id] = rollout
    targets = wave_targets_of(list(chosen.values()))
    return {
        rule_id: GoverningRollout(
            rollout=rollout,
            reach=reach_of(targets.get(rollout.pk, ())[: rollout.current_wave + 1]),
            waves=targets.get(rollout.pk, ()),
        )
        for rule_id, rollout in chosen.items()
    }


def rollout_by_id(rollout_id: int | str) -> Rollout:
    """The rollout ``#id``; DomainError if none."""
    text = str(rollout_id).strip().lstrip("#")
    if not re.fullmatch(r"[0-9]+", text):
        raise DomainError(f"{rollout_id!r} is not a rollout number", field="rollout")
    rollout = Rollout.objects.select_related("rule__pool").filter(pk=int(text)).first()
    if rollout is None:
        raise DomainError(f"no rollout #{text}", field="rollout", code="not_found")
    return rollout
