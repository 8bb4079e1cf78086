"""Fixtures of the control-panel tests: a pool of their own, rules in any state."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import pytest
from django.contrib.messages import get_messages

from portal.device_class import RuleClass
from portal.models import DeviceUpdateRule, Pool, Site
from tests.factories import CX600, RULE_A, RuleFactory


@pytest.fixture
def pool01(db: None) -> Pool:
    return Pool.objects.create(
        site=Site.objects.get(name="Default"),
        fqdn="pool01.example.org",
        internal_web_fqdn="pool01.example.org",
    )


MakeRule = Callable[..., DeviceUpdateRule]


@pytest.fixture
def make_rule(pool01: Pool) -> MakeRule:
    """A rule of ``pool01`` with the given (P, A, R) versions, made directly."""

    def make(
        *,
        pending: str = "",
        approved: str = "",
        restore: str = "",
        restored: bool = False,
        device_class: RuleClass = CX600,
        rule_id: uuid.UUID = RULE_A,
    ) -> DeviceUpdateRule:
        return RuleFactory.create(
            pool=pool01,
            rule_id=rule_id,
            pending_version=pending,
            approved_version=approved,
            restore_version=restore,
            restored=restored,
            device_class=device_class,
        )

    return make


def messages_of(response: Any) -> list[tuple[str, str]]:
    """The (level, text) messages the response left for the next page."""
    request = getattr(response, "wsgi_request")  # noqa: B009 - set by the test client
    return [(message.level_tag, message.message) for message in get_messages(request)]


@pytest.fixture
def read_messages() -> Callable[[Any], list[tuple[str, str]]]:
    return messages_of
