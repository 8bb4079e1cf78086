"""What the API reads and writes of staged rollouts (plan and state)."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from portal.api.serializers.rules import RuleReferenceField
from portal.choices import (
    RolloutState,
)
from portal.models import (
    DeviceGroup,
    Rollout,
    RolloutWave,
    Site,
)
from portal.services.rollout_plans import MAX_COUNT, plan_summary
from portal.waves import wave_describe

# --- Rollouts -----------------------------------------------------------------------


# A component of its own: rules, rollouts and observed outcomes all have a "state".
@extend_schema_field(
    {"type": "string", "enum": RolloutState.values}, component_name="RolloutStateEnum"
)
class RolloutStateField(serializers.ChoiceField):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(choices=RolloutState.choices, **kwargs)


@extend_schema_field({"oneOf": [{"type": "integer"}, {"type": "string"}]})
class WaveField(serializers.CharField):
    """A wave: ``25`` (a cumulative percentage of the rule's phones), or named sites
    and device groups, ``site:NAME,group:NAME``."""


def _count(**kwargs: Any) -> serializers.IntegerField:
    # No lower bound here: the service refuses out-of-range gates with its own message.
    return serializers.IntegerField(required=False, max_value=MAX_COUNT, **kwargs)


class RolloutPlanSerializer(serializers.Serializer[Any]):
    """A rollout plan; gates left out take the plan's defaults."""

    rule = RuleReferenceField(help_text="the rule's id or identity; it needs a pending version")
    waves = serializers.ListField(
        child=WaveField(),
        help_text='in order, e.g. [5, 25, "site:Redmond", "group:pilot", 100]',
    )
    min_soak_minutes = _count(help_text="minutes a wave runs before it may pass (default 60)")
    success_percent = _count(
        help_text="a wave passes when at least this % of its phones run the version (default 95)"
    )
    failure_percent = _count(
        help_text="halt when more than this % of a wave's observed phones failed (default 5)"
    )
    failure_max_phones = _count(
        allow_null=True, help_text="halt when more phones than this failed; null: no limit"
    )
    min_sample = _count(
        help_text="observed phones a wave needs before the failure gate applies (default 10)"
    )
    silence_minutes = _count(
        help_text="a phone silent this long after an offer counts as failed (default 2880)"
    )
    automatic_advance = serializers.BooleanField(
        required=False, help_text="advance when a wave passes (default true)"
    )
    automatic_halt = serializers.BooleanField(
        required=False, help_text="halt when the failure gate trips (default true)"
    )


class RolloutActionSerializer(serializers.Serializer[Any]):
    reason = serializers.CharField(
        required=False, max_length=400, help_text="recorded in the audit trail"
    )


class RolloutPlanSummarySerializer(serializers.Serializer[Any]):
    waves = serializers.ListField(child=serializers.CharField())
    min_soak_minutes = serializers.IntegerField()
    success_percent = serializers.IntegerField()
    failure_percent = serializers.IntegerField()
    failure_max_phones = serializers.IntegerField(allow_null=True)
    min_sample = serializers.IntegerField()
    silence_minutes = serializers.IntegerField()
    automatic_advance = serializers.BooleanField()
    automatic_halt = serializers.BooleanField()


class RolloutWaveSerializer(serializers.ModelSerializer[RolloutWave]):
    number = serializers.SerializerMethodField(help_text="1 for the first wave")
    # A declared field, popped from the class by DRF; mypy sees it shadow Field.label.
    label = serializers.SerializerMethodField()  # type: ignore[assignment]
    sites: serializers.SlugRelatedField[Site] = serializers.SlugRelatedField(
        many=True, read_only=True, slug_field="name"
    )
    groups: serializers.SlugRelatedField[DeviceGroup] = serializers.SlugRelatedField(
        many=True, read_only=True, slug_field="name"
    )

    class Meta:
        model = RolloutWave
        fields = ["number", "label", "percent", "sites", "groups", "started_at", "completed_at"]
        read_only_fields = fields

    @extend_schema_field(serializers.IntegerField())
    def get_number(self, wave: RolloutWave) -> int:
        return wave.position + 1

    @extend_schema_field(serializers.CharField())
    def get_label(self, wave: RolloutWave) -> str:
        return wave_describe(wave)


class RolloutSerializer(serializers.ModelSerializer[Rollout]):
    rule = serializers.CharField(source="rule.identity", read_only=True)
    device_class = serializers.CharField(source="rule.device_class", read_only=True)
    state = RolloutStateField(read_only=True)
    current_wave = serializers.SerializerMethodField(help_text="number of the current wave, from 1")
    plan = serializers.SerializerMethodField()
    waves = RolloutWaveSerializer(many=True, read_only=True)

    class Meta:
        model = Rollout
        fields = [
            "id",
            "rule",
            "device_class",
            "from_version",
            "to_version",
            "state",
            "reason",
            "current_wave",
            "wave_started_at",
            "counting_since",
            "plan",
            "waves",
            "actor_name",
            "created_at",
            "updated_at",
            "finished_at",
        ]
        read_only_fields = fields

    @extend_schema_field(serializers.IntegerField())
    def get_current_wave(self, rollout: Rollout) -> int:
        return rollout.current_wave + 1

    @extend_schema_field(RolloutPlanSummarySerializer)
    def get_plan(self, rollout: Rollout) -> dict[str, Any]:
        return plan_summary(rollout)
