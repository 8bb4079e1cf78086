"""Control-panel pages for the audit trail: read-only for everyone, exported as CSV.

The trail only grows, so the list never counts it in full (a bounded count and no
full result count) and the export streams rows instead of building the file.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from functools import cached_property
from typing import Any, cast

from django.contrib import admin
from django.contrib.admin.options import IncorrectLookupParameters
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, StreamingHttpResponse
from django.urls import URLPattern, path, reverse

from portal.models import AuditEntry

CSV_HEADER = (
    "id",
    "time",
    "actor",
    "action",
    "object_type",
    "object_id",
    "object",
    "changes",
)
# A spreadsheet runs a cell starting with one of these as a formula (OWASP "CSV injection").
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


class BoundedCountPaginator(Paginator):
    """Counts at most ``limit`` rows; later rows are reached by filtering, not paging."""

    limit = 10_000

    @cached_property
    def count(self) -> int:
        return cast(QuerySet[Any], self.object_list)[: self.limit].count()


def csv_cell(value: Any) -> str:
    """The text of one cell, with a leading quote when a spreadsheet would run it."""
    text = "" if value is None else str(value)
    return f"'{text}" if text.startswith(_FORMULA_STARTS) else text


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


class _Echo:
    """A file-like object whose ``write`` hands the line back to the CSV writer's caller."""

    def write(self, value: str) -> str:
        return value


def audit_csv_rows(entries: Any) -> Iterator[str]:
    writer = csv.writer(_Echo())
    yield writer.writerow(CSV_HEADER)
    for entry in entries.iterator(chunk_size=2000):
        yield writer.writerow(
            [
                csv_cell(entry.pk),
                csv_cell(entry.created_at.isoformat()),
                csv_cell(entry.actor_name),
                csv_cell(entry.action),
                csv_cell(entry.object_type),
                csv_cell(entry.object_id),
                csv_cell(entry.object_repr),
                csv_cell(_json(entry.changes)),
            ]
        )


@admin.register(AuditEntry)
class AuditEntryAdmin(admin.ModelAdmin[AuditEntry]):
    list_display = ("created_at", "actor_name", "action", "object_type", "object_repr", "summary")
    list_filter = ("action", "object_type", "actor_name")
    search_fields = ("action", "actor_name", "object_repr", "object_id")
    date_hierarchy = "created_at"
    show_full_result_count = False
    paginator = BoundedCountPaginator
    list_per_page = 100
    fields = (
        "created_at",
        "actor_name",
        "action",
        "object_type",
        "object_id",
        "object_repr",
        "changes_pretty",
    )
    readonly_fields = fields
    change_list_template = "admin/portal/auditentry/change_list.html"

    @admin.display(description="changes")
    def summary(self, obj: AuditEntry) -> str:
        return changes_summary(obj.changes)

    @admin.display(description="changes")
    def changes_pretty(self, obj: AuditEntry) -> str:
        return changes_summary(obj.changes, limit=10_000)

    # The trail is written by services only: nobody adds, edits or deletes a row here.
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: AuditEntry | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: AuditEntry | None = None) -> bool:
        return False

    def get_urls(self) -> list[URLPattern]:
        export = path(
            "export.csv",
            self.admin_site.admin_view(self.export_csv_view),
            name="portal_auditentry_export",
        )
        return [export, *super().get_urls()]

    def export_csv_view(self, request: HttpRequest) -> HttpResponse | StreamingHttpResponse:
        """The rows the list shows with the same filters and search, as CSV."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        try:
            changelist = self.get_changelist_instance(request)
        except IncorrectLookupParameters:
            return HttpResponseRedirect(f"{reverse('admin:portal_auditentry_changelist')}?e=1")
        response = StreamingHttpResponse(
            audit_csv_rows(changelist.queryset), content_type="text/csv; charset=utf-8"
        )
        response["Content-Disposition"] = 'attachment; filename="audit-trail.csv"'
        return response
