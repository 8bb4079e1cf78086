"""API views of the topology: sites, pools, servers (``portal.services.topology``)."""

from __future__ import annotations

from drf_spectacular.utils import (
    extend_schema,
    extend_schema_view,
)

from portal.api.serializers import (
    PoolSerializer,
    ServerSerializer,
    SiteSerializer,
)
from portal.api.views.base import _ReadOnly, _Settable
from portal.models import (
    Pool,
    Server,
    Site,
)


@extend_schema_view(
    update=extend_schema(summary="Set a site's description and time zone"),
    partial_update=extend_schema(
        summary="Change a site's description or time zone (its maintenance windows are read in it)"
    ),
)
@extend_schema(tags=["topology"])
class SiteViewSet(_Settable):
    queryset = Site.objects.all()
    serializer_class = SiteSerializer


@extend_schema(tags=["topology"])
class PoolViewSet(_ReadOnly):
    queryset = Pool.objects.select_related("site")
    serializer_class = PoolSerializer


@extend_schema_view(
    update=extend_schema(summary="Set a server's cap on new offers per minute"),
    partial_update=extend_schema(summary="Change a server's cap on new offers per minute"),
)
@extend_schema(tags=["topology"])
class ServerViewSet(_Settable):
    queryset = Server.objects.select_related("pool")
    serializer_class = ServerSerializer
