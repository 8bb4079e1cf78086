"""Query filters of the API's lists (django-filter): the same questions the control
panel's list filters answer."""

from __future__ import annotations

import django_filters as filters
from django.db.models import QuerySet

from portal.choices import RuleState
from portal.models import AuditEntry, DeviceUpdateRule, TestDevice
from portal.selectors import rules_state_q


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
