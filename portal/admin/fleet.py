"""Control-panel pages for the fleet: device groups (their own pages) and maintenance
windows (an inline of the site's page, added and deleted through the window services,
never edited in place). Per-phone holds and pins are on each phone's page
(``phones.admin.inventory``), which the portal does not import.
"""

from __future__ import annotations

import re
from typing import Any

from django import forms
from django.contrib import admin
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Count, QuerySet
from django.forms import BaseInlineFormSet, ModelForm
from django.http import HttpRequest

from portal.admin.base import (
    LabelledInlineFormSet,
    LabelledTabularInline,
    ServiceAdmin,
    ServiceForm,
    actor_of,
    service_check,
)
from portal.errors import DomainError
from portal.models import DeviceGroup, MaintenanceWindow, Site
from portal.services.audit import Actor
from portal.services.fleet import (
    device_group_delete,
    device_group_save,
    maintenance_window_create,
    maintenance_window_delete,
)

MEMBER_SEPARATORS = re.compile(r"[\s,;]+")


class DeviceGroupForm(ServiceForm[DeviceGroup]):
    members = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 10, "cols": 40}),
        help_text="The group's phones, one a line: MAC addresses in any form (00-04-F2-11-22-33)"
        " or serial numbers (SN:CX6-0012345 when a serial could be read as a MAC).",
    )

    class Meta:
        model = DeviceGroup
        fields = ("name", "description")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.instance.pk is not None:
            self.initial["members"] = "\n".join(
                member.identity for member in self.instance.members.all()
            )

    def validate_unique(self) -> None:
        """The service checks names itself, ignoring case (one message, not two)."""

    def apply(self) -> DeviceGroup:
        data = self.cleaned_data
        # A fresh copy: the service records the difference from what is stored.
        stored = (
            DeviceGroup.objects.get(pk=self.instance.pk) if self.instance.pk is not None else None
        )
        try:
            return device_group_save(
                name=data["name"],
                description=data.get("description") or "",
                members=[m for m in MEMBER_SEPARATORS.split(data.get("members") or "") if m],
                group=stored,
                actor=self.actor,
            )
        except DomainError as error:
            if error.field == "identity":  # one member the service could not read
                raise DomainError(error.message, field="members", code=error.code) from None
            raise


@admin.register(DeviceGroup)
class DeviceGroupAdmin(ServiceAdmin[DeviceGroup]):
    form = DeviceGroupForm
    list_display = ("name", "description", "member_count", "created_at")
    search_fields = ("name", "description")
    readonly_fields = ("member_list",)

    def get_fields(self, request: HttpRequest, obj: DeviceGroup | None = None) -> tuple[str, ...]:
        # The members are a form field, not a model field: who only looks sees a list.
        if obj is None or self.has_change_permission(request, obj):
            return ("name", "description", "members")
        return ("name", "description", "member_list")

    @admin.display(description="members")
    def member_list(self, obj: DeviceGroup) -> str:
        return ", ".join(member.identity for member in obj.members.all()) or "-"

    def get_queryset(self, request: HttpRequest) -> QuerySet[DeviceGroup]:
        return super().get_queryset(request).annotate(member_total=Count("members"))

    @admin.display(description="phones", ordering="member_total")
    def member_count(self, obj: DeviceGroup) -> int:
        return int(getattr(obj, "member_total", 0))

    def delete_model(self, request: HttpRequest, obj: DeviceGroup) -> None:
        device_group_delete(group=obj, actor=actor_of(request))

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[DeviceGroup]) -> None:
        actor = actor_of(request)
        with transaction.atomic():
            for group in queryset:
                device_group_delete(group=group, actor=actor)


# -- maintenance windows ----------------------------------------------------------------


def _deleted(form: ModelForm[MaintenanceWindow]) -> bool:
    return bool(form.cleaned_data.get("DELETE", False))


class MaintenanceWindowFormSet(LabelledInlineFormSet):
    """The site's windows: ``clean()`` dry-runs the deletions and new windows through
    the services, so a refusal (empty, overlapping) shows on the row at fault."""

    actor: Actor  # set per request by MaintenanceWindowInline.get_formset

    def _new_forms(self) -> list[ModelForm[MaintenanceWindow]]:
        return [
            form
            for form in self.forms
            if form.instance.pk is None and form.has_changed() and not _deleted(form)
        ]

    def clean(self) -> None:
        super().clean()
        if any(self.errors):
            return
        blamed: list[ModelForm[MaintenanceWindow]] = []

        def apply() -> None:
            for form in self.forms:
                if form.instance.pk is not None and _deleted(form):
                    # A copy: delete() clears the pk of the object it deletes, and the
                    # form's own instance is deleted again for real by save_formset.
                    window = MaintenanceWindow.objects.get(pk=form.instance.pk)
                    maintenance_window_delete(window=window, actor=self.actor)
            for form in self._new_forms():
                blamed[:] = [form]
                data = form.cleaned_data
                maintenance_window_create(
                    site=self.instance,
                    weekday=data["weekday"],
                    start=data["start"],
                    end=data["end"],
                    actor=self.actor,
                )

        error = service_check(apply)
        if error is not None:
            if not blamed:  # a deletion refused: no row to point at
                raise ValidationError(error.message)
            form = blamed[0]
            field = error.field if error.field in form.fields else None
            form.add_error(field, error.message)


class MaintenanceWindowInline(LabelledTabularInline[MaintenanceWindow, Site]):
    """Added and deleted, never edited: the services create and delete windows."""

    model = MaintenanceWindow
    formset = MaintenanceWindowFormSet
    extra = 0
    fields = ("weekday", "start", "end")

    def get_formset(
        self, request: HttpRequest, obj: Site | None = None, **kwargs: Any
    ) -> type[BaseInlineFormSet[MaintenanceWindow, Site, Any]]:
        formset = super().get_formset(request, obj, **kwargs)
        if request.user.is_authenticated:
            return type(formset.__name__, (formset,), {"actor": actor_of(request)})
        return formset

    # The stubs type the inline's obj as the parent, as Django passes it.
    def has_change_permission(  # type: ignore[override]
        self, request: HttpRequest, obj: Site | None = None
    ) -> bool:
        return False
