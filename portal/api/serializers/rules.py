"""What the API reads and writes of the rules."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from portal.choices import (
    RuleAction,
    RuleState,
)
from portal.models import (
    DeviceUpdateRule,
)

# --- Rules --------------------------------------------------------------------------


class RuleSerializer(serializers.ModelSerializer[DeviceUpdateRule]):
    identity = serializers.CharField(read_only=True, help_text="service:WebServer:<pool>/<Id>")
    pool = serializers.CharField(source="pool.fqdn", read_only=True, help_text="pool FQDN")
    state = serializers.ChoiceField(choices=RuleState.choices, read_only=True)

    class Meta:
        model = DeviceUpdateRule
        fields = [
            "id",
            "identity",
            "pool",
            "rule_id",
            "device_type",
            "brand",
            "model",
            "revision",
            "locale",
            "update_type",
            "pending_version",
            "approved_version",
            "restore_version",
            "state",
        ]
        read_only_fields = fields


@extend_schema_field({"oneOf": [{"type": "integer"}, {"type": "string"}]})
class RuleReferenceField(serializers.CharField):
    """A rule's ``id`` or its identity (``service:WebServer:<pool FQDN>/<rule Id>``)."""


class RuleBulkActionSerializer(serializers.Serializer[Any]):
    action = serializers.ChoiceField(choices=RuleAction.choices)
    rules = serializers.ListField(child=RuleReferenceField(), allow_empty=False, max_length=1000)


class RuleOutcomeSerializer(serializers.Serializer[Any]):
    identity = serializers.CharField()
    ok = serializers.BooleanField()
    message = serializers.CharField()


class RuleBulkResultSerializer(serializers.Serializer[Any]):
    action = serializers.ChoiceField(choices=RuleAction.choices)
    outcomes = RuleOutcomeSerializer(many=True)
