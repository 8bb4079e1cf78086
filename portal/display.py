"""How the control panel, its e-mails and its CSV say things to people: sizes in
KiB/MiB/GiB, durations in minutes/hours/days with the right plural, audit actions in
words, and states as a coloured word. One home, so every page says it the same way.
"""

from __future__ import annotations

from django.utils.html import format_html
from django.utils.safestring import SafeString

_SIZE_UNITS = ("KiB", "MiB", "GiB", "TiB")


def format_size(size: int | None) -> str:
    """``1536`` → ``1.5 KiB``; bytes below 1 KiB as ``1 byte``/``512 bytes``."""
    if size is None:
        return "-"
    if abs(size) < 1024:
        return f"{size} byte" if size == 1 else f"{size} bytes"
    value = float(size) / 1024
    index = 0
    while abs(value) >= 1024 and index < len(_SIZE_UNITS) - 1:
        value /= 1024
        index += 1
    text = f"{value:.1f}".removesuffix(".0")
    return f"{text} {_SIZE_UNITS[index]}"


def _count(number: int, word: str) -> str:
    return f"{number} {word}" if number == 1 else f"{number} {word}s"


def format_minutes(minutes: int | None) -> str:
    """``1`` → ``1 minute``, ``90`` → ``1 hour 30 minutes``, ``2880`` → ``2 days``."""
    if minutes is None:
        return "-"
    days, rest = divmod(minutes, 24 * 60)
    hours, mins = divmod(rest, 60)
    parts = [
        _count(number, word)
        for number, word in ((days, "day"), (hours, "hour"), (mins, "minute"))
        if number
    ]
    return " ".join(parts) if parts else "0 minutes"


def format_seconds(seconds: float | None) -> str:
    """A duration in seconds: below a minute in seconds, else as ``format_minutes``."""
    if seconds is None:
        return "-"
    whole = round(seconds)
    if whole < 60:
        return _count(whole, "second")
    return format_minutes(whole // 60)


# The audit trail's actions in words. The dotted codes stay in the database, the API
# and the CSV's code column; everything people read goes through ``action_label``.
AUDIT_ACTION_LABELS: dict[str, str] = {
    "portal.rule.approved": "Rule approved",
    "portal.rule.created": "Rule created",
    "portal.rule.imported": "Rule's pending version imported",
    "portal.rule.removed": "Rule removed",
    "portal.rule.reset": "Rule's pending version cancelled",
    "portal.rule.restored": "Rule restored",
    "portal.rollout.planned": "Rollout planned",
    "portal.rollout.advanced": "Rollout advanced",
    "portal.rollout.paused": "Rollout paused",
    "portal.rollout.resumed": "Rollout resumed",
    "portal.rollout.halted": "Rollout halted",
    "portal.rollout.completed": "Rollout completed",
    "portal.rollout.cancelled": "Rollout cancelled",
    "portal.rollout.restored": "Rollout restored",
    "portal.package.imported": "Package imported",
    "portal.test_device.created": "Test device added",
    "portal.test_device.changed": "Test device changed",
    "portal.test_device.removed": "Test device removed",
    "portal.log_config.created": "Log settings created",
    "portal.log_config.changed": "Log settings changed",
    "portal.log_config.reset": "Log settings reset",
    "portal.publisher.added": "Trusted publisher added",
    "portal.publisher.removed": "Trusted publisher removed",
    "portal.site.created": "Site added",
    "portal.site.changed": "Site changed",
    "portal.site.deleted": "Site removed",
    "portal.pool.created": "Pool added",
    "portal.pool.changed": "Pool changed",
    "portal.pool.deleted": "Pool removed",
    "portal.pool.unused_files_cleared": "Pool's unused files cleared",
    "portal.server.created": "Server added",
    "portal.server.changed": "Server changed",
    "portal.server.deleted": "Server removed",
    "portal.server.resync_requested": "Server re-sync requested",
    "portal.device.held": "Phone held",
    "portal.device.pinned": "Phone pinned to a version",
    "portal.device.released": "Phone released",
    "portal.device_group.created": "Device group created",
    "portal.device_group.changed": "Device group changed",
    "portal.device_group.deleted": "Device group removed",
    "portal.maintenance_window.created": "Maintenance window added",
    "portal.maintenance_window.deleted": "Maintenance window removed",
    "portal.webhook.registered": "Webhook registered",
    "portal.webhook.changed": "Webhook changed",
    "portal.webhook.disabled": "Webhook disabled",
    "portal.webhook.removed": "Webhook removed",
    "portal.signin.locked_out": "Sign-in locked out",
    "portal.signin.lockout_lifted": "Sign-in lockout lifted",
    "portal.directory.roles_changed": "Directory roles changed",
    "portal.directory.ldap_error": "Directory unreachable",
    "phones.logs.cleared": "Device logs cleared",
    "phones.record.quarantined": "Phone record quarantined",
}


def action_label(code: str) -> str:
    """``portal.rollout.halted`` → ``Rollout halted``; an unlisted code is said from
    its last two parts (``portal.foo_bar.done`` → ``Foo bar done``)."""
    label = AUDIT_ACTION_LABELS.get(code)
    if label is not None:
        return label
    parts = code.split(".")
    words = " ".join(parts[-2:] if len(parts) >= 2 else parts).replace("_", " ").strip()
    return words[:1].upper() + words[1:] if words else code


# A state's tone: the colour it is shown in (portal/admin.css ``.state-<tone>``).
_STATE_TONES: dict[str, str] = {
    # rules
    "pending": "info",
    "pending+approved": "info",
    "approved": "ok",
    "restored": "warn",
    "not used": "muted",
    # rollouts
    "running": "info",
    "paused": "warn",
    "halted": "bad",
    "completed": "ok",
    "cancelled": "muted",
    # imports and jobs
    "queued": "muted",
    "unpacking": "info",
    "verifying": "info",
    "storing": "info",
    "succeeded": "ok",
    "done": "ok",
    "failed": "bad",
    "refused": "bad",
}


def state_tone(state: str) -> str:
    return _STATE_TONES.get(state, "muted")


def state_badge(state: str, label: str | None = None) -> SafeString:
    """A state as a coloured word: the colour for a glance, the word for everyone."""
    return format_html(
        '<span class="state state-{}" data-state="{}">{}</span>',
        state_tone(state),
        state,
        label if label is not None else state,
    )
