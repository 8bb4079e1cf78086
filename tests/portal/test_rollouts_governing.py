"""Which rollout decides what a rule's phones are offered (``rollouts_governing``): the
active one; else the latest cancelled one while its version is still pending; never a
completed or restored one; with the phones its waves up to the current one take."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest

from portal.choices import IdentifierType, RolloutState
from portal.models import DeviceGroup, DeviceGroupMember, DeviceUpdateRule, Rollout, Site
from portal.selectors import GoverningRollout, rollouts_governing
from portal.services.audit import Actor
from portal.services.rollout_plans import WavePlan
from portal.services.rollouts import (
    rollout_advance,
    rollout_cancel,
    rollout_halt,
    rollout_pause,
    rollout_restore,
)
from portal.services.rules import rule_reset, rule_set_pending
from portal.waves import Reach, WaveTargets
from tests.factories import CX600, RolloutFactory, RuleFactory

pytestmark = pytest.mark.django_db

ACTOR = Actor.system("tests")
A, P, Y = "4.0.7577.4387", "4.0.7577.5000", "4.0.7577.6000"
T0 = dt.datetime(2026, 1, 5, 9, 0, tzinfo=dt.UTC)
NOBODY: frozenset[str] = frozenset()
NOWHERE: frozenset[int] = frozenset()


@pytest.fixture
def rule() -> DeviceUpdateRule:
    return RuleFactory.create(
        pending_version=P,
        approved_version=A,
    )


def plan(rule: DeviceUpdateRule, *waves: WavePlan, at: dt.datetime | None = None) -> Rollout:
    waves = waves or (WavePlan(percent=5), WavePlan(percent=100))
    return RolloutFactory.create(rule=rule, waves=waves, actor=ACTOR, now=at)


def import_version(rule: DeviceUpdateRule, version: str) -> None:
    rule_set_pending(pool=rule.pool, rule_id=rule.rule_id, device_class=CX600, version=version,
                     actor=ACTOR)  # fmt: skip


def governing_of(rule: DeviceUpdateRule) -> GoverningRollout | None:
    return rollouts_governing().get(rule.pk)


def test_no_rollout_governs_nothing(rule: DeviceUpdateRule) -> None:
    assert rollouts_governing() == {}


def test_a_running_rollout_governs_with_the_reach_of_its_first_wave(
    rule: DeviceUpdateRule,
) -> None:
    branch = Site.objects.create(name="Branch")
    lab = DeviceGroup.objects.create(name="Lab")
    for kind, identifier in [
        (IdentifierType.MAC_ADDRESS, "0004F2112233"),
        (IdentifierType.SERIAL_NUMBER, "PX1234"),
    ]:
        DeviceGroupMember.objects.create(group=lab, identifier_type=kind, identifier=identifier)
    rollout = plan(
        rule,
        WavePlan(percent=5),
        WavePlan(sites=("Branch",)),
        WavePlan(groups=("Lab",)),
        WavePlan(percent=100),
    )
    waves = (
        WaveTargets(percent=5, site_ids=NOWHERE, identities=NOBODY),
        WaveTargets(percent=None, site_ids=frozenset({branch.pk}), identities=NOBODY),
        WaveTargets(
            percent=None,
            site_ids=NOWHERE,
            identities=frozenset({"MAC:0004F2112233", "SN:PX1234"}),
        ),
        WaveTargets(percent=100, site_ids=NOWHERE, identities=NOBODY),
    )
    assert rollouts_governing() == {
        rule.pk: GoverningRollout(rollout=rollout, reach=Reach(5, NOWHERE, NOBODY), waves=waves)
    }
    governing = rollouts_governing()[rule.pk]
    assert (governing.rollout.state, governing.offering) == ("running", True)

    # The reach grows with each wave, never past the current one.
    expected = [
        Reach(5, frozenset({branch.pk}), NOBODY),
        Reach(5, frozenset({branch.pk}), frozenset({"MAC:0004F2112233", "SN:PX1234"})),
        Reach(100, frozenset({branch.pk}), frozenset({"MAC:0004F2112233", "SN:PX1234"})),
    ]
    for reach in expected:
        rollout = rollout_advance(rollout=rollout, actor=ACTOR)
        governing = rollouts_governing()[rule.pk]
        assert (governing.reach, governing.waves) == (reach, waves)


def test_group_members_are_read_when_asked(rule: DeviceUpdateRule) -> None:
    lab = DeviceGroup.objects.create(name="Lab")
    rollout = plan(rule, WavePlan(groups=("Lab",)), WavePlan(percent=100))
    assert governing_of(rule) == GoverningRollout(
        rollout=rollout,
        reach=Reach(0, NOWHERE, NOBODY),
        waves=(
            WaveTargets(percent=None, site_ids=NOWHERE, identities=NOBODY),
            WaveTargets(percent=100, site_ids=NOWHERE, identities=NOBODY),
        ),
    )
    DeviceGroupMember.objects.create(
        group=lab, identifier_type=IdentifierType.SERIAL_NUMBER, identifier="px-9"
    )
    governing = governing_of(rule)
    assert governing is not None
    assert governing.reach == Reach(0, NOWHERE, frozenset({"SN:PX-9"}))


@pytest.mark.parametrize("state", [RolloutState.PAUSED, RolloutState.HALTED])
def test_a_paused_or_halted_rollout_governs_without_offering(
    rule: DeviceUpdateRule, state: RolloutState
) -> None:
    rollout = plan(rule, WavePlan(percent=5), WavePlan(percent=25), WavePlan(percent=100))
    rollout_advance(rollout=rollout, actor=ACTOR)
    if state == RolloutState.PAUSED:
        rollout_pause(rollout=rollout, actor=ACTOR)
    else:
        rollout_halt(rollout=rollout, actor=ACTOR, reason="failures")
    governing = governing_of(rule)
    assert governing is not None
    assert (governing.rollout.pk, governing.rollout.state, governing.offering) == (
        rollout.pk,
        state,
        False,
    )
    assert governing.reach == Reach(25, NOWHERE, NOBODY)


def test_a_cancelled_rollout_governs_while_its_version_is_pending(
    rule: DeviceUpdateRule,
) -> None:
    rollout = plan(rule)
    rollout_advance(rollout=rollout, actor=ACTOR)
    rollout_cancel(rollout=rollout, actor=ACTOR)
    governing = governing_of(rule)
    assert governing is not None
    assert (governing.rollout.pk, governing.rollout.state, governing.offering) == (
        rollout.pk,
        "cancelled",
        False,
    )
    assert governing.reach == Reach(100, NOWHERE, NOBODY)

    rule_reset(rule=rule, actor=ACTOR)
    assert rollouts_governing() == {}
    import_version(rule, P)  # the same version again: the cancelled rollout is back
    assert governing_of(rule) is not None


def test_a_cancelled_rollout_stops_governing_once_another_version_is_pending(
    rule: DeviceUpdateRule,
) -> None:
    rollout_cancel(rollout=plan(rule), actor=ACTOR)
    import_version(rule, Y)
    assert rollouts_governing() == {}


def test_only_the_latest_cancelled_rollout_governs(rule: DeviceUpdateRule) -> None:
    first = plan(rule)
    rollout_cancel(rollout=first, actor=ACTOR)
    second = plan(rule, WavePlan(percent=50), WavePlan(percent=100))
    rollout_cancel(rollout=second, actor=ACTOR)
    governing = governing_of(rule)
    assert governing is not None
    assert (governing.rollout.pk, governing.reach) == (second.pk, Reach(50, NOWHERE, NOBODY))


def test_an_older_cancelled_rollout_never_comes_back(rule: DeviceUpdateRule) -> None:
    rollout_cancel(rollout=plan(rule), actor=ACTOR)  # of P
    import_version(rule, Y)
    rollout_cancel(rollout=plan(rule), actor=ACTOR)  # of Y, the latest
    import_version(rule, P)  # the first one's version pending again
    assert rollouts_governing() == {}


def test_the_active_rollout_wins_over_a_cancelled_one(rule: DeviceUpdateRule) -> None:
    rollout_cancel(rollout=plan(rule), actor=ACTOR)
    active = plan(rule, WavePlan(percent=20), WavePlan(percent=100))
    governing = governing_of(rule)
    assert governing is not None
    assert (governing.rollout.pk, governing.offering) == (active.pk, True)
    rollout_pause(rollout=active, actor=ACTOR)
    governing = governing_of(rule)
    assert governing is not None
    assert (governing.rollout.pk, governing.offering) == (active.pk, False)


def test_the_active_rollout_wins_whatever_the_order_of_creation(
    rule: DeviceUpdateRule,
) -> None:
    # A cancelled rollout recorded as created after the active one (a plan given an
    # earlier ``now``, or servers whose clocks differ).
    rollout_cancel(rollout=plan(rule, at=T0 + dt.timedelta(hours=1)), actor=ACTOR)  # of P
    import_version(rule, Y)
    active = plan(rule, at=T0)
    governing = governing_of(rule)
    assert governing is not None
    assert governing.rollout.pk == active.pk


@pytest.mark.parametrize("end", ["completed", "restored"])
def test_a_completed_or_restored_rollout_never_governs(rule: DeviceUpdateRule, end: str) -> None:
    rollout = plan(rule)
    if end == "completed":
        rollout_advance(rollout=rollout, actor=ACTOR)
        rollout_advance(rollout=rollout, actor=ACTOR)
    else:
        rollout_restore(rollout=rollout, actor=ACTOR)
    assert Rollout.objects.get().state == end
    assert rollouts_governing() == {}
    import_version(rule, P if end == "restored" else Y)  # even with its version pending
    assert rollouts_governing() == {}


def test_each_rule_has_its_own_governing_rollout(rule: DeviceUpdateRule) -> None:
    other = DeviceUpdateRule.objects.create(
        pool=rule.pool,
        rule_id=uuid.uuid4(),
        pending_version=Y,
        **{**vars(CX600), "model": "CX700"},
    )
    mine = plan(rule)
    theirs = plan(other, WavePlan(percent=30))
    rollout_cancel(rollout=theirs, actor=ACTOR)
    found = rollouts_governing()
    assert {rule_pk: g.rollout.pk for rule_pk, g in found.items()} == {
        rule.pk: mine.pk,
        other.pk: theirs.pk,
    }
    assert found[other.pk].reach == Reach(30, NOWHERE, NOBODY)
