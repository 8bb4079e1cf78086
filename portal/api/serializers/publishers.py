"""What the API reads and writes of the trusted publishers."""

from __future__ import annotations

from rest_framework import serializers

from portal.models import (
    TrustedPublisher,
)

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
