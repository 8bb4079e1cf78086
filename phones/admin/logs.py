"""Control-panel pages for uploaded device logs: listed and downloaded by administrators
and the helpdesk, with each server's log store usage against its quota; "Clear logs"
(administrators) deletes them by age through the log clearing service."""

from __future__ import annotations

from typing import Any

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied
from django.http import FileResponse, Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils.html import format_html
from django.utils.safestring import SafeString

from phones.admin.base import ReadOnlyAdmin
from phones.models import DeviceLog, LogStoreUsage
from phones.services.log_clearing import MAX_DAYS_BACK, logs_clear_everywhere
from portal.models import Server
from portal.selectors import log_config_effective
from portal.services.audit import Actor


@admin.register(DeviceLog)
class DeviceLogAdmin(ReadOnlyAdmin[DeviceLog]):
    """Uploaded device logs: listed, filtered and downloadable by administrators and the
    helpdesk; "Clear logs" (administrators) deletes those older than N days."""

    list_display = ("created_at", "log_type", "device", "name", "size", "server", "download")
    list_filter = ("log_type", "server", ("created_at", admin.DateFieldListFilter))
    search_fields = ("device", "name", "serial")
    date_hierarchy = "created_at"
    change_list_template = "admin/phones/devicelog/change_list.html"

    @admin.display(description="file")
    def download(self, obj: DeviceLog) -> SafeString:
        url = reverse("admin:phones_devicelog_download", args=[obj.pk])
        return format_html('<a href="{}">download</a>', url)

    def get_urls(self) -> list[URLPattern]:
        extra = [
            path(
                "<int:pk>/download/",
                self.admin_site.admin_view(self.download_view),
                name="phones_devicelog_download",
            ),
            path(
                "clear/",
                self.admin_site.admin_view(self.clear_view),
                name="phones_devicelog_clear",
            ),
        ]
        return extra + super().get_urls()

    def download_view(self, request: HttpRequest, pk: int) -> FileResponse:
        if not self.has_view_permission(request):
            raise PermissionDenied
        log = DeviceLog.objects.filter(pk=pk, server=settings.SERVER_FQDN).first()
        path_on_disk = settings.DEVICE_LOG_DIR / log.path if log else None
        if log is None or path_on_disk is None or not path_on_disk.is_file():
            raise Http404("no such log on this server")
        return FileResponse(path_on_disk.open("rb"), as_attachment=True, filename=log.name)

    def clear_view(self, request: HttpRequest) -> HttpResponse:
        if not request.user.has_perm("phones.delete_devicelog"):
            raise PermissionDenied
        form = ClearLogsForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            days = form.cleaned_data["days_back"]
            user = request.user
            assert isinstance(user, User)
            cleared = logs_clear_everywhere(days_back=days, actor=Actor.of_user(user))
            result, others = cleared.here, cleared.queued_servers
            self.message_user(
                request,
                f"Removed {result.device_logs} device logs ({result.device_log_bytes} bytes), "
                f"{result.audit_rows} audit rows and {result.audit_files} audit files older "
                f"than {days} days; queued for {len(others)} other server(s).",
                messages.SUCCESS,
            )
            return HttpResponseRedirect(reverse("admin:phones_devicelog_changelist"))
        context = {
            **self.admin_site.each_context(request),
            "title": "Clear device and audit logs",
            "form": form,
            "opts": self.model._meta,
        }
        return TemplateResponse(request, "admin/phones/devicelog/clear.html", context)

    def changelist_view(
        self, request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        usage = {row.server: row for row in LogStoreUsage.objects.all()}
        servers = []
        for server in Server.objects.select_related("pool__site").order_by("fqdn"):
            quota = log_config_effective(site=server.pool.site).log_store_quota
            used = usage[server.fqdn].total_bytes if server.fqdn in usage else 0
            servers.append(
                {"fqdn": server.fqdn, "used": used, "quota": quota, "percent": 100 * used // quota}
            )
        extra = {
            **(extra_context or {}),
            "log_store_usage": servers,
            "can_clear": request.user.has_perm("phones.delete_devicelog"),
        }
        return super().changelist_view(request, extra)


class ClearLogsForm(forms.Form):
    days_back = forms.IntegerField(
        min_value=1, max_value=MAX_DAYS_BACK, label="Delete logs older than (days)", initial=10
    )
