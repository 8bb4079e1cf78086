"""API views of the test devices (``portal.services.testdevices``)."""

from __future__ import annotations

from drf_spectacular.utils import (
    extend_schema,
)
from rest_framework import mixins, status
from rest_framework.request import Request
from rest_framework.response import Response

from portal.api.filters import (
    TestDeviceFilter,
)
from portal.api.serializers import (
    TestDeviceSerializer,
)
from portal.api.views.base import IdCursorPagination, PortalViewSet
from portal.models import (
    TestDevice,
)
from portal.services.testdevices import testdevice_create, testdevice_delete, testdevice_update

# --- Test devices -------------------------------------------------------------------


@extend_schema(tags=["test devices"])
class TestDeviceViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, PortalViewSet):
    """Phones that receive pending versions; written through the test device services."""

    __test__ = False  # not a pytest test class, whatever its name says

    queryset = TestDevice.objects.select_related("site")
    serializer_class = TestDeviceSerializer
    filterset_class = TestDeviceFilter
    pagination_class = IdCursorPagination
    lookup_value_regex = r"\d+"

    def create(self, request: Request) -> Response:
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        device = testdevice_create(**serializer.validated_data, actor=self.actor())
        return Response(self.get_serializer(device).data, status=status.HTTP_201_CREATED)

    def update(self, request: Request, pk: str, partial: bool = False) -> Response:
        serializer = self.get_serializer(data=request.data, partial=partial)
        serializer.is_valid(raise_exception=True)
        device = testdevice_update(
            device=self.get_object(), actor=self.actor(), **serializer.validated_data
        )
        return Response(self.get_serializer(device).data)

    def partial_update(self, request: Request, pk: str) -> Response:
        return self.update(request, pk, partial=True)

    def destroy(self, request: Request, pk: str) -> Response:
        testdevice_delete(device=self.get_object(), actor=self.actor())
        return Response(status=status.HTTP_204_NO_CONTENT)
