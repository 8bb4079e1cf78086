"""What the API reads and writes of the topology."""

from __future__ import annotations

from rest_framework import serializers

from portal.models import (
    Pool,
    Server,
    Site,
)
from portal.services.rollout_plans import MAX_COUNT

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
