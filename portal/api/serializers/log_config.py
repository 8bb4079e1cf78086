"""What the API reads and writes of the device log settings."""

from __future__ import annotations

from rest_framework import serializers

from portal.models import (
    DeviceLogConfiguration,
)
from portal.services.log_config import SETTINGS

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
