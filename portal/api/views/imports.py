"""API views of package imports (``portal.services.imports``)."""

from __future__ import annotations

from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
)
from rest_framework import mixins, status
from rest_framework.exceptions import ValidationError
from rest_framework.parsers import MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response

from portal.api.serializers import (
    ImportJobSerializer,
    ImportStartSerializer,
)
from portal.api.views.base import ImportCursorPagination, _ReadOnly
from portal.errors import DomainError
from portal.models import (
    ImportJob,
    Pool,
)
from portal.services.imports import package_import_start, package_inspect

# --- Package imports ----------------------------------------------------------------


DRY_RUN_VALUES = {"1": True, "true": True, "0": False, "false": False}


def _dry_run(request: Request) -> bool:
    value = request.query_params.get("dry_run", "0").lower()
    if value not in DRY_RUN_VALUES:
        raise ValidationError({"dry_run": ["must be 1, true, 0 or false"]}, code="invalid")
    return DRY_RUN_VALUES[value]


@extend_schema(tags=["imports"])
class ImportJobViewSet(mixins.CreateModelMixin, _ReadOnly):
    """Package imports: POST a .cab (multipart) to queue one; read the jobs' reports.
    With ``?dry_run=1`` the package (or a lone .cat, with its member ``files``) is examined
    as the import would and the report returned; nothing is written."""

    queryset = ImportJob.objects.prefetch_related("pools")
    serializer_class = ImportJobSerializer
    parser_classes = [MultiPartParser]
    pagination_class = ImportCursorPagination

    @extend_schema(
        request=ImportStartSerializer,
        parameters=[
            OpenApiParameter(
                "dry_run",
                OpenApiTypes.STR,
                enum=list(DRY_RUN_VALUES),
                description="1 or true: only examine the package and return the report "
                "(kind, verdict, reason, cabinet, updates, catalogs, warnings); no job is made.",
            )
        ],
        responses={
            202: ImportJobSerializer,
            200: OpenApiResponse(OpenApiTypes.OBJECT, description="the dry run's report"),
        },
    )
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        given = ImportStartSerializer(data=request.data)
        given.is_valid(raise_exception=True)
        upload = given.validated_data["package"]
        files = given.validated_data["files"]
        if _dry_run(request):
            members = {file.name: file.chunks() for file in files} if files else None
            report = package_inspect(source=upload.chunks(), filename=upload.name, files=members)
            return Response(report)
        if files:
            raise DomainError("member files go with the dry run of a catalog", field="files")
        pools = []
        for fqdn in given.validated_data["pools"]:
            pool = Pool.objects.filter(fqdn__iexact=fqdn.strip().rstrip(".")).first()
            if pool is None:
                raise DomainError(f"no pool {fqdn}", field="pools")
            pools.append(pool)
        job = package_import_start(
            source=upload.chunks(), filename=upload.name, pools=pools, actor=self.actor()
        )
        return Response(ImportJobSerializer(job).data, status=status.HTTP_202_ACCEPTED)
