"""What the API reads and writes of the fleet: holds and pins, device groups,
maintenance windows."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from portal.api.serializers.rules import RuleReferenceField
from portal.choices import (
    DeviceControlKind,
    Weekday,
)
from portal.models import (
    DeviceControl,
    MaintenanceWindow,
)

# --- Per-phone holds and pins -------------------------------------------------------


class DeviceControlSerializer(serializers.ModelSerializer[DeviceControl]):
    rule = serializers.CharField(source="rule.identity", read_only=True)
    device_class = serializers.CharField(source="rule.device_class", read_only=True)
    kind = serializers.ChoiceField(choices=DeviceControlKind.choices, read_only=True)

    class Meta:
        model = DeviceControl
        fields = ["id", "identity", "rule", "device_class", "kind", "version", "actor_name",
                  "created_at"]  # fmt: skip
        read_only_fields = fields


class DeviceControlRequestSerializer(serializers.Serializer[Any]):
    """Hold a phone for a rule, or pin it to one of the rule's versions (replacing
    what it had for that rule)."""

    identity = serializers.CharField(help_text="MAC:<hex>, SN:<serial>, a MAC or a serial")
    rule = RuleReferenceField(help_text="the rule's id or identity")
    kind = serializers.ChoiceField(choices=DeviceControlKind.choices)
    version = serializers.CharField(
        required=False, allow_blank=True, default="", help_text="for a pin: a version of the rule"
    )

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if attrs["kind"] == DeviceControlKind.PIN and not attrs["version"].strip():
            raise serializers.ValidationError({"version": ["a pin needs a version"]})
        if attrs["kind"] == DeviceControlKind.HOLD and attrs["version"].strip():
            raise serializers.ValidationError(
                {"version": ["a hold takes no version (pin the phone to one instead)"]}
            )
        return attrs


# --- Device groups ------------------------------------------------------------------


class GroupMembersField(serializers.ListField):
    """In: MACs in any form, serial numbers, ``MAC:…`` or ``SN:…``; out: the phones'
    inventory identities, sorted."""

    def to_representation(self, data: Any) -> list[str]:
        return sorted(member.identity for member in data.all())


class DeviceGroupSerializer(serializers.Serializer[Any]):
    id = serializers.IntegerField(read_only=True)
    name = serializers.CharField(help_text="unique, any case")
    description = serializers.CharField(required=False, allow_blank=True, default="")
    members = GroupMembersField(
        child=serializers.CharField(allow_blank=True), required=False, default=list
    )
    created_at = serializers.DateTimeField(read_only=True)


# --- Maintenance windows ------------------------------------------------------------


@extend_schema_field({"oneOf": [{"type": "integer", "minimum": 0, "maximum": 6},
                                {"type": "string"}]})  # fmt: skip
class WeekdayField(serializers.Field[int, Any, int, Any]):
    """0 (Monday) to 6 (Sunday), or the day's English name; shown as the number."""

    def to_internal_value(self, data: Any) -> int:
        if isinstance(data, bool):
            raise serializers.ValidationError("a weekday is 0 (Monday) to 6 (Sunday) or its name")
        if isinstance(data, int):
            return data  # the service says when it is not 0 to 6
        text = str(data).strip()
        if text.lstrip("-").isdigit():
            return int(text)
        for day in Weekday:
            if day.label.lower() == text.lower():
                return day.value
        raise serializers.ValidationError(
            f"{text!r} is not a weekday (0 Monday to 6 Sunday, or its English name)"
        )

    def to_representation(self, value: int) -> int:
        return int(value)


class MaintenanceWindowSerializer(serializers.ModelSerializer[MaintenanceWindow]):
    site = serializers.CharField(source="site.name", help_text="the site's name")
    time_zone = serializers.CharField(
        source="site.time_zone", read_only=True, help_text="the site's; start and end are in it"
    )
    weekday = WeekdayField()
    weekday_name = serializers.CharField(source="get_weekday_display", read_only=True)

    class Meta:
        model = MaintenanceWindow
        fields = ["id", "site", "time_zone", "weekday", "weekday_name", "start", "end"]
        read_only_fields = ["id"]
