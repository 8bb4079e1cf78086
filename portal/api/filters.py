"""Query filters of the API's lists (django-filter): the same questions the control
panel's list filters answer."""

from __future__ import annotations

import django_filters as filters
from django.db.models import QuerySet

from portal.choices import DeviceControlKind, RolloutState, RuleState, Weekday
from portal.errors import DomainError
from portal.models import (
    AuditEntry,
    DeviceControl,
    DeviceGroup,
    DeviceUpdateRule,
    MaintenanceWindow,
    Rollout,
    TestDevice,
)
from portal.selectors import device_identity_parse, rule_by_identity, rules_state_q


class RuleFilter(filters.FilterSet):
    pool = filters.CharFilter(
        field_name="pool__fqdn", lookup_expr="iexact", label="pool FQDN (any case)"
    )
    device_type = filters.CharFilter(lookup_expr="iexact")
    brand = filters.CharFilter(lookup_expr="iexact")
    model = filters.CharFilter(lookup_expr="iexact")
    update_type = filters.CharFilter(lookup_expr="iexact")
    state = filters.ChoiceFilter(choices=RuleState.choices, method="filter_state")

    class Meta:
        model = DeviceUpdateRule
        fields = ["pool", "device_type", "brand", "model", "update_type", "state"]

    def filter_state(
        self, queryset: QuerySet[DeviceUpdateRule], name: str, value: str
    ) -> QuerySet[DeviceUpdateRule]:
        return queryset.filter(rules_state_q(RuleState(value)))


class TestDeviceFilter(filters.FilterSet):
    __test__ = False  # not a pytest test class, whatever its name says

    scope = filters.CharFilter(method="filter_scope", label="global or site:<name>")
    identifier_type = filters.CharFilter()

    class Meta:
        model = TestDevice
        fields = ["scope", "identifier_type"]

    def filter_scope(
        self, queryset: QuerySet[TestDevice], name: str, value: str
    ) -> QuerySet[TestDevice]:
        text = value.strip()
        if text.lower() == "global":
            return queryset.filter(site__isnull=True)
        if text.lower().startswith("site:"):
            text = text[5:].strip()
        return queryset.filter(site__name__iexact=text)


class AuditFilter(filters.FilterSet):
    actor_name = filters.CharFilter(lookup_expr="iexact")
    created_at = filters.IsoDateTimeFromToRangeFilter(
        label="created_at_after / created_at_before (ISO 8601, inclusive)"
    )

    class Meta:
        model = AuditEntry
        fields = ["action", "object_type", "object_id", "actor_name", "created_at"]


def _rule_or_none(identity: str) -> DeviceUpdateRule | None:
    """The rule an identity names; None when there is no such rule (an empty list), a
    refusal when the text is not a rule identity."""
    try:
        return rule_by_identity(identity.strip())
    except DomainError as error:
        if error.code == "not_found":
            return None
        raise DomainError(error.message, field="rule") from None


class RolloutFilter(filters.FilterSet):
    state = filters.ChoiceFilter(choices=RolloutState.choices)
    rule = filters.CharFilter(method="filter_rule", label="rule identity")

    class Meta:
        model = Rollout
        fields = ["state", "rule"]

    def filter_rule(self, queryset: QuerySet[Rollout], name: str, value: str) -> QuerySet[Rollout]:
        rule = _rule_or_none(value)
        return queryset.none() if rule is None else queryset.filter(rule=rule)


class DeviceControlFilter(filters.FilterSet):
    identity = filters.CharFilter(method="filter_identity", label="MAC:…, SN:…, a MAC or a serial")
    rule = filters.CharFilter(method="filter_rule", label="rule identity")
    kind = filters.ChoiceFilter(choices=DeviceControlKind.choices)

    class Meta:
        model = DeviceControl
        fields = ["identity", "rule", "kind"]

    def filter_identity(
        self, queryset: QuerySet[DeviceControl], name: str, value: str
    ) -> QuerySet[DeviceControl]:
        identity, _, _ = device_identity_parse(value)
        return queryset.filter(identity=identity)

    def filter_rule(
        self, queryset: QuerySet[DeviceControl], name: str, value: str
    ) -> QuerySet[DeviceControl]:
        rule = _rule_or_none(value)
        return queryset.none() if rule is None else queryset.filter(rule=rule)


class DeviceGroupFilter(filters.FilterSet):
    name = filters.CharFilter(lookup_expr="iexact")
    member = filters.CharFilter(
        method="filter_member", label="groups holding this phone (MAC:…, SN:…, a MAC or a serial)"
    )

    class Meta:
        model = DeviceGroup
        fields = ["name", "member"]

    def filter_member(
        self, queryset: QuerySet[DeviceGroup], name: str, value: str
    ) -> QuerySet[DeviceGroup]:
        _, kind, identifier = device_identity_parse(value)
        return queryset.filter(
            members__identifier_type=kind, members__identifier=identifier
        ).distinct()


class MaintenanceWindowFilter(filters.FilterSet):
    site = filters.CharFilter(field_name="site__name", lookup_expr="iexact", label="site name")
    weekday = filters.ChoiceFilter(choices=Weekday.choices)

    class Meta:
        model = MaintenanceWindow
        fields = ["site", "weekday"]
