"""What the API reads and writes. Serializers check the shape of input; the services
decide whether a change is allowed (their refusals become field errors in the views)."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from portal.choices import IdentifierType, RuleAction, RuleState
from portal.models import (
    AuditEntry,
    DeviceLogConfiguration,
    DeviceUpdateRule,
    ImportJob,
    Pool,
    Server,
    Site,
    TrustedPublisher,
)
from portal.services.log_config import SETTINGS

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
    class Meta:
        model = Site
        fields = ["id", "name", "description"]
        read_only_fields = fields


class PoolSerializer(serializers.ModelSerializer[Pool]):
    identity = serializers.CharField(read_only=True)
    site = serializers.CharField(source="site.name", read_only=True)

    class Meta:
        model = Pool
        fields = ["id", "identity", "site", "fqdn", "internal_web_fqdn", "external_web_fqdn"]
        read_only_fields = fields


class ServerSerializer(serializers.ModelSerializer[Server]):
    pool = serializers.CharField(source="pool.fqdn", read_only=True)

    class Meta:
        model = Server
        fields = ["id", "pool", "fqdn", "worker_seen_at"]
        read_only_fields = fields


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
