"""Control-panel pages for package imports and the update versions they stored.

A package is imported only through the "Import device update" page, which streams
the upload to ``package_import_start`` (never reading it whole) and shows the job;
the job and version pages are read-only, with the import's report and the state of
every copy on every server. The same page's "Dry run" shows what the import would find
and decide (``package_inspect``), writing nothing. Importing and dry runs need
``add_importjob``, so the helpdesk can look but never import.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.template.loader import render_to_string
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils.safestring import SafeString

from portal.admin.base import LabelledTabularInline, actor_of
from portal.choices import ImportStatus
from portal.display import format_size, state_badge, state_tone
from portal.errors import DomainError
from portal.models import ImportJob, Pool, UpdateFile, UpdateVersion
from portal.packaging.cabinet import lzx_support
from portal.selectors import (
    import_reach,
    import_replication_matrix,
    version_replication_matrix,
)
from portal.services.imports import package_import_start, package_inspect


class PackageImportForm(forms.Form):
    package = forms.FileField(
        label="Update package (.cab)",
        help_text="The vendor's cabinet, usually UCUpdates.cab.",
        widget=forms.ClearableFileInput(attrs={"accept": ".cab"}),
    )
    pools = forms.ModelMultipleChoiceField(
        queryset=Pool.objects.order_by("fqdn"),
        widget=forms.CheckboxSelectMultiple,
        help_text="The pools whose rules get the package's versions as pending.",
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["pools"].initial = list(Pool.objects.values_list("pk", flat=True))


def import_status(job: ImportJob) -> dict[str, Any]:
    """The live part of an import's page: its state in words, its progress and why."""
    finished = job.status in ImportStatus.finished()
    if job.status == ImportStatus.FAILED:
        reason = job.error or job.step
    elif job.status == ImportStatus.SUCCEEDED:
        # Stored, then copied to the servers: the page follows until each one is done.
        reach = import_reach(job=job)
        reason, finished = reach.words or job.step, reach.settled
    else:
        reason = job.step or "waiting for a worker"
    return {
        "status": job.status,
        "label": job.get_status_display(),
        "tone": state_tone(job.status),
        "progress": job.progress,
        "reason": reason,
        "finished": finished,
    }


@admin.register(ImportJob)
class ImportJobAdmin(admin.ModelAdmin[ImportJob]):
    # when, who, file, state, reason: what fits at 1280 px; the signer, the updates,
    # the warnings and the replication are on the import's page.
    list_display = (
        "id",
        "created_at",
        "actor_name",
        "package_name",
        "size",
        "state",
        "reason",
    )
    list_display_links = ("id", "package_name")
    list_filter = ("status", "actor_name")
    search_fields = ("package_name", "package_sha256")
    date_hierarchy = "created_at"
    fields = (
        "id",
        "status",
        "progress_percent",
        "step",
        "error",
        "actor_name",
        "created_at",
        "started_at",
        "lease_expires_at",
        "finished_at",
        "package_name",
        "size",
        "package_sha256",
        "target_pools",
        "signer",
        "cabinet_signed_by",
        "report",
        "warning_list",
        "replication",
        "replication_matrix",
    )
    readonly_fields = fields
    change_list_template = "admin/portal/importjob/change_list.html"
    change_form_template = "admin/portal/importjob/change_form.html"
    import_template = "admin/portal/importjob/import_form.html"

    def get_queryset(self, request: HttpRequest) -> QuerySet[ImportJob]:
        return super().get_queryset(request).prefetch_related("pools")

    @admin.display(description="size", ordering="package_size")
    def size(self, obj: ImportJob) -> str:
        return format_size(obj.package_size)

    @admin.display(description="state", ordering="status")
    def state(self, obj: ImportJob) -> SafeString:
        if obj.status == ImportStatus.RUNNING:
            return state_badge(obj.status, f"running, {obj.progress}%")
        return state_badge(obj.status, obj.get_status_display())

    @admin.display(description="reason / outcome")
    def reason(self, obj: ImportJob) -> str:
        """Why it failed; what it is doing; or what it found."""
        if obj.status == ImportStatus.FAILED:
            return obj.error or obj.step or "-"
        if obj.status == ImportStatus.SUCCEEDED:
            updates, warnings = len(obj.updates), len(obj.warnings)
            text = f"{updates} update{'s' if updates != 1 else ''}"
            if warnings:
                text += f", {warnings} warning{'s' if warnings != 1 else ''}"
            return f"{text}; {obj.replication}" if obj.replication else text
        return obj.step or "waiting for a worker"

    @admin.display(description="progress", ordering="progress")
    def progress_percent(self, obj: ImportJob) -> str:
        return f"{obj.progress}%"

    @admin.display(description="updates")
    def update_count(self, obj: ImportJob) -> int:
        return len(obj.updates)

    @admin.display(description="warnings")
    def warning_count(self, obj: ImportJob) -> int:
        return len(obj.warnings)

    @admin.display(description="pools")
    def target_pools(self, obj: ImportJob) -> str:
        return ", ".join(pool.fqdn for pool in obj.pools.all()) or "-"

    # The report pieces are rendered by autoescaping templates; render_to_string returns
    # safe HTML, which the read-only page shows as is.
    @admin.display(description="updates found")
    def report(self, obj: ImportJob) -> str:
        return render_to_string("admin/portal/importjob/report.html", {"updates": obj.updates})

    @admin.display(description="cabinet signed by")
    def cabinet_signed_by(self, obj: ImportJob) -> str:
        return obj.cabinet_signer or "not signed"

    @admin.display(description="warnings")
    def warning_list(self, obj: ImportJob) -> str:
        return render_to_string("admin/portal/importjob/warnings.html", {"warnings": obj.warnings})

    @admin.display(description="replication per server")
    def replication_matrix(self, obj: ImportJob) -> str:
        return render_to_string(
            "admin/portal/replication/version_matrix.html",
            {"matrix": import_replication_matrix(job=obj)},
        )

    # Jobs are made by the import page only and never edited or deleted by hand.
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: ImportJob | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: ImportJob | None = None) -> bool:
        return False

    def has_import_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("portal.add_importjob")

    def changelist_view(
        self, request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        context = {"has_import_permission": self.has_import_permission(request)}
        return super().changelist_view(request, {**context, **(extra_context or {})})

    def get_urls(self) -> list[URLPattern]:
        page = path(
            "import/",
            self.admin_site.admin_view(self.import_view),
            name="portal_importjob_import",
        )
        status = path(
            "<int:pk>/status.json",
            self.admin_site.admin_view(self.status_view),
            name="portal_importjob_status",
        )
        return [page, status, *super().get_urls()]

    def status_view(self, request: HttpRequest, pk: int) -> JsonResponse:
        """What the import's page shows of a running job, polled by portal/live.js."""
        job = ImportJob.objects.filter(pk=pk).first()
        if job is None or not self.has_view_permission(request, job):
            return JsonResponse({"error": f"no import #{pk}"}, status=404)
        return JsonResponse(import_status(job))

    def render_change_form(
        self,
        request: HttpRequest,
        context: dict[str, Any],
        add: bool = False,
        change: bool = False,
        form_url: str = "",
        obj: ImportJob | None = None,
    ) -> HttpResponse:
        if obj is not None:
            context["live"] = import_status(obj)
            context["live_url"] = reverse("admin:portal_importjob_status", args=[obj.pk])
        return super().render_change_form(request, context, add, change, form_url, obj)

    def import_view(self, request: HttpRequest) -> HttpResponse:
        """Upload a package and queue its import (the job page then shows how it went),
        or, with "Dry run", show what the import would find and decide, writing nothing."""
        if not self.has_import_permission(request):
            raise PermissionDenied
        inspection = None
        if request.method == "POST":
            form = PackageImportForm(request.POST, request.FILES)
            if form.is_valid():
                upload = form.cleaned_data["package"]
                try:
                    if "dry_run" in request.POST:
                        inspection = package_inspect(
                            source=upload.chunks(), filename=upload.name or ""
                        )
                    else:
                        job = package_import_start(
                            source=upload.chunks(),
                            filename=upload.name or "",
                            pools=list(form.cleaned_data["pools"]),
                            actor=actor_of(request),
                        )
                        self.message_user(request, f"Import #{job.pk} queued", messages.SUCCESS)
                        return HttpResponseRedirect(
                            reverse("admin:portal_importjob_change", args=[job.pk])
                        )
                except DomainError as error:
                    field = error.field if error.field in form.fields else None
                    form.add_error(field, error.message)
        else:
            form = PackageImportForm()
        context = {
            **self.admin_site.each_context(request),
            "title": "Import device update",
            "subtitle": None,
            "opts": self.opts,
            "form": form,
            "inspection": inspection,
            "lzx_notice": lzx_support(),
            "media": self.media + form.media,
        }
        request.current_app = self.admin_site.name
        return TemplateResponse(request, self.import_template, context)


class UpdateFileInline(LabelledTabularInline[UpdateFile, UpdateVersion]):
    """Read-only: the version page cannot be edited, so the admin disables its inlines."""

    model = UpdateFile
    extra = 0
    fields = ("name", "role", "size", "sha256")
    readonly_fields = fields
    can_delete = False


@admin.register(UpdateVersion)
class UpdateVersionAdmin(admin.ModelAdmin[UpdateVersion]):
    list_display = (
        "folder",
        "device_type",
        "version",
        "signer",
        "catalog_digest",
        "created_at",
        "import_job",
    )
    list_filter = ("brand", "model")
    list_select_related = ("import_job",)
    search_fields = ("folder", "version", "rule_id")
    fields = (
        "folder",
        "rule_id",
        "device_type",
        "brand",
        "model",
        "revision",
        "locale",
        "version",
        "update_type",
        "release_date",
        "description",
        "signer",
        "catalog_digest",
        "import_job",
        "created_at",
        "replication_matrix",
    )
    readonly_fields = fields
    inlines = (UpdateFileInline,)

    @admin.display(description="replication per server")
    def replication_matrix(self, obj: UpdateVersion) -> str:
        return render_to_string(
            "admin/portal/replication/file_matrix.html",
            {"matrix": version_replication_matrix(version=obj)},
        )

    # Versions are stored by imports only; a version never changes.
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: UpdateVersion | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: UpdateVersion | None = None) -> bool:
        return False
