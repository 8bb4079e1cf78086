"""Control-panel pages for outbound webhooks: register, change, disable, remove through
the services; every delivery attempt listed per webhook. A secret is never shown once
set (the helpdesk, who may look, sees neither it nor a field to change it)."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db import transaction
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.urls import reverse
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString, mark_safe

from portal.admin.audit import BoundedCountPaginator
from portal.admin.base import ServiceAdmin, ServiceForm, actor_of
from portal.choices import WebhookEvent
from portal.errors import DomainError
from portal.models import Webhook, WebhookDelivery
from portal.services.webhooks import (
    webhook_change,
    webhook_disable,
    webhook_register,
    webhook_remove,
)

RECENT_ATTEMPTS = 20
MASKED = "•••••••• (hidden)"
SHOWN = ("name", "url", "events_display", "enabled", "secret_display", "created_at",
         "updated_at", "recent_attempts")  # fmt: skip


class WebhookForm(ServiceForm[Webhook]):
    events = forms.MultipleChoiceField(
        choices=WebhookEvent.choices, widget=forms.CheckboxSelectMultiple
    )
    secret = forms.CharField(
        required=False,
        strip=False,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
        help_text="Signs every delivery. Leave empty to keep the current one (or, for a new "
        "webhook, to have one generated and shown once).",
    )

    class Meta:
        model = Webhook
        fields = ("name", "url", "events", "enabled")
        labels = {"url": "URL"}
        help_texts = {"url": "http:// or https://, without user:password@."}

    def apply(self) -> Webhook:
        data = self.cleaned_data
        values = {
            "name": data["name"],
            "url": data["url"],
            "events": data["events"],
            "enabled": data["enabled"],
            "secret": data.get("secret") or None,
        }
        if self.instance.pk is None:
            return webhook_register(actor=self.actor, **values)
        # A fresh copy: the form's instance already holds the new values.
        stored = Webhook.objects.get(pk=self.instance.pk)
        return webhook_change(webhook=stored, actor=self.actor, **values)


@admin.register(Webhook)
class WebhookAdmin(ServiceAdmin[Webhook]):
    form = WebhookForm
    list_display = ("name", "url", "events_display", "enabled", "last_answer")
    list_filter = ("enabled",)
    search_fields = ("name", "url")
    actions = ["disable_selected"]

    def get_fields(self, request: HttpRequest, obj: Webhook | None = None) -> list[Any]:
        if obj is None:
            return ["name", "url", "events", "enabled", "secret"]
        if not self.has_change_permission(request, obj):
            return list(SHOWN)
        return ["name", "url", "events", "enabled", "secret_display", "secret",
                "recent_attempts"]  # fmt: skip

    def get_readonly_fields(
        self, request: HttpRequest, obj: Webhook | None = None
    ) -> tuple[str, ...]:
        return () if obj is None else ("secret_display", "recent_attempts")

    @admin.display(description="events")
    def events_display(self, obj: Webhook) -> str:
        return ", ".join(obj.events)

    @admin.display(description="secret")
    def secret_display(self, obj: Webhook) -> str:
        return MASKED

    @admin.display(description="last answer")
    def last_answer(self, obj: Webhook) -> str:
        latest = obj.deliveries.order_by("-attempted_at", "-id").first()
        if latest is None:
            return "-"
        return f"{latest.answer} ({latest.event}, attempt {latest.attempt})"

    @admin.display(description=f"last {RECENT_ATTEMPTS} attempts")
    def recent_attempts(self, obj: Webhook) -> SafeString:
        recent = obj.deliveries.order_by("-attempted_at", "-id")[:RECENT_ATTEMPTS]
        rows = format_html_join(
            "",
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{} ms</td><td>{}</td></tr>",
            (
                (d.attempted_at.isoformat(timespec="seconds"), d.event, d.attempt, d.answer,
                 d.duration_ms, d.delivery_id)
                for d in recent
            ),
        )  # fmt: skip
        everything = reverse("admin:portal_webhookdelivery_changelist")
        return format_html(
            "<table><thead><tr><th>when</th><th>event</th><th>attempt</th><th>answer</th>"
            "<th>took</th><th>delivery</th></tr></thead><tbody>{}</tbody></table>"
            '<p><a href="{}?webhook__id__exact={}">every attempt</a></p>',
            rows or mark_safe('<tr><td colspan="6">none yet</td></tr>'),  # noqa: S308 - constant
            everything,
            obj.pk,
        )

    def response_add(
        self, request: HttpRequest, obj: Webhook, post_url_continue: str | None = None
    ) -> HttpResponse:
        if not request.POST.get("secret"):
            self.message_user(
                request,
                f"The secret generated for {obj.name} is {obj.secret} — give it to the "
                "receiver now: it is not shown again.",
                messages.WARNING,
            )
        return super().response_add(request, obj, post_url_continue)

    @admin.action(description="Disable the selected webhooks", permissions=["change"])
    def disable_selected(self, request: HttpRequest, queryset: QuerySet[Webhook]) -> None:
        actor = actor_of(request)
        disabled = 0
        try:
            with transaction.atomic():
                for webhook in queryset.filter(enabled=True):
                    webhook_disable(webhook=webhook, actor=actor)
                    disabled += 1
        except DomainError as error:
            self.message_user(request, error.message, messages.ERROR)
            return
        self.message_user(request, f"{disabled} webhook(s) disabled.", messages.SUCCESS)

    def delete_model(self, request: HttpRequest, obj: Webhook) -> None:
        webhook_remove(webhook=obj, actor=actor_of(request))

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Webhook]) -> None:
        actor = actor_of(request)
        with transaction.atomic():
            for webhook in queryset:
                webhook_remove(webhook=webhook, actor=actor)


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(admin.ModelAdmin[WebhookDelivery]):
    """Every attempt, newest first; written only by the delivery task."""

    list_display = ("attempted_at", "webhook", "event", "attempt", "answer", "duration_ms",
                    "delivery_id")  # fmt: skip
    list_filter = ("webhook", "event")
    list_select_related = ("webhook",)
    search_fields = ("delivery_id",)
    show_full_result_count = False
    paginator = BoundedCountPaginator

    @admin.display(description="answer")
    def answer(self, obj: WebhookDelivery) -> str:
        return obj.answer

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(
        self, request: HttpRequest, obj: WebhookDelivery | None = None
    ) -> bool:
        return False

    def has_delete_permission(
        self, request: HttpRequest, obj: WebhookDelivery | None = None
    ) -> bool:
        return False
