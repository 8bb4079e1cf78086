"""API views of the trusted publishers (``portal.services.publishers``)."""

from __future__ import annotations

from typing import Any

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import (
    extend_schema,
    extend_schema_view,
)
from rest_framework import mixins, status
from rest_framework.request import Request
from rest_framework.response import Response

from portal.api.serializers import (
    PublisherSerializer,
)
from portal.api.views.base import IdCursorPagination, PortalViewSet
from portal.models import (
    TrustedPublisher,
)
from portal.services.publishers import normalise_fingerprint, publisher_add, publisher_remove

# --- Trusted publishers -------------------------------------------------------------


@extend_schema_view(
    create=extend_schema(responses={201: PublisherSerializer}, summary="Trust a certificate"),
    destroy=extend_schema(responses={204: None}, summary="Stop trusting a certificate"),
)
@extend_schema(tags=["trusted publishers"])
class PublisherViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, PortalViewSet):
    """Certificates package catalogs must chain to, named by SHA-256 fingerprint."""

    queryset = TrustedPublisher.objects.all()
    serializer_class = PublisherSerializer
    pagination_class = IdCursorPagination
    filter_backends: list[Any] = []
    lookup_field = "fingerprint_sha256"
    lookup_url_kwarg = "fingerprint"
    lookup_value_regex = r"[0-9A-Fa-f:]+"

    def get_object(self) -> TrustedPublisher:
        fingerprint = normalise_fingerprint(self.kwargs["fingerprint"])
        publisher = get_object_or_404(self.get_queryset(), fingerprint_sha256=fingerprint)
        self.check_object_permissions(self.request, publisher)
        return publisher

    def create(self, request: Request) -> Response:
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        publisher = publisher_add(
            pem=serializer.validated_data["certificate_pem"], actor=self.actor()
        )
        return Response(self.get_serializer(publisher).data, status=status.HTTP_201_CREATED)

    def destroy(self, request: Request, fingerprint: str) -> Response:
        publisher_remove(fingerprint=fingerprint, actor=self.actor())
        return Response(status=status.HTTP_204_NO_CONTENT)
