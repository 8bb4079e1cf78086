"""Which phones a rollout wave takes: pure functions shared by the decision table, the
observation job and the dashboards, so all three count the same phones.

A percentage wave takes the phones whose bucket (a stable hash of the rule and the
phone's identity, 0 to 9,999) is below percent × 100: the same phones on every server
and every check, and a later, larger wave keeps the phones of the earlier ones.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from portal.models import RolloutWave

BUCKETS = 10_000


def bucket(rule_id: str, identity: str) -> int:
    """The phone's stable bucket for the rule (``rule_id`` as the rule's GUID text)."""
    return zlib.crc32(f"{rule_id}/{identity}".encode()) % BUCKETS


@dataclass(frozen=True)
class Reach:
    """The phones the waves up to the current one take, together: the largest
    percentage so far, and the named sites and device groups (members by identity)."""

    percent: int
    site_ids: frozenset[int]
    identities: frozenset[str]

    def takes(self, *, rule_id: str, identity: str, site_id: int | None) -> bool:
        if site_id is not None and site_id in self.site_ids:
            return True
        if identity in self.identities:
            return True
        return self.percent > 0 and bucket(rule_id, identity) < self.percent * (BUCKETS // 100)


@dataclass(frozen=True)
class WaveTargets:
    percent: int | None
    site_ids: frozenset[int]
    identities: frozenset[str]


def reach_of(waves: Iterable[WaveTargets]) -> Reach:
    """What the given waves take together (pass the waves up to the current one)."""
    percent, sites, identities = 0, set[int](), set[str]()
    for wave in waves:
        percent = max(percent, wave.percent or 0)
        sites |= wave.site_ids
        identities |= wave.identities
    return Reach(percent, frozenset(sites), frozenset(identities))


def first_waves(
    reaches: Sequence[Reach], *, rule_id: str, identities: Iterable[str], site_id: int | None
) -> dict[str, int]:
    """For each phone that one of ``reaches`` takes (``Reach.takes``), the index of the
    first reach that does; phones none takes are left out. For the many phones of one
    rule at one site: each phone's bucket is computed once and looked up in a table of
    the first reach by bucket (the site taking everything from its first reach on)."""
    never = len(reaches)
    first = [never] * BUCKETS
    named: dict[str, int] = {}
    for index in reversed(range(never)):  # the earliest reach writes last
        reach = reaches[index]
        whole = site_id is not None and site_id in reach.site_ids
        limit = BUCKETS if whole else min(max(reach.percent, 0) * (BUCKETS // 100), BUCKETS)
        first[:limit] = [index] * limit
        named.update(dict.fromkeys(reach.identities, index))
    crc32, prefix = zlib.crc32, zlib.crc32(f"{rule_id}/".encode())  # bucket(), continued
    found = {identity: first[crc32(identity.encode(), prefix) % BUCKETS] for identity in identities}
    for identity, index in named.items():
        if index < found.get(identity, index):
            found[identity] = index
    if never in first:  # some buckets no reach takes: leave out their phones
        return {identity: index for identity, index in found.items() if index < never}
    return found


def wave_describe(wave: RolloutWave) -> str:
    """A stored wave as its plan wrote it: ``25 %`` or ``site:Paris, group:Pilot``."""
    if wave.percent is not None:
        return f"{wave.percent} %"
    names = [*(f"site:{s.name}" for s in wave.sites.all())]
    names += [f"group:{g.name}" for g in wave.groups.all()]
    return ", ".join(names)
