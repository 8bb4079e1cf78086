"""Control-panel pages for replication: every copy on every server, and a dashboard.

Rows are written by the servers' workers only, so both pages are read-only; a server
is asked to check and repair its store with the "Re-sync" action of the server list.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import URLPattern, path

from portal.admin.audit import BoundedCountPaginator
from portal.models import ServerFile
from portal.selectors import replication_overview

LAGGING_SHOWN = 50


@admin.register(ServerFile)
class ServerFileAdmin(admin.ModelAdmin[ServerFile]):
    list_display = ("server", "file", "state", "error", "attempts", "updated_at", "verified_at")
    list_filter = ("state", "server")
    list_select_related = ("server", "file")
    search_fields = ("file__storage_name",)
    # One row per file per server: filters use the (server, state) index, no full count.
    show_full_result_count = False
    paginator = BoundedCountPaginator
    list_per_page = 100
    fields = ("server", "file", "state", "error", "attempts", "updated_at", "verified_at")
    readonly_fields = fields
    change_list_template = "admin/portal/serverfile/change_list.html"
    dashboard_template = "admin/portal/serverfile/dashboard.html"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: ServerFile | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: ServerFile | None = None) -> bool:
        return False

    def get_urls(self) -> list[URLPattern]:
        dashboard = path(
            "dashboard/",
            self.admin_site.admin_view(self.dashboard_view),
            name="portal_serverfile_dashboard",
        )
        return [dashboard, *super().get_urls()]

    def dashboard_view(self, request: HttpRequest) -> HttpResponse:
        """Per server: files by state, and the files it still lacks (failed first)."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        context: dict[str, Any] = {
            **self.admin_site.each_context(request),
            "title": "Replication",
            "subtitle": None,
            "opts": self.opts,
            "servers": replication_overview(lagging_limit=LAGGING_SHOWN),
            "lagging_limit": LAGGING_SHOWN,
        }
        request.current_app = self.admin_site.name
        return TemplateResponse(request, self.dashboard_template, context)
