"""API views of the rules (``portal.services.rules``)."""

from __future__ import annotations

from dataclasses import asdict

from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.utils import (
    extend_schema,
    extend_schema_view,
)
from rest_framework import mixins, status
from rest_framework.decorators import action
from rest_framework.filters import OrderingFilter
from rest_framework.request import Request
from rest_framework.response import Response

from portal.api.filters import (
    RuleFilter,
)
from portal.api.serializers import (
    RuleBulkActionSerializer,
    RuleBulkResultSerializer,
    RuleSerializer,
)
from portal.api.views.base import IdCursorPagination, PortalViewSet
from portal.choices import RuleAction
from portal.errors import DomainError
from portal.models import (
    DeviceUpdateRule,
)
from portal.selectors import rule_by_identity
from portal.services.rules import rule_approve, rule_remove, rule_reset, rule_restore, rules_apply

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
