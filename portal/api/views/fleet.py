"""API views of the fleet: per-phone holds and pins, device groups, maintenance windows
(``portal.services.fleet``)."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from drf_spectacular.utils import (
    extend_schema,
    extend_schema_view,
)
from rest_framework import mixins, status
from rest_framework.request import Request
from rest_framework.response import Response

from portal.api.filters import (
    DeviceControlFilter,
    DeviceGroupFilter,
    MaintenanceWindowFilter,
)
from portal.api.serializers import (
    DeviceControlRequestSerializer,
    DeviceControlSerializer,
    DeviceGroupSerializer,
    MaintenanceWindowSerializer,
)
from portal.api.views.base import IdCursorPagination, PortalViewSet
from portal.api.views.rules import _rule_referenced
from portal.choices import DeviceControlKind
from portal.errors import DomainError
from portal.models import (
    DeviceControl,
    DeviceGroup,
    MaintenanceWindow,
    Site,
)
from portal.services.fleet import (
    device_group_delete,
    device_group_save,
    device_hold,
    device_pin,
    device_release,
    maintenance_window_create,
    maintenance_window_delete,
)

# --- Per-phone holds and pins -------------------------------------------------------


@extend_schema_view(
    list=extend_schema(summary="Phones held or pinned, per rule"),
    retrieve=extend_schema(summary="One hold or pin"),
)
@extend_schema(tags=["devices"])
class DeviceControlViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, PortalViewSet):
    """A phone held for a rule (never offered its updates) or pinned to one of its
    versions; DELETE releases it."""

    queryset = DeviceControl.objects.select_related("rule__pool")
    serializer_class = DeviceControlSerializer
    filterset_class = DeviceControlFilter
    pagination_class = IdCursorPagination
    lookup_value_regex = r"\d+"

    @extend_schema(
        request=DeviceControlRequestSerializer,
        responses={201: DeviceControlSerializer},
        summary="Hold or pin a phone for a rule (replaces what it had for that rule)",
    )
    def create(self, request: Request) -> Response:
        given = DeviceControlRequestSerializer(data=request.data)
        given.is_valid(raise_exception=True)
        values = given.validated_data
        rule = _rule_referenced(values["rule"], field="rule")
        if values["kind"] == DeviceControlKind.HOLD:
            control = device_hold(identity=values["identity"], rule=rule, actor=self.actor())
        else:
            control = device_pin(
                identity=values["identity"], rule=rule, version=values["version"],
                actor=self.actor(),
            )  # fmt: skip
        return Response(DeviceControlSerializer(control).data, status=status.HTTP_201_CREATED)

    @extend_schema(responses={204: None}, summary="Release: lift the hold or pin")
    def destroy(self, request: Request, pk: str) -> Response:
        control = self.get_object()
        device_release(identity=control.identity, rule=control.rule, actor=self.actor())
        return Response(status=status.HTTP_204_NO_CONTENT)


# --- Device groups ------------------------------------------------------------------


@extend_schema_view(
    list=extend_schema(summary="Device groups, with their phones"),
    retrieve=extend_schema(summary="One device group"),
    create=extend_schema(responses={201: DeviceGroupSerializer}, summary="Create a group"),
    update=extend_schema(summary="Replace a group's name, description and members"),
    partial_update=extend_schema(summary="Change a group's name, description or members"),
    destroy=extend_schema(
        responses={204: None}, summary="Delete a group no active rollout's wave names"
    ),
)
@extend_schema(tags=["devices"])
class DeviceGroupViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, PortalViewSet):
    """Named sets of phones a rollout wave can target (``group:NAME``)."""

    queryset = DeviceGroup.objects.all()
    serializer_class = DeviceGroupSerializer
    filterset_class = DeviceGroupFilter
    pagination_class = IdCursorPagination
    lookup_value_regex = r"\d+"

    def get_queryset(self) -> QuerySet[DeviceGroup]:
        if self.action == "list":
            return super().get_queryset().prefetch_related("members")
        # Not prefetched elsewhere: the service reads the members before and after it
        # replaces them, and a prefetched list would hide the change.
        return super().get_queryset()

    def _save(self, group: DeviceGroup | None, values: dict[str, Any]) -> DeviceGroup:
        try:
            return device_group_save(group=group, **values, actor=self.actor())
        except DomainError as error:
            if error.field == "identity":  # a member the service could not read
                raise DomainError(error.message, field="members") from None
            raise

    def create(self, request: Request) -> Response:
        given = self.get_serializer(data=request.data)
        given.is_valid(raise_exception=True)
        group = self._save(None, dict(given.validated_data))
        return Response(self.get_serializer(group).data, status=status.HTTP_201_CREATED)

    def update(self, request: Request, pk: str, partial: bool = False) -> Response:
        group = self.get_object()
        given = self.get_serializer(data=request.data, partial=partial)
        given.is_valid(raise_exception=True)
        values = {
            "name": group.name,
            "description": group.description,
            "members": [member.identity for member in group.members.all()],
            **given.validated_data,
        }
        return Response(self.get_serializer(self._save(group, values)).data)

    def partial_update(self, request: Request, pk: str) -> Response:
        return self.update(request, pk, partial=True)

    def destroy(self, request: Request, pk: str) -> Response:
        device_group_delete(group=self.get_object(), actor=self.actor())
        return Response(status=status.HTTP_204_NO_CONTENT)


# --- Maintenance windows ------------------------------------------------------------


@extend_schema_view(
    list=extend_schema(summary="Maintenance windows, by site, weekday and start"),
    retrieve=extend_schema(summary="One maintenance window"),
    create=extend_schema(
        responses={201: MaintenanceWindowSerializer},
        summary="Add a weekly window in the site's local time (not empty, not overlapping)",
    ),
    destroy=extend_schema(responses={204: None}, summary="Remove a window"),
)
@extend_schema(tags=["maintenance windows"])
class MaintenanceWindowViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, PortalViewSet):
    """Weekly windows in which a site's phones may be offered new versions; a site
    without windows is always open. Set the site's time zone at ``/sites/{id}/``."""

    queryset = MaintenanceWindow.objects.select_related("site")
    serializer_class = MaintenanceWindowSerializer
    filterset_class = MaintenanceWindowFilter
    pagination_class = None
    lookup_value_regex = r"\d+"

    def create(self, request: Request) -> Response:
        given = self.get_serializer(data=request.data)
        given.is_valid(raise_exception=True)
        values = given.validated_data
        name = values["site"]["name"].strip()
        site = Site.objects.filter(name__iexact=name).first()
        if site is None:
            raise DomainError(f"no site named {name!r}", field="site")
        window = maintenance_window_create(
            site=site, weekday=values["weekday"], start=values["start"], end=values["end"],
            actor=self.actor(),
        )  # fmt: skip
        return Response(self.get_serializer(window).data, status=status.HTTP_201_CREATED)

    def destroy(self, request: Request, pk: str) -> Response:
        maintenance_window_delete(window=self.get_object(), actor=self.actor())
        return Response(status=status.HTTP_204_NO_CONTENT)
