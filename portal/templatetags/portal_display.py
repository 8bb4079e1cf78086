"""Template filters over ``portal.display``: ``{{ n|minutes }}``, ``{{ n|size }}``,
``{{ state|state_badge }}``, ``{{ code|action_label }}``."""

from __future__ import annotations

from django import template
from django.utils.safestring import SafeString

from portal import display

register = template.Library()


@register.filter
def minutes(value: int | None) -> str:
    return display.format_minutes(value)


@register.filter
def size(value: int | None) -> str:
    return display.format_size(value)


@register.filter
def state_badge(value: str) -> SafeString:
    return display.state_badge(str(value))


@register.filter
def action_label(value: str) -> str:
    return display.action_label(str(value))


@register.filter
def state_tone(value: str) -> str:
    return display.state_tone(str(value))
