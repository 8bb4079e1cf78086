"""Control-panel pages for trusted publishers: add a pasted PEM, list, remove; no edits."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin
from django.db import transaction
from django.db.models import QuerySet
from django.http import HttpRequest

from portal.admin.base import ServiceAdmin, ServiceForm, actor_of
from portal.models import TrustedPublisher
from portal.services.publishers import publisher_add, publisher_remove

DETAILS = (
    "subject",
    "issuer",
    "serial_number",
    "fingerprint_sha256",
    "not_valid_before",
    "not_valid_after",
    "added_at",
    "certificate_pem",
)


class TrustedPublisherForm(ServiceForm[TrustedPublisher]):
    class Meta:
        model = TrustedPublisher
        fields = ("certificate_pem",)
        labels = {"certificate_pem": "Certificate (PEM)"}
        help_texts = {"certificate_pem": "Paste one certificate: -----BEGIN CERTIFICATE----- …"}
        widgets = {"certificate_pem": forms.Textarea(attrs={"rows": 16, "cols": 72})}

    def apply(self) -> TrustedPublisher:
        return publisher_add(pem=self.cleaned_data["certificate_pem"], actor=self.actor)


@admin.register(TrustedPublisher)
class TrustedPublisherAdmin(ServiceAdmin[TrustedPublisher]):
    form = TrustedPublisherForm
    list_display = (
        "subject",
        "issuer",
        "fingerprint_sha256",
        "not_valid_before",
        "not_valid_after",
    )
    search_fields = ("subject", "issuer", "fingerprint_sha256")

    def get_fields(self, request: HttpRequest, obj: TrustedPublisher | None = None) -> list[Any]:
        return ["certificate_pem"] if obj is None else list(DETAILS)

    def get_readonly_fields(
        self, request: HttpRequest, obj: TrustedPublisher | None = None
    ) -> tuple[str, ...]:
        return () if obj is None else DETAILS

    # A publisher is added or removed, never edited.
    def has_change_permission(
        self, request: HttpRequest, obj: TrustedPublisher | None = None
    ) -> bool:
        return False

    def delete_model(self, request: HttpRequest, obj: TrustedPublisher) -> None:
        publisher_remove(fingerprint=obj.fingerprint_sha256, actor=actor_of(request))

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[TrustedPublisher]) -> None:
        actor = actor_of(request)
        with transaction.atomic():
            for publisher in queryset:
                publisher_remove(fingerprint=publisher.fingerprint_sha256, actor=actor)
