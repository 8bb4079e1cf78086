"""The phone side's API views: read-only, with the same role permissions as the portal's."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound
from rest_framework.request import Request
from rest_framework.response import Response

from phones.api.serializers import DeviceOutcomeSerializer, RolloutProgressSerializer, progress_data
from phones.models import Device, DeviceOutcome
from phones.selectors import device_outcomes
from phones.services.rollout_watch import rollout_progress
from portal.api.views.base import PortalViewSet
from portal.models import Rollout
from portal.selectors import device_identity_parse

# --- Views --------------------------------------------------------------------------


@extend_schema(tags=["rollouts"])
class RolloutProgressViewSet(PortalViewSet):
    """What a rollout's phones were seen doing (the observation job's latest view)."""

    queryset = Rollout.objects.select_related("rule__pool")
    serializer_class = RolloutProgressSerializer
    pagination_class = None
    filter_backends: list[Any] = []
    lookup_value_regex = r"\d+"

    @extend_schema(
        responses={200: RolloutProgressSerializer},
        summary="Per wave: phones planned, offered, downloaded, running and failed; the "
        "failed phones; the gate",
    )
    @action(detail=True, methods=["get"])
    def progress(self, request: Request, pk: str) -> Response:
        progress = rollout_progress(rollout=self.get_object())
        return Response(RolloutProgressSerializer(progress_data(progress)).data)


@extend_schema(tags=["devices"])
class DeviceOutcomeViewSet(PortalViewSet):
    """A phone's observed outcomes, per rule and version."""

    queryset = DeviceOutcome.objects.select_related("rule__pool")
    serializer_class = DeviceOutcomeSerializer
    pagination_class = None
    filter_backends: list[Any] = []
    lookup_field = "identity"
    lookup_value_regex = r"[^/]+"

    @extend_schema(
        responses={200: DeviceOutcomeSerializer(many=True)},
        summary="What the phone was seen doing with each version a rule offered it",
    )
    @action(detail=True, methods=["get"])
    def outcomes(self, request: Request, identity: str) -> Response:
        key, _, _ = device_identity_parse(identity)
        found = device_outcomes(identity=key)
        if not found and not Device.objects.filter(identity=key).exists():
            raise NotFound(f"no phone {key} in the inventory")
        return Response(DeviceOutcomeSerializer(found, many=True).data)
