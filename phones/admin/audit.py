"""Control-panel pages for the request audit: read-only for all, exported as CSV.

Written by the phones (through the recorder), never by hand, and growing with the fleet:
the list never counts it in full, its filters take their choices from small tables (the
topology, the inventory), and a whole MAC address is searched through its index.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from django.contrib import admin
from django.contrib.admin.utils import flatten_fieldsets
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

from phones.admin.base import ReadOnlyAdmin, outcome_label
from phones.models import Device, RequestAudit
from portal.admin.csv_export import CsvExportAdmin
from portal.models import Server

REQUEST_AUDIT_CSV_HEADER = (
    "id",
    "time",
    "server",
    "channel",
    "client_address",
    "identity",
    "device_type",
    "mac",
    "serial",
    "vendor",
    "model",
    "revision",
    "locale",
    "user",
    "test_device",
    "outcome",
    "status",
    "message",
    "request_modules",
    "response_modules",
)


class _ValueFilter(admin.SimpleListFilter):
    """Filters one column by exact value; choices come from a small table, not the audit.

    A value given in the address is applied even when it is not among the choices (a
    server or model that has left the topology or the inventory still has its history).
    """

    field_name: str

    def choices_from(self) -> list[str]:
        raise NotImplementedError

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        values = self.choices_from()
        current = self.value()
        if current is not None and current not in values:
            values.append(current)
        return [(value, value) for value in values]

    def has_output(self) -> bool:
        return True

    def queryset(
        self, request: HttpRequest, queryset: QuerySet[RequestAudit]
    ) -> QuerySet[RequestAudit]:
        value = self.value()
        return queryset if value is None else queryset.filter(**{self.field_name: value})


class AuditServerFilter(_ValueFilter):
    """The servers of the topology (not a DISTINCT over the whole audit)."""

    title = "server"
    parameter_name = "server"
    field_name = "server"

    def choices_from(self) -> list[str]:
        return list(Server.objects.order_by("fqdn").values_list("fqdn", flat=True))


class AuditModelFilter(_ValueFilter):
    """The models of the inventory (not a DISTINCT over the whole audit)."""

    title = "model"
    parameter_name = "model"
    field_name = "model"

    def choices_from(self) -> list[str]:
        return list(Device.objects.order_by("model").values_list("model", flat=True).distinct())


def modules_table(headings: tuple[str, ...], rows: list[tuple[str, ...]]) -> SafeString:
    if not rows:
        return format_html("{}", "none")
    head = format_html_join("", "<th>{}</th>", ((heading,) for heading in headings))
    body = format_html_join(
        "",
        "<tr>{}</tr>",
        ((format_html_join("", "<td>{}</td>", ((cell,) for cell in row)),) for row in rows),
    )
    return format_html('<table class="modules"><tr>{}</tr>{}</table>', head, body)


@admin.register(RequestAudit)
class RequestAuditAdmin(CsvExportAdmin[RequestAudit], ReadOnlyAdmin[RequestAudit]):
    list_display = (
        "time",
        "server",
        "channel",
        "client_address",
        "mac",
        "serial",
        "user",
        "model",
        "outcome",
        "status",
    )
    list_filter = ("outcome", AuditServerFilter, "channel", AuditModelFilter, "test_device")
    search_fields = ("mac", "serial", "user")
    date_hierarchy = "created_at"
    change_list_template = "admin/phones/requestaudit/change_list.html"
    csv_header = REQUEST_AUDIT_CSV_HEADER
    csv_filename = "request-audit.csv"
    fieldsets = (
        (
            None,
            {
                "fields": (
                    "created_at",
                    "request_id",
                    "server",
                    "channel",
                    "client_address",
                    "user",
                    "outcome",
                    "status",
                    "message",
                    "test_device",
                )
            },
        ),
        (
            "phone",
            {
                "fields": (
                    "identity",
                    "device_type",
                    "mac",
                    "serial",
                    "vendor",
                    "model",
                    "revision",
                    "locale",
                )
            },
        ),
        ("modules", {"fields": ("request_modules_table", "response_modules_table")}),
    )
    # Everything shown is read-only: the list is the fieldsets' own.
    readonly_fields = tuple(flatten_fieldsets(fieldsets))

    @admin.display(description="time", ordering="created_at")
    def time(self, obj: RequestAudit) -> str:
        return f"{timezone.localtime(obj.created_at):%Y-%m-%d %H:%M:%S}"

    @admin.display(description="request modules")
    def request_modules_table(self, obj: RequestAudit) -> SafeString:
        return modules_table(
            ("update type", "file", "version"),
            [
                (m.get("update_type", ""), m.get("file", ""), m.get("version", ""))
                for m in obj.request_modules
            ],
        )

    @admin.display(description="response modules")
    def response_modules_table(self, obj: RequestAudit) -> SafeString:
        return modules_table(
            ("update type", "installed", "target", "outcome", "why"),
            [
                (
                    m.get("update_type", ""),
                    m.get("installed", ""),
                    m.get("target", ""),
                    outcome_label(m.get("outcome", "")),
                    m.get("why", ""),
                )
                for m in obj.response_modules
            ],
        )

    def csv_row(self, obj: RequestAudit) -> Sequence[Any]:
        return (
            obj.pk,
            obj.created_at.isoformat(),
            obj.server,
            obj.channel,
            obj.client_address,
            obj.identity,
            obj.device_type,
            obj.mac,
            obj.serial,
            obj.vendor,
            obj.model,
            obj.revision,
            obj.locale,
            obj.user,
            "yes" if obj.test_device else "no",
            obj.outcome,
            obj.status,
            obj.message,
            json.dumps(obj.request_modules, ensure_ascii=False, sort_keys=True),
            json.dumps(obj.response_modules, ensure_ascii=False, sort_keys=True),
        )
