"""What the API reads of the audit trail."""

from __future__ import annotations

from rest_framework import serializers

from portal.models import (
    AuditEntry,
)

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
