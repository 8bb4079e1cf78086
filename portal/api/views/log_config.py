"""API views of the device log settings (``portal.services.log_config``)."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    extend_schema,
    extend_schema_view,
)
from rest_framework import status
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound
from rest_framework.request import Request
from rest_framework.response import Response

from portal.api.serializers import (
    EffectiveLogConfigSerializer,
    LogConfigSerializer,
)
from portal.api.views.base import PortalViewSet
from portal.models import (
    DeviceLogConfiguration,
    Site,
)
from portal.selectors import log_config_effective, scope_resolve
from portal.services.log_config import log_config_reset, log_config_set

# --- Log configuration --------------------------------------------------------------

SCOPE_PARAMETER = OpenApiParameter(
    "scope",
    OpenApiTypes.STR,
    OpenApiParameter.PATH,
    description="global or site:<name>",
)


@extend_schema_view(
    list=extend_schema(summary="The scopes that have settings of their own"),
    retrieve=extend_schema(parameters=[SCOPE_PARAMETER], summary="A scope's own settings"),
    update=extend_schema(
        parameters=[SCOPE_PARAMETER],
        summary="Set every setting of a scope (created when it had none of its own)",
    ),
    partial_update=extend_schema(
        parameters=[SCOPE_PARAMETER],
        summary="Change some settings of a scope (the others start from the defaults)",
    ),
    destroy=extend_schema(
        parameters=[SCOPE_PARAMETER],
        responses={204: None},
        summary="Remove a scope's settings: global goes back to the defaults, a site to global",
    ),
)
@extend_schema(tags=["log configuration"])
class LogConfigViewSet(PortalViewSet):
    """Device log settings of ``global`` and of each site, at ``/log-config/<scope>/``."""

    queryset = DeviceLogConfiguration.objects.select_related("site")
    serializer_class = LogConfigSerializer
    pagination_class = None
    filter_backends: list[Any] = []
    lookup_field = "scope"
    lookup_value_regex = r"[^/]+"

    def get_object(self) -> DeviceLogConfiguration:
        scope = self.kwargs["scope"]
        config = self.get_queryset().filter(site=scope_resolve(scope)).first()
        if config is None:
            raise NotFound(f"{scope} has no settings of its own")
        return config

    def list(self, request: Request) -> Response:
        configs = sorted(self.get_queryset(), key=lambda c: (c.site is not None, c.scope.lower()))
        return Response(self.get_serializer(configs, many=True).data)

    def retrieve(self, request: Request, scope: str) -> Response:
        return Response(self.get_serializer(self.get_object()).data)

    def update(self, request: Request, scope: str, partial: bool = False) -> Response:
        serializer = self.get_serializer(data=request.data, partial=partial)
        serializer.is_valid(raise_exception=True)
        config = log_config_set(
            scope=scope, values=dict(serializer.validated_data), actor=self.actor()
        )
        return Response(self.get_serializer(config).data)

    def partial_update(self, request: Request, scope: str) -> Response:
        return self.update(request, scope, partial=True)

    def destroy(self, request: Request, scope: str) -> Response:
        if not log_config_reset(scope=scope, actor=self.actor()):
            raise NotFound(f"{scope} has no settings of its own")
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(
        responses={200: EffectiveLogConfigSerializer(many=True)},
        summary="The settings in force for each site's servers, and where they come from",
    )
    @action(detail=False, methods=["get"])
    def effective(self, request: Request) -> Response:
        # Rows of the selector's dataclass, each named by its site.
        rows: list[Any] = [
            {"site": site.name, **asdict(log_config_effective(site=site))}
            for site in Site.objects.order_by("name")
        ]
        return Response(EffectiveLogConfigSerializer(rows, many=True).data)
