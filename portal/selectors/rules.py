"""Reads of rules: lists, states, a rule by its identity and the versions it has had."""

from __future__ import annotations

import uuid

from django.db.models import Q, QuerySet
from django.db.models.functions import Lower

from portal.choices import RuleState
from portal.device_class import RuleClass
from portal.errors import DomainError
from portal.models import (
    DeviceUpdateRule,
    UpdateVersion,
)


def rules_list(
    *,
    pool_fqdn: str | None = None,
    brand: str | None = None,
    model: str | None = None,
    state: str | None = None,
) -> QuerySet[DeviceUpdateRule]:
    """Rules filtered as the Device Update list and `device_update_rules list` do."""
    rules = DeviceUpdateRule.objects.select_related("pool")
    if pool_fqdn:
        rules = rules.filter(pool__fqdn__iexact=pool_fqdn)
    if brand:
        rules = rules.filter(brand__iexact=brand)
    if model:
        rules = rules.filter(model__iexact=model)
    if state:
        rules = rules.filter(rules_state_q(RuleState(state)))
    return rules


def rules_state_q(state: RuleState) -> Q:
    """The state of the rule list, as a database condition (mirrors ``rule.state``)."""
    pending = ~Q(pending_version="")
    approved = ~Q(approved_version="")
    return {
        RuleState.PENDING: pending & ~approved,
        RuleState.PENDING_APPROVED: pending & approved,
        RuleState.APPROVED: ~pending & approved & Q(restored=False),
        RuleState.RESTORED: ~pending & approved & Q(restored=True),
        RuleState.NOT_USED: ~pending & ~approved,
    }[state]


def rule_by_identity(identity: str) -> DeviceUpdateRule:
    """The rule named ``service:WebServer:<pool FQDN>/<rule Id>``; DomainError if none."""
    prefix = "service:WebServer:"
    pool_fqdn, _, rule_id = identity.removeprefix(prefix).partition("/")
    if not identity.startswith(prefix) or not pool_fqdn or not rule_id:
        raise DomainError(
            f"{identity!r} is not a rule identity (service:WebServer:<pool FQDN>/<rule Id>)",
            field="identity",
        )
    try:
        parsed = uuid.UUID(rule_id)
    except ValueError:
        raise DomainError(f"{rule_id!r} is not a GUID", field="identity") from None
    rule = (
        DeviceUpdateRule.objects.select_related("pool")
        .annotate(pool_fqdn_lower=Lower("pool__fqdn"))
        .filter(pool_fqdn_lower=pool_fqdn.lower(), rule_id=parsed)
        .first()
    )
    if rule is None:
        raise DomainError(f"no rule {identity}", field="identity", code="not_found")
    return rule


def rule_versions(rule: DeviceUpdateRule) -> set[str]:
    """Every version the rule has had: stored for its class, or named by the rule."""
    stored = UpdateVersion.objects.filter(RuleClass.of(rule).q()).values_list("version", flat=True)
    named = (rule.pending_version, rule.approved_version, rule.restore_version)
    return {version for version in (*stored, *named) if version}
