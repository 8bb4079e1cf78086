"""What people read: sizes, durations, audit actions and states, said one way."""

from __future__ import annotations

import pytest

from portal.display import (
    AUDIT_ACTION_LABELS,
    action_label,
    format_minutes,
    format_seconds,
    format_size,
    state_badge,
)


@pytest.mark.parametrize(
    ("size", "text"),
    [
        (None, "-"),
        (0, "0 bytes"),
        (1, "1 byte"),
        (1023, "1023 bytes"),
        (1024, "1 KiB"),
        (1536, "1.5 KiB"),
        (123_456_789, "117.7 MiB"),
        (5 * 1024**3, "5 GiB"),
        (3 * 1024**4, "3 TiB"),
        (2048 * 1024**4, "2048 TiB"),
    ],
)
def test_sizes_in_binary_units(size: int | None, text: str) -> None:
    assert format_size(size) == text


@pytest.mark.parametrize(
    ("minutes", "text"),
    [
        (None, "-"),
        (0, "0 minutes"),
        (1, "1 minute"),
        (2, "2 minutes"),
        (60, "1 hour"),
        (90, "1 hour 30 minutes"),
        (121, "2 hours 1 minute"),
        (1440, "1 day"),
        (2880, "2 days"),
        (1441, "1 day 1 minute"),
    ],
)
def test_durations_with_the_right_plural(minutes: int | None, text: str) -> None:
    assert format_minutes(minutes) == text


@pytest.mark.parametrize(
    ("seconds", "text"), [(None, "-"), (1, "1 second"), (59.4, "59 seconds"), (3600, "1 hour")]
)
def test_seconds(seconds: float | None, text: str) -> None:
    assert format_seconds(seconds) == text


@pytest.mark.parametrize(
    ("code", "label"),
    [
        ("portal.rule.approved", "Rule approved"),
        ("portal.rollout.halted", "Rollout halted"),
        ("phones.logs.cleared", "Device logs cleared"),
        ("portal.something_new.happened", "Something new happened"),
        ("odd", "Odd"),
    ],
)
def test_audit_actions_in_words(code: str, label: str) -> None:
    assert action_label(code) == label


def test_every_action_the_code_writes_has_a_label() -> None:
    # The rollout's transitions are written as portal.rollout.<verb>.
    for verb in ("planned", "advanced", "paused", "resumed", "halted", "completed"):
        assert f"portal.rollout.{verb}" in AUDIT_ACTION_LABELS
    assert all(label[:1].isupper() for label in AUDIT_ACTION_LABELS.values())


def test_a_state_is_a_coloured_word_escaped() -> None:
    assert state_badge("halted") == (
        '<span class="state state-bad" data-state="halted">halted</span>'
    )
    assert state_badge("<x>", "a & b") == (
        '<span class="state state-muted" data-state="&lt;x&gt;">a &amp; b</span>'
    )
