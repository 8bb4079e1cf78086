"""Control-panel pages for the audit trail: read-only for everyone, exported as CSV.

The trail only grows, so the list never counts it in full (a bounded count and no
full result count) and the export streams rows instead of building the file.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from functools import cached_property
from typing import Any, cast

from django.apps import apps
from django.contrib import admin
from django.core.paginator import Paginator
from django.db.models import QuerySet
from django.http import HttpRequest

from portal.admin.csv_export import CsvExportAdmin
from portal.display import action_label
from portal.models import AuditEntry

CSV_HEADER = (
    "id",
    "time",
    "actor",
    "action",
    "what",
    "object_type",
    "object_id",
    "object",
    "changes",
)


class BoundedCountPaginator(Paginator):
    """Counts at most ``limit`` rows; later rows are reached by filtering, not paging."""

    limit = 10_000

    @cached_property
    def count(self) -> int:
        return cast(QuerySet[Any], self.object_list)[: self.limit].count()


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


def changes_summary(changes: dict[str, Any], *, limit: int = 200) -> str:
    """``field: before → after`` for each changed field, on one line."""
    parts = []
    for name, values in changes.items():
        if isinstance(values, list) and len(values) == 2:
            parts.append(f"{name}: {_json(values[0])} → {_json(values[1])}")
        else:
            parts.append(f"{name}: {_json(values)}")
    text = "; ".join(parts)
    return text if len(text) <= limit else f"{text[: limit - 1]}…"


def object_type_label(object_type: str) -> str:
    """``portal.deviceupdaterule`` → ``device update rule``; an unknown type as written."""
    try:
        model = apps.get_model(object_type)
    except (LookupError, ValueError):
        return object_type
    return str(model._meta.verbose_name)


class ActionFilter(admin.SimpleListFilter):
    """By action, in words; the codes offered are the ones the trail holds."""

    title = "action"
    parameter_name = "action"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        codes = AuditEntry.objects.order_by().values_list("action", flat=True).distinct()
        return sorted(((code, action_label(code)) for code in codes), key=lambda c: c[1])

    def queryset(
        self, request: HttpRequest, queryset: QuerySet[AuditEntry]
    ) -> QuerySet[AuditEntry]:
        value = self.value()
        return queryset if value is None else queryset.filter(action=value)


class ObjectTypeFilter(admin.SimpleListFilter):
    """By the kind of object changed, in words."""

    title = "object"
    parameter_name = "object_type"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        types = AuditEntry.objects.order_by().values_list("object_type", flat=True).distinct()
        return sorted(((t, object_type_label(t)) for t in types), key=lambda c: c[1])

    def queryset(
        self, request: HttpRequest, queryset: QuerySet[AuditEntry]
    ) -> QuerySet[AuditEntry]:
        value = self.value()
        return queryset if value is None else queryset.filter(object_type=value)


@admin.register(AuditEntry)
class AuditEntryAdmin(CsvExportAdmin[AuditEntry]):
    # when, who, what, object, reason: what fits at 1280 px; the codes and every
    # changed field are on the entry's page.
    list_display = ("created_at", "actor_name", "what", "object", "reason")
    list_filter = (ActionFilter, ObjectTypeFilter, "actor_name")
    search_fields = ("action", "actor_name", "object_repr", "object_id")
    date_hierarchy = "created_at"
    show_full_result_count = False
    paginator = BoundedCountPaginator
    list_per_page = 100
    fields = (
        "created_at",
        "actor_name",
        "what",
        "action",
        "object_type",
        "object_id",
        "object_repr",
        "changes_pretty",
    )
    readonly_fields = fields
    change_list_template = "admin/portal/auditentry/change_list.html"
    csv_header = CSV_HEADER
    csv_filename = "audit-trail.csv"

    @admin.display(description="what", ordering="action")
    def what(self, obj: AuditEntry) -> str:
        return action_label(obj.action)

    @admin.display(description="object", ordering="object_repr")
    def object(self, obj: AuditEntry) -> str:
        return f"{object_type_label(obj.object_type)}: {obj.object_repr}"

    @admin.display(description="reason / changes")
    def reason(self, obj: AuditEntry) -> str:
        """The reason given, when the change has one; otherwise its fields, shortened."""
        reason = obj.changes.get("reason") if isinstance(obj.changes, dict) else None
        if isinstance(reason, list) and len(reason) == 2:
            reason = reason[1]
        if isinstance(reason, str) and reason:
            return reason
        return changes_summary(obj.changes, limit=120)

    @admin.display(description="changes")
    def summary(self, obj: AuditEntry) -> str:
        return changes_summary(obj.changes)

    @admin.display(description="changes")
    def changes_pretty(self, obj: AuditEntry) -> str:
        return changes_summary(obj.changes, limit=10_000)

    def csv_row(self, obj: AuditEntry) -> Sequence[Any]:
        return (
            obj.pk,
            obj.created_at.isoformat(),
            obj.actor_name,
            obj.action,
            action_label(obj.action),
            obj.object_type,
            obj.object_id,
            obj.object_repr,
            _json(obj.changes),
        )

    # The trail is written by services only: nobody adds, edits or deletes a row here.
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: AuditEntry | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: AuditEntry | None = None) -> bool:
        return False
