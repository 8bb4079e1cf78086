"""What the API reads and writes. Serializers check the shape of input; the services
decide whether a change is allowed (their refusals become field errors in the views)."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from portal.choices import (
    DeviceControlKind,
    IdentifierType,
    RolloutState,
    RuleAction,
    RuleState,
    Weekday,
)
from portal.models import (
    AuditEntry,
    DeviceControl,
    DeviceGroup,
    DeviceLogConfiguration,
    DeviceUpdateRule,
    ImportJob,
    MaintenanceWindow,
    Pool,
    Rollout,
    RolloutWave,
    Server,
    Site,
    TrustedPublisher,
)
from portal.services.log_config import SETTINGS
from portal.services.rollouts import MAX_COUNT, plan_summary
from portal.waves import wave_describe

# The largest count a database integer column holds; larger input is refused here
# rather than by the database.

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


# --- Test devices -------------------------------------------------------------------


class TestDeviceSerializer(serializers.Serializer[Any]):
    __test__ = False  # not a pytest test class, whatever its name says

    id = serializers.IntegerField(read_only=True)
    scope = serializers.CharField(help_text="global or site:<name>")
    name = serializers.CharField()
    identifier_type = serializers.ChoiceField(choices=IdentifierType.choices)
    identifier = serializers.CharField(
        help_text="MAC address (six or more hex pairs) or serial number; stored normalised"
    )


# --- Log configuration --------------------------------------------------------------


class LogConfigSerializer(serializers.ModelSerializer[DeviceLogConfiguration]):
    """A scope's own settings; limits come from the model's validators."""

    scope = serializers.CharField(read_only=True, help_text="global or site:<name>")
    valid_log_file_extensions = serializers.ListField(child=serializers.CharField())
    valid_log_file_types = serializers.ListField(child=serializers.CharField())

    class Meta:
        model = DeviceLogConfiguration
        fields = ["scope", *SETTINGS]
        # PUT sets every setting; PATCH (partial) only the given ones.
        extra_kwargs = {name: {"required": True} for name in SETTINGS}


class EffectiveLogConfigSerializer(LogConfigSerializer):
    """The settings in force for a site's servers, and where they come from."""

    site = serializers.CharField(read_only=True)
    # A declared field, popped from the class by DRF; mypy sees it shadow Field.source.
    source = serializers.CharField(  # type: ignore[assignment]
        read_only=True, help_text="site:<name>, global or defaults"
    )

    class Meta(LogConfigSerializer.Meta):
        fields = ["site", "source", *SETTINGS]


# --- Trusted publishers -------------------------------------------------------------


class PublisherSerializer(serializers.ModelSerializer[TrustedPublisher]):
    fingerprint = serializers.CharField(source="fingerprint_sha256", read_only=True)
    certificate_pem = serializers.CharField(
        write_only=True, help_text="one PEM certificate (-----BEGIN CERTIFICATE-----)"
    )

    class Meta:
        model = TrustedPublisher
        fields = [
            "fingerprint",
            "subject",
            "issuer",
            "serial_number",
            "not_valid_before",
            "not_valid_after",
            "certificate_pem",
        ]
        read_only_fields = [
            "subject",
            "issuer",
            "serial_number",
            "not_valid_before",
            "not_valid_after",
        ]


# --- Topology -----------------------------------------------------------------------


class SiteSerializer(serializers.ModelSerializer[Site]):
    """A site; its description and time zone (maintenance windows) can be changed."""

    class Meta:
        model = Site
        fields = ["id", "name", "description", "time_zone"]
        read_only_fields = ["id", "name"]


class PoolSerializer(serializers.ModelSerializer[Pool]):
    identity = serializers.CharField(read_only=True)
    site = serializers.CharField(source="site.name", read_only=True)

    class Meta:
        model = Pool
        fields = ["id", "identity", "site", "fqdn", "internal_web_fqdn", "external_web_fqdn"]
        read_only_fields = fields


class ServerSerializer(serializers.ModelSerializer[Server]):
    """A server; its cap on new offers per minute can be changed."""

    pool = serializers.CharField(source="pool.fqdn", read_only=True)
    offer_cap_per_minute = serializers.IntegerField(
        min_value=0,
        max_value=MAX_COUNT,
        help_text="At most this many checks a minute are offered new files; 0: no cap.",
    )

    class Meta:
        model = Server
        fields = ["id", "pool", "fqdn", "worker_seen_at", "offer_cap_per_minute"]
        read_only_fields = ["id", "pool", "fqdn", "worker_seen_at"]


# --- Audit --------------------------------------------------------------------------


class AuditEntrySerializer(serializers.ModelSerializer[AuditEntry]):
    changes = serializers.DictField(
        child=serializers.ListField(), read_only=True, help_text="{field: [before, after]}"
    )

    class Meta:
        model = AuditEntry
        fields = [
            "id",
            "created_at",
            "actor_name",
            "action",
            "object_type",
            "object_id",
            "object_repr",
            "changes",
        ]
        read_only_fields = fields


class ImportJobSerializer(serializers.ModelSerializer[ImportJob]):
    pools: serializers.SlugRelatedField[Pool] = serializers.SlugRelatedField(
        many=True, read_only=True, slug_field="fqdn"
    )

    class Meta:
        model = ImportJob
        fields = [
            "id",
            "created_at",
            "started_at",
            "finished_at",
            "actor_name",
            "status",
            "progress",
            "step",
            "package_name",
            "package_size",
            "package_sha256",
            "pools",
            "signer",
            "cabinet_signer",
            "updates",
            "warnings",
            "error",
            "replication",
        ]
        read_only_fields = fields


class ImportStartSerializer(serializers.Serializer[Any]):
    """A package upload: the cabinet and the pools it goes to (default: all)."""

    package = serializers.FileField(help_text="The vendor's .cab package.")
    pools = serializers.ListField(
        child=serializers.CharField(max_length=253), required=False, default=list
    )
    files = serializers.ListField(
        child=serializers.FileField(allow_empty_file=True),
        required=False,
        default=list,
        help_text="Dry run of a lone catalog only: its member files, each compared with the "
        "catalog's entries (matched, mismatched, missing or unlisted, with the hash kind).",
    )


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
