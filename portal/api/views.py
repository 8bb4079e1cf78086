"""API views: validate the input, call one service or selector, render the answer.

Every change goes through the services (audited, with the signed-in user as actor);
their refusals (``DomainError``) become 400 with field errors, or 404 when what was
named does not exist, by one shared mapping (``api_exception_of``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict
from typing import Any

from django.db.models import QuerySet
from django.shortcuts import get_object_or_404
from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_view,
)
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import APIException, NotFound, ValidationError
from rest_framework.filters import OrderingFilter
from rest_framework.pagination import BasePagination, CursorPagination
from rest_framework.parsers import MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response

from portal.api.filters import (
    AuditFilter,
    DeviceControlFilter,
    DeviceGroupFilter,
    MaintenanceWindowFilter,
    RolloutFilter,
    RuleFilter,
    TestDeviceFilter,
)
from portal.api.permissions import RolePermissions
from portal.api.serializers import (
    AuditEntrySerializer,
    DeviceControlRequestSerializer,
    DeviceControlSerializer,
    DeviceGroupSerializer,
    EffectiveLogConfigSerializer,
    ImportJobSerializer,
    ImportStartSerializer,
    LogConfigSerializer,
    MaintenanceWindowSerializer,
    PoolSerializer,
    PublisherSerializer,
    RolloutActionSerializer,
    RolloutPlanSerializer,
    RolloutSerializer,
    RuleBulkActionSerializer,
    RuleBulkResultSerializer,
    RuleSerializer,
    ServerSerializer,
    SiteSerializer,
    TestDeviceSerializer,
)
from portal.choices import DeviceControlKind, RuleAction
from portal.errors import DomainError
from portal.models import (
    AuditEntry,
    DeviceControl,
    DeviceGroup,
    DeviceLogConfiguration,
    DeviceUpdateRule,
    ImportJob,
    MaintenanceWindow,
    Pool,
    Rollout,
    Server,
    Site,
    TestDevice,
    TrustedPublisher,
)
from portal.selectors import log_config_effective, rule_by_identity, scope_resolve
from portal.services.audit import Actor
from portal.services.fleet import (
    device_group_delete,
    device_group_save,
    device_hold,
    device_pin,
    device_release,
    maintenance_window_create,
    maintenance_window_delete,
)
from portal.services.imports import package_import_start, package_inspect
from portal.services.log_config import log_config_reset, log_config_set
from portal.services.publishers import normalise_fingerprint, publisher_add, publisher_remove
from portal.services.rollouts import (
    RolloutPlan,
    rollout_advance,
    rollout_cancel,
    rollout_pause,
    rollout_plan,
    rollout_restore,
    rollout_resume,
    wave_parse,
)
from portal.services.rules import rule_approve, rule_remove, rule_reset, rule_restore, rules_apply
from portal.services.testdevices import testdevice_create, testdevice_delete, testdevice_update
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


# --- Rules --------------------------------------------------------------------------


def _rule_referenced(reference: str, *, field: str = "rules") -> DeviceUpdateRule:
    """The rule named by id or identity; a refusal of ``field`` (400) if none."""
    if reference.isascii() and reference.isdigit():
        rule = DeviceUpdateRule.objects.select_related("pool").filter(pk=int(reference)).first()
        if rule is None:
            raise DomainError(f"no rule with id {reference}", field=field)
        return rule
    try:
        return rule_by_identity(reference)
    except DomainError as error:
        raise DomainError(error.message, field=field) from None


@extend_schema_view(
    list=extend_schema(summary="Device update rules"),
    retrieve=extend_schema(summary="One device update rule"),
)
@extend_schema(tags=["rules"])
class RuleViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, PortalViewSet):
    """Rules come from package imports; the API approves, resets, restores and removes."""

    queryset = DeviceUpdateRule.objects.select_related("pool")
    serializer_class = RuleSerializer
    filter_backends = [DjangoFilterBackend, OrderingFilter]
    filterset_class = RuleFilter
    ordering_fields = ["id", "brand", "model", "created_at", "updated_at"]
    ordering = ["id"]
    pagination_class = IdCursorPagination
    lookup_value_regex = r"\d+"
    action_verbs = {
        "approve": "change",
        "reset": "change",
        "restore": "change",
        "bulk": "change",
        "destroy": "delete",
    }

    def _respond(self, rule: DeviceUpdateRule) -> Response:
        return Response(RuleSerializer(rule).data)

    @extend_schema(
        request=None,
        responses={200: RuleSerializer},
        summary="Approve: R := A; A := P; P := empty (refused without a pending version)",
    )
    @action(detail=True, methods=["post"])
    def approve(self, request: Request, pk: str) -> Response:
        return self._respond(rule_approve(rule=self.get_object(), actor=self.actor()))

    @extend_schema(
        request=None,
        responses={200: RuleSerializer},
        summary="Cancel pending: P := empty (refused without a pending version)",
    )
    @action(detail=True, methods=["post"])
    def reset(self, request: Request, pk: str) -> Response:
        return self._respond(rule_reset(rule=self.get_object(), actor=self.actor()))

    @extend_schema(
        request=None,
        responses={200: RuleSerializer},
        summary="Restore: A := R; R := empty (refused without an approved version)",
    )
    @action(detail=True, methods=["post"])
    def restore(self, request: Request, pk: str) -> Response:
        return self._respond(rule_restore(rule=self.get_object(), actor=self.actor()))

    @extend_schema(
        responses={204: None},
        summary="Remove the rule (its files stay until the pool's unused files are cleared)",
    )
    def destroy(self, request: Request, pk: str) -> Response:
        rule_remove(rule=self.get_object(), actor=self.actor())
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(
        request=RuleBulkActionSerializer,
        responses={200: RuleBulkResultSerializer},
        summary="Apply one action to each rule on its own; report each outcome",
        description=(
            "Rules are named by id or identity. A rule the action is not allowed for is "
            "reported and left as it was; the others are changed. `remove` needs the "
            "delete permission."
        ),
    )
    @action(
        detail=False,
        methods=["post"],
        url_path="actions",
        filter_backends=[],
        pagination_class=None,
    )
    def bulk(self, request: Request) -> Response:
        serializer = RuleBulkActionSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        rule_action = RuleAction(serializer.validated_data["action"])
        if rule_action is RuleAction.REMOVE and not request.user.has_perm(
            "portal.delete_deviceupdaterule"
        ):
            self.permission_denied(request)
        rules: dict[int, DeviceUpdateRule] = {}  # each rule once, in the order first named
        for reference in serializer.validated_data["rules"]:
            rule = _rule_referenced(reference)
            rules.setdefault(rule.pk, rule)
        outcomes = rules_apply(action=rule_action, rules=rules.values(), actor=self.actor())
        result = {"action": rule_action.value, "outcomes": [asdict(item) for item in outcomes]}
        return Response(RuleBulkResultSerializer(result).data)


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


# --- Audit --------------------------------------------------------------------------


@extend_schema(tags=["audit"])
class AuditEntryViewSet(_ReadOnly):
    """The audit trail, newest first; never written through the API."""

    queryset = AuditEntry.objects.all()
    serializer_class = AuditEntrySerializer
    filter_backends = [DjangoFilterBackend]
    filterset_class = AuditFilter
    pagination_class = AuditCursorPagination


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


# --- Rollouts -----------------------------------------------------------------------

ROLLOUT_ACTIONS = ("advance", "pause", "resume", "cancel", "restore")


def _rollout_action_schema(summary: str) -> Any:
    return extend_schema(
        request=RolloutActionSerializer, responses={200: RolloutSerializer}, summary=summary
    )


@extend_schema_view(
    list=extend_schema(summary="Rollouts, newest first"),
    retrieve=extend_schema(summary="One rollout: its plan, state, reason and waves"),
)
@extend_schema(tags=["rollouts"])
class RolloutViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, PortalViewSet):
    """A rule's pending version approved wave by wave. The phones' progress is at
    ``/rollouts/{id}/progress/``."""

    queryset = Rollout.objects.select_related("rule__pool").prefetch_related(
        "waves__sites", "waves__groups"
    )
    serializer_class = RolloutSerializer
    filterset_class = RolloutFilter
    pagination_class = NewestFirstCursorPagination
    lookup_value_regex = r"\d+"
    action_verbs = dict.fromkeys(ROLLOUT_ACTIONS, "change")

    @extend_schema(
        request=RolloutPlanSerializer,
        responses={201: RolloutSerializer},
        summary="Plan a rollout: start approving the rule's pending version at the first wave",
    )
    def create(self, request: Request) -> Response:
        given = RolloutPlanSerializer(data=request.data)
        given.is_valid(raise_exception=True)
        values = dict(given.validated_data)
        rule = _rule_referenced(values.pop("rule"), field="rule")
        waves = tuple(wave_parse(text) for text in values.pop("waves"))
        rollout = rollout_plan(
            rule=rule, plan=RolloutPlan(waves=waves, **values), actor=self.actor()
        )
        return Response(
            RolloutSerializer(self.get_queryset().get(pk=rollout.pk)).data,
            status=status.HTTP_201_CREATED,
        )

    def _act(self, request: Request, service: Callable[..., Rollout]) -> Response:
        given = RolloutActionSerializer(data=request.data)
        given.is_valid(raise_exception=True)
        rollout = service(rollout=self.get_object(), actor=self.actor(), **given.validated_data)
        return Response(RolloutSerializer(self.get_queryset().get(pk=rollout.pk)).data)

    @_rollout_action_schema(
        "The next wave; after the last: completed, the version approved for everyone "
        "(running or paused)"
    )
    @action(detail=True, methods=["post"])
    def advance(self, request: Request, pk: str) -> Response:
        return self._act(request, rollout_advance)

    @_rollout_action_schema("Pause: the version reaches no new phone (running)")
    @action(detail=True, methods=["post"])
    def pause(self, request: Request, pk: str) -> Response:
        return self._act(request, rollout_pause)

    @_rollout_action_schema("Resume (paused or halted; after a halt only new failures count)")
    @action(detail=True, methods=["post"])
    def resume(self, request: Request, pk: str) -> Response:
        return self._act(request, rollout_resume)

    @_rollout_action_schema(
        "Cancel: phones running the version keep it, no other phone gets it (active)"
    )
    @action(detail=True, methods=["post"])
    def cancel(self, request: Request, pk: str) -> Response:
        return self._act(request, rollout_cancel)

    @_rollout_action_schema(
        "Restore: the pending version is cancelled and every phone goes back to the "
        "approved version (active)"
    )
    @action(detail=True, methods=["post"])
    def restore(self, request: Request, pk: str) -> Response:
        return self._act(request, rollout_restore)


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
