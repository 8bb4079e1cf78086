"""The API of outbound webhooks (``/api/v1/webhooks/``): administrators register,
change, disable and remove them; the helpdesk reads them and their attempts. A secret
is written, never read back: only the answer that registers a webhook shows it, so the
caller learns the one generated for it."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import mixins, serializers, status
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from portal.api.views import IdCursorPagination, PortalViewSet
from portal.choices import WebhookEvent
from portal.models import Webhook, WebhookDelivery
from portal.services.webhooks import (
    webhook_change,
    webhook_disable,
    webhook_register,
    webhook_remove,
)

RECENT_ATTEMPTS = 100


class WebhookDeliverySerializer(serializers.ModelSerializer[WebhookDelivery]):
    class Meta:
        model = WebhookDelivery
        fields = [
            "delivery_id",
            "event",
            "attempt",
            "attempted_at",
            "status_code",
            "error",
            "duration_ms",
        ]
        read_only_fields = fields


class WebhookSerializer(serializers.ModelSerializer[Webhook]):
    # Shapes only: the service checks the URL, the name and the secret (one clear
    # line each), so the API, the control panel and the services refuse alike.
    name = serializers.CharField(max_length=1000, trim_whitespace=False)
    url = serializers.CharField(max_length=2000, help_text="http:// or https://, no credentials")
    events = serializers.ListField(
        child=serializers.ChoiceField(choices=WebhookEvent.choices), allow_empty=False
    )
    secret = serializers.CharField(
        write_only=True,
        required=False,
        allow_blank=True,
        max_length=1000,
        trim_whitespace=False,
        help_text="Signs every delivery; generated when not given. Never read back.",
    )
    last_attempt = serializers.SerializerMethodField()

    class Meta:
        model = Webhook
        fields = [
            "id",
            "name",
            "url",
            "events",
            "enabled",
            "secret",
            "created_at",
            "updated_at",
            "last_attempt",
        ]
        read_only_fields = ["id", "created_at", "updated_at", "last_attempt"]

    def get_last_attempt(self, webhook: Webhook) -> dict[str, Any] | None:
        latest = webhook.deliveries.order_by("-attempted_at", "-id").first()
        return None if latest is None else dict(WebhookDeliverySerializer(latest).data)


class RegisteredWebhookSerializer(WebhookSerializer):
    """The answer to a registration: the only time the secret is shown."""

    secret = serializers.CharField(read_only=True)


@extend_schema_view(
    list=extend_schema(summary="Outbound webhooks (secrets never shown)"),
    retrieve=extend_schema(summary="One webhook and its last attempt"),
    create=extend_schema(
        responses={201: RegisteredWebhookSerializer},
        summary="Register a webhook; the answer shows its secret this once",
    ),
    update=extend_schema(summary="Change a webhook (a secret given replaces the old one)"),
    partial_update=extend_schema(summary="Change some of a webhook's fields"),
    destroy=extend_schema(responses={204: None}, summary="Remove a webhook and its attempts"),
)
@extend_schema(tags=["webhooks"])
class WebhookViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, PortalViewSet):
    """Receivers of signed event deliveries (see the README for the signature)."""

    queryset = Webhook.objects.all()
    serializer_class = WebhookSerializer
    pagination_class = IdCursorPagination
    filter_backends: list[Any] = []
    lookup_value_regex = r"\d+"
    action_verbs = {"disable": "change"}

    def create(self, request: Request) -> Response:
        given = self.get_serializer(data=request.data)
        given.is_valid(raise_exception=True)
        webhook = webhook_register(**given.validated_data, actor=self.actor())
        return Response(RegisteredWebhookSerializer(webhook).data, status=status.HTTP_201_CREATED)

    def update(self, request: Request, pk: str, partial: bool = False) -> Response:
        webhook = self.get_object()
        given = self.get_serializer(webhook, data=request.data, partial=partial)
        given.is_valid(raise_exception=True)
        changed = webhook_change(webhook=webhook, **given.validated_data, actor=self.actor())
        return Response(self.get_serializer(changed).data)

    def partial_update(self, request: Request, pk: str) -> Response:
        return self.update(request, pk, partial=True)

    def destroy(self, request: Request, pk: str) -> Response:
        webhook_remove(webhook=self.get_object(), actor=self.actor())
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(request=None, summary="Stop sending to a webhook")
    @action(detail=True, methods=["post"])
    def disable(self, request: Request, pk: str) -> Response:
        webhook = webhook_disable(webhook=self.get_object(), actor=self.actor())
        return Response(self.get_serializer(webhook).data)

    @extend_schema(
        responses={200: WebhookDeliverySerializer(many=True)},
        summary=f"The webhook's last {RECENT_ATTEMPTS} delivery attempts, newest first",
    )
    @action(detail=True, methods=["get"], pagination_class=None)
    def attempts(self, request: Request, pk: str) -> Response:
        recent: QuerySet[WebhookDelivery] = self.get_object().deliveries.order_by(
            "-attempted_at", "-id"
        )[:RECENT_ATTEMPTS]
        return Response(WebhookDeliverySerializer(recent, many=True).data)
