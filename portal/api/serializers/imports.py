"""What the API reads and writes of package imports."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from portal.models import (
    ImportJob,
    Pool,
)


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
