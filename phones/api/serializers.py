"""What the phone side's API reads: rollout progress and a phone's observed outcomes."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from phones.choices import ObservedState
from phones.models import DeviceOutcome
from phones.services.rollout_watch import RolloutProgress
from portal.api.serializers.rollouts import RolloutStateField

# --- Serializers --------------------------------------------------------------------


# A component of its own: rules, rollouts and observed outcomes all have a "state".
@extend_schema_field(
    {"type": "string", "enum": ObservedState.values}, component_name="ObservedStateEnum"
)
class ObservedStateField(serializers.ChoiceField):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(choices=ObservedState.choices, **kwargs)


class WaveProgressSerializer(serializers.Serializer[Any]):
    number = serializers.IntegerField(help_text="1 for the first wave")
    # A declared field, popped from the class by DRF; mypy sees it shadow Field.label.
    label = serializers.CharField()  # type: ignore[assignment]
    started_at = serializers.DateTimeField(allow_null=True)
    completed_at = serializers.DateTimeField(allow_null=True)
    planned = serializers.IntegerField(help_text="the wave's own phones")
    offered = serializers.IntegerField()
    downloaded = serializers.IntegerField()
    running = serializers.IntegerField(help_text="seen running the version")
    failed = serializers.IntegerField(help_text="failures that count (since the last resume)")
    failed_before = serializers.IntegerField(help_text="failures before the last resume")


class FailedPhoneSerializer(serializers.Serializer[Any]):
    identity = serializers.CharField()
    device_id = serializers.IntegerField(allow_null=True, help_text="its inventory row")
    wave = serializers.IntegerField(help_text="number of its wave, from 1")
    failure = serializers.CharField(help_text="why it counts as failed")
    failed_at = serializers.DateTimeField(allow_null=True)


class RolloutProgressSerializer(serializers.Serializer[Any]):
    rollout = serializers.IntegerField(help_text="the rollout's id")
    state = RolloutStateField()
    current_wave = serializers.IntegerField(help_text="number of the current wave, from 1")
    population = serializers.IntegerField(
        help_text="phones of the rule's class on its pool (test, held and pinned phones excluded)"
    )
    gate = serializers.CharField(help_text="where the current wave stands against its gates")
    waves = WaveProgressSerializer(many=True)
    failed_phones = FailedPhoneSerializer(many=True)


def progress_data(progress: RolloutProgress) -> dict[str, Any]:
    """The selector's answer in the API's (and the commands') shape: waves numbered
    from 1."""
    rollout = progress.rollout
    return {
        "rollout": rollout.pk,
        "state": rollout.state,
        "current_wave": rollout.current_wave + 1,
        "population": progress.population,
        "gate": progress.gate,
        "waves": [
            {
                "number": wave.position + 1,
                "label": wave.label,
                "started_at": wave.started_at,
                "completed_at": wave.completed_at,
                "planned": wave.planned,
                "offered": wave.offered,
                "downloaded": wave.downloaded,
                "running": wave.running,
                "failed": wave.failed,
                "failed_before": wave.failed_before,
            }
            for wave in progress.waves
        ],
        "failed_phones": [
            {
                "identity": phone.identity,
                "device_id": phone.device_id,
                "wave": phone.wave + 1,
                "failure": phone.failure,
                "failed_at": phone.failed_at,
            }
            for phone in progress.failed_phones
        ],
    }


class DeviceOutcomeSerializer(serializers.ModelSerializer[DeviceOutcome]):
    rule = serializers.CharField(source="rule.identity", read_only=True)
    device_class = serializers.CharField(source="rule.device_class", read_only=True)
    state = ObservedStateField(read_only=True)

    class Meta:
        model = DeviceOutcome
        fields = [
            "rule",
            "device_class",
            "version",
            "state",
            "offered_first",
            "offered_last",
            "offered_count",
            "downloaded_at",
            "running_at",
            "failed_at",
            "failure",
            "last_seen",
            "updated_at",
        ]
        read_only_fields = fields
