"""The API views' shared parts: the refusal mapping, the paginations, the base view set."""

from __future__ import annotations

from typing import Any

from rest_framework import mixins, viewsets
from rest_framework.exceptions import APIException, NotFound, ValidationError
from rest_framework.pagination import BasePagination, CursorPagination
from rest_framework.request import Request
from rest_framework.response import Response

from portal.api.permissions import RolePermissions
from portal.errors import DomainError
from portal.services.audit import Actor
from portal.services.topology import topology_save


def api_exception_of(error: DomainError) -> APIException:
    """A service's refusal as the API answers it: 404 for ``not_found``, else 400."""
    if error.code == "not_found":
        return NotFound(error.message)
    return ValidationError(error.as_field_errors(), code=error.code)


class IdCursorPagination(CursorPagination):
    ordering = "id"


class ImportCursorPagination(CursorPagination):
    ordering = ("-created_at", "-id")


class NewestFirstCursorPagination(CursorPagination):
    ordering = ("-created_at", "-id")


class AuditCursorPagination(CursorPagination):
    # created_at is indexed; id breaks ties between rows of the same instant.
    ordering = ("-created_at", "-id")


class PortalViewSet(viewsets.GenericViewSet[Any]):
    """Role permissions on every method; service refusals mapped to 400/404."""

    permission_classes = [RolePermissions]
    # Verbs of model permissions an action needs regardless of its HTTP method.
    action_verbs: dict[str, str] = {}

    def handle_exception(self, exc: Exception) -> Response:
        if isinstance(exc, DomainError):
            exc = api_exception_of(exc)
        return super().handle_exception(exc)

    def actor(self) -> Actor:
        return Actor.of_user(self.request.user)


# --- Topology (read, and a site's time zone and a server's offer cap) ---------------


class _ReadOnly(mixins.ListModelMixin, mixins.RetrieveModelMixin, PortalViewSet):
    pagination_class: type[BasePagination] | None = IdCursorPagination
    filter_backends: list[Any] = []
    lookup_value_regex = r"\d+"


class _Settable(_ReadOnly):
    """Topology rows whose settings (not their names) PUT and PATCH change, through
    the topology service (validated and audited)."""

    def update(self, request: Request, pk: str, partial: bool = False) -> Response:
        obj = self.get_object()
        serializer = self.get_serializer(obj, data=request.data, partial=partial)
        serializer.is_valid(raise_exception=True)
        for name, value in serializer.validated_data.items():
            setattr(obj, name, value)
        saved = topology_save(obj=obj, actor=self.actor())
        return Response(self.get_serializer(saved).data)

    def partial_update(self, request: Request, pk: str) -> Response:
        return self.update(request, pk, partial=True)
