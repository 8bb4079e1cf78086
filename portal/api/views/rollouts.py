"""API views of staged rollouts: plan and state (``portal.services.rollouts``);
the phone side's progress and outcomes are ``phones.api``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from drf_spectacular.utils import (
    extend_schema,
    extend_schema_view,
)
from rest_framework import mixins, status
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from portal.api.filters import (
    RolloutFilter,
)
from portal.api.serializers import (
    RolloutActionSerializer,
    RolloutPlanSerializer,
    RolloutSerializer,
)
from portal.api.views.base import NewestFirstCursorPagination, PortalViewSet
from portal.api.views.rules import _rule_referenced
from portal.models import (
    Rollout,
)
from portal.services.rollout_plans import RolloutPlan, wave_parse
from portal.services.rollouts import (
    rollout_advance,
    rollout_cancel,
    rollout_pause,
    rollout_plan,
    rollout_restore,
    rollout_resume,
)

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
