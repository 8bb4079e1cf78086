"""Control-panel pages for test devices: add, change, remove through the service."""

from __future__ import annotations

import contextlib
from typing import Any

from django import forms
from django.contrib import admin
from django.db import transaction
from django.db.models import QuerySet
from django.http import HttpRequest

from portal.admin.base import ServiceAdmin, ServiceForm, actor_of, scope_choices
from portal.errors import DomainError
from portal.models import Site, TestDevice
from portal.selectors import scope_resolve
from portal.services.testdevices import testdevice_create, testdevice_delete, testdevice_update


class TestDeviceForm(ServiceForm[TestDevice]):
    scope = forms.ChoiceField(initial="global", help_text="global, or one site's scope.")

    class Meta:
        model = TestDevice
        fields = ("name", "identifier_type", "identifier")
        help_texts = {
            "identifier": "MAC address (six or more hex pairs, joined or separated by - or :)"
            " or serial number (letters, digits, - and _).",
        }

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        scope = self.fields["scope"]
        assert isinstance(scope, forms.ChoiceField)
        scope.choices = scope_choices()
        if self.instance.pk is not None:
            self.initial["scope"] = self.instance.scope

    def clean(self) -> dict[str, Any]:
        scope = self.cleaned_data.get("scope")
        if scope:
            # So the model's own (scope, name) constraint check looks at the right scope.
            # A scope the service refuses is named by the check in super().clean().
            with contextlib.suppress(DomainError):
                self.instance.site = scope_resolve(scope)
        return super().clean()

    def apply(self) -> TestDevice:
        data = self.cleaned_data
        values = {
            "scope": data["scope"],
            "name": data["name"],
            "identifier_type": data["identifier_type"],
            "identifier": data["identifier"],
        }
        if self.instance.pk is None:
            return testdevice_create(actor=self.actor, **values)
        # A fresh copy: the form's instance already holds the new values, and the
        # service records the difference from what is stored.
        stored = TestDevice.objects.select_related("site").get(pk=self.instance.pk)
        return testdevice_update(device=stored, actor=self.actor, **values)


class ScopeFilter(admin.SimpleListFilter):
    title = "scope"
    parameter_name = "scope"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return scope_choices()

    def queryset(
        self, request: HttpRequest, queryset: QuerySet[TestDevice]
    ) -> QuerySet[TestDevice]:
        value = self.value()
        if value is None:
            return queryset
        if value == "global":
            return queryset.filter(site__isnull=True)
        name = value.removeprefix("site:")
        return queryset.filter(site__in=Site.objects.filter(name=name))


@admin.register(TestDevice)
class TestDeviceAdmin(ServiceAdmin[TestDevice]):
    form = TestDeviceForm
    fields = ("scope", "name", "identifier_type", "identifier")
    list_display = ("name", "scope_display", "identifier_type", "identifier", "created_at")
    list_filter = (ScopeFilter, "identifier_type")
    list_select_related = ("site",)
    search_fields = ("name", "identifier")

    @admin.display(description="scope", ordering="site__name")
    def scope_display(self, obj: TestDevice) -> str:
        return obj.scope

    def delete_model(self, request: HttpRequest, obj: TestDevice) -> None:
        testdevice_delete(device=obj, actor=actor_of(request))

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[TestDevice]) -> None:
        actor = actor_of(request)
        with transaction.atomic():
            for device in queryset.select_related("site"):
                testdevice_delete(device=device, actor=actor)
