"""What the API reads and writes of the test devices."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from portal.choices import (
    IdentifierType,
)

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
