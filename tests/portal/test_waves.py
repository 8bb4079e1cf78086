"""Which phones a wave takes: the stable bucket, ``Reach.takes`` on its exact
boundaries, and what several waves take together."""

from __future__ import annotations

import pytest

from portal.waves import BUCKETS, Reach, WaveTargets, bucket, first_waves, reach_of

RULE = "2de8cbf6-8a1e-4bc0-9d9e-0b2b5a1c1f11"
OTHER_RULE = "00000000-0000-0000-0000-000000000000"
FLEET = [f"MAC:0004F2{n:06X}" for n in range(10_000)]
# A phone with each bucket that matters for RULE (found once, pinned here).
WITH_BUCKET = {
    0: "MAC:0004F2000791",
    1: "MAC:0004F20008A9",
    99: "MAC:0004F20034A2",
    100: "MAC:0004F200183B",
    2499: "MAC:0004F20079E2",
    2500: "MAC:0004F2005D0B",
    9999: "MAC:0004F200000D",
}
NOBODY: frozenset[str] = frozenset()
NOWHERE: frozenset[int] = frozenset()


def reach(percent: int, sites: set[int] | None = None, identities: set[str] | None = None) -> Reach:
    return Reach(percent, frozenset(sites or ()), frozenset(identities or ()))


@pytest.mark.parametrize(
    ("rule_id", "identity", "expected"),
    [
        (RULE, "MAC:0004F2112233", 3379),
        (RULE, "SN:PX1234", 2727),
        (RULE, "MAC:0004F2000001", 1436),
        (OTHER_RULE, "MAC:0004F2112233", 9683),
        (OTHER_RULE, "SN:PX1234", 8027),
        (OTHER_RULE, "MAC:0004F2000001", 540),
        # The identity as the inventory spells it: another spelling is another phone.
        (RULE, "MAC:0004f2112233", 4997),
        ("", "MAC:0004F2112233", 724),
        (RULE, "", 8526),
    ],
)
def test_bucket_is_a_pinned_stable_value(rule_id: str, identity: str, expected: int) -> None:
    assert bucket(rule_id, identity) == expected
    assert bucket(rule_id, identity) == expected  # the same on every call


def test_pinned_phones_have_their_buckets() -> None:
    assert {bucket(RULE, identity): identity for identity in WITH_BUCKET.values()} == WITH_BUCKET


def test_buckets_are_in_range_and_spread_evenly() -> None:
    buckets = [bucket(RULE, identity) for identity in FLEET]
    assert (min(buckets), max(buckets), BUCKETS) == (0, 9999, 10_000)
    assert sum(b < 2500 for b in buckets) == 2486  # about a quarter
    assert sum(b < 500 for b in buckets) == 511  # about 5 %


def test_bucket_depends_on_the_rule_and_the_identity() -> None:
    for_rule = [bucket(RULE, identity) for identity in FLEET[:1000]]
    for_other = [bucket(OTHER_RULE, identity) for identity in FLEET[:1000]]
    assert sum(a == b for a, b in zip(for_rule, for_other, strict=True)) < 5
    assert len(set(for_rule)) > 900  # different phones, different buckets


@pytest.mark.parametrize(
    ("percent", "phone_bucket", "taken"),
    [
        (0, 0, False),  # 0 % takes nobody, not even bucket 0
        (1, 0, True),
        (1, 99, True),
        (1, 100, False),  # bucket == percent × 100 is out
        (25, 2499, True),
        (25, 2500, False),
        (26, 2500, True),
        (99, 9999, False),
        (100, 9999, True),
        (100, 0, True),
    ],
)
def test_a_percentage_takes_the_buckets_below_percent_times_100(
    percent: int, phone_bucket: int, taken: bool
) -> None:
    identity = WITH_BUCKET[phone_bucket]
    assert reach(percent).takes(rule_id=RULE, identity=identity, site_id=None) is taken
    assert reach(percent).takes(rule_id=RULE, identity=identity, site_id=7) is taken


def test_zero_takes_nobody_and_100_takes_everybody() -> None:
    assert not any(reach(0).takes(rule_id=RULE, identity=i, site_id=None) for i in FLEET)
    assert all(reach(100).takes(rule_id=RULE, identity=i, site_id=None) for i in FLEET)
    assert sum(reach(25).takes(rule_id=RULE, identity=i, site_id=None) for i in FLEET) == 2486


def test_a_larger_percentage_keeps_the_phones_of_a_smaller_one() -> None:
    for small, large in [(1, 5), (5, 25), (25, 100)]:
        kept = {i for i in FLEET if reach(small).takes(rule_id=RULE, identity=i, site_id=None)}
        grown = {i for i in FLEET if reach(large).takes(rule_id=RULE, identity=i, site_id=None)}
        assert kept < grown


def test_a_site_takes_every_phone_of_the_site_only() -> None:
    out = WITH_BUCKET[9999]
    site_wave = reach(0, sites={3, 4})
    assert site_wave.takes(rule_id=RULE, identity=out, site_id=3) is True
    assert site_wave.takes(rule_id=RULE, identity=out, site_id=4) is True
    assert site_wave.takes(rule_id=RULE, identity=out, site_id=5) is False
    assert site_wave.takes(rule_id=RULE, identity=out, site_id=None) is False
    # Another site's phones still go by the percentage.
    assert reach(25, sites={3}).takes(rule_id=RULE, identity=WITH_BUCKET[2499], site_id=5)
    assert not reach(25, sites={3}).takes(rule_id=RULE, identity=WITH_BUCKET[2500], site_id=5)


def test_named_identities_are_taken_wherever_they_are() -> None:
    named = reach(0, identities={"MAC:0004F2112233", "SN:PX1234"})
    for site_id in (None, 1, 2):
        assert named.takes(rule_id=RULE, identity="SN:PX1234", site_id=site_id) is True
        assert named.takes(rule_id=RULE, identity="MAC:0004F2112233", site_id=site_id) is True
        assert named.takes(rule_id=RULE, identity="SN:PX9999", site_id=site_id) is False
    # Exactly the inventory's spelling.
    assert named.takes(rule_id=RULE, identity="sn:px1234", site_id=None) is False


def test_reach_of_no_wave_takes_nobody() -> None:
    assert reach_of([]) == Reach(0, NOWHERE, NOBODY)


def test_reach_of_waves_is_their_union_with_the_largest_percentage() -> None:
    waves = [
        WaveTargets(percent=5, site_ids=NOWHERE, identities=NOBODY),
        WaveTargets(percent=None, site_ids=frozenset({2}), identities=NOBODY),
        WaveTargets(percent=None, site_ids=frozenset({3}), identities=frozenset({"SN:A"})),
        WaveTargets(percent=25, site_ids=NOWHERE, identities=NOBODY),
        WaveTargets(percent=None, site_ids=frozenset({2}), identities=frozenset({"SN:A", "SN:B"})),
    ]
    assert reach_of(waves) == Reach(25, frozenset({2, 3}), frozenset({"SN:A", "SN:B"}))
    assert reach_of(waves[:1]) == Reach(5, NOWHERE, NOBODY)
    assert reach_of(waves[:3]) == Reach(5, frozenset({2, 3}), frozenset({"SN:A"}))
    assert reach_of(waves[1:3]) == Reach(0, frozenset({2, 3}), frozenset({"SN:A"}))


def test_reach_of_keeps_the_largest_percentage_whatever_the_order() -> None:
    waves = [
        WaveTargets(percent=50, site_ids=NOWHERE, identities=NOBODY),
        WaveTargets(percent=10, site_ids=NOWHERE, identities=NOBODY),
    ]
    assert reach_of(waves).percent == 50


@pytest.mark.parametrize("site_id", [None, 1, 2])
def test_first_waves_agrees_with_takes_for_every_phone(site_id: int | None) -> None:
    named = {FLEET[0], FLEET[1], "SN:LAB-7"}
    waves = [
        WaveTargets(percent=5, site_ids=NOWHERE, identities=NOBODY),
        WaveTargets(percent=None, site_ids=NOWHERE, identities=frozenset(named)),
        WaveTargets(percent=None, site_ids=frozenset({1}), identities=NOBODY),
        WaveTargets(percent=50, site_ids=NOWHERE, identities=NOBODY),
    ]
    assert bucket(RULE, "SN:LAB-7") == 6337  # beyond 5 %: only its group takes it early
    reaches = [reach_of(waves[: index + 1]) for index in range(len(waves))]
    phones = [*FLEET[:3000], "SN:LAB-7"]
    expected = {}
    for identity in phones:
        for index, wave_reach in enumerate(reaches):
            if wave_reach.takes(rule_id=RULE, identity=identity, site_id=site_id):
                expected[identity] = index
                break
    found = first_waves(reaches, rule_id=RULE, identities=phones, site_id=site_id)
    assert found == expected
    assert found["SN:LAB-7"] == 1
    if site_id == 1:
        assert len(found) == len(phones)  # the site wave takes everybody left
    else:
        assert len(found) < len(phones)
