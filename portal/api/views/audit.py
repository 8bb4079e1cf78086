"""API views of the audit trail (read only)."""

from __future__ import annotations

from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.utils import (
    extend_schema,
)

from portal.api.filters import (
    AuditFilter,
)
from portal.api.serializers import (
    AuditEntrySerializer,
)
from portal.api.views.base import AuditCursorPagination, _ReadOnly
from portal.models import (
    AuditEntry,
)

# --- Audit --------------------------------------------------------------------------


@extend_schema(tags=["audit"])
class AuditEntryViewSet(_ReadOnly):
    """The audit trail, newest first; never written through the API."""

    queryset = AuditEntry.objects.all()
    serializer_class = AuditEntrySerializer
    filter_backends = [DjangoFilterBackend]
    filterset_class = AuditFilter
    pagination_class = AuditCursorPagination
