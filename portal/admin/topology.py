"""Control-panel pages for the topology: sites, pools, servers (saved and deleted audited).

A site's page also holds its time zone and its maintenance windows (added and deleted
through the window services, never edited in place); a server's page its cap on new
offers per minute.
"""

from __future__ import annotations

from typing import Any, TypeVar

from django.contrib import admin, messages
from django.contrib.admin.options import InlineModelAdmin
from django.db import transaction
from django.db.models import Count, Prefetch, QuerySet
from django.http import HttpRequest

from portal.admin.base import LabelledTabularInline, ServiceAdmin, actor_of, adopt
from portal.admin.fleet import MaintenanceWindowInline
from portal.choices import Weekday
from portal.models import MaintenanceWindow, Pool, Server, Site
from portal.services.cleanup import unused_files_clear_queue
from portal.services.fleet import maintenance_window_create, maintenance_window_delete
from portal.services.replication import servers_resync_queue
from portal.services.topology import topology_delete, topology_save

T = TypeVar("T", Site, Pool, Server)


class TopologyAdmin(ServiceAdmin[T]):
    """Form and inline edits go through ``topology_save`` / ``topology_delete``.

    The model forms already run the model validation the service runs (``full_clean``).
    """

    def save_model(self, request: HttpRequest, obj: T, form: Any, change: Any) -> None:
        topology_save(obj=obj, actor=actor_of(request))

    def delete_model(self, request: HttpRequest, obj: T) -> None:
        topology_delete(obj=obj, actor=actor_of(request))

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[T]) -> None:
        actor = actor_of(request)
        with transaction.atomic():
            for obj in queryset:
                topology_delete(obj=obj, actor=actor)

    def save_formset(self, request: HttpRequest, form: Any, formset: Any, change: Any) -> None:
        actor = actor_of(request)
        # commit=False: the formset only builds the objects (new ones get their parent).
        instances = formset.save(commit=False)
        for obj in formset.deleted_objects:
            topology_delete(obj=obj, actor=actor)
        for obj in instances:
            topology_save(obj=obj, actor=actor)


class PoolInline(LabelledTabularInline[Pool, Site]):
    model = Pool
    extra = 0
    fields = ("fqdn", "internal_web_fqdn", "external_web_fqdn")
    show_change_link = True


@admin.register(Site)
class SiteAdmin(TopologyAdmin[Site]):
    list_display = ("name", "description", "time_zone", "windows", "pool_count")
    search_fields = ("name",)
    fields = ("name", "description", "time_zone")
    inlines = (PoolInline, MaintenanceWindowInline)

    def get_queryset(self, request: HttpRequest) -> QuerySet[Site]:
        windows = Prefetch(
            "maintenance_windows", queryset=MaintenanceWindow.objects.order_by("weekday", "start")
        )
        return (
            super()
            .get_queryset(request)
            .annotate(pool_total=Count("pools"))
            .prefetch_related(windows)
        )

    def get_inlines(
        self, request: HttpRequest, obj: Site | None
    ) -> list[type[InlineModelAdmin[Any, Any]]]:
        # Windows belong to a saved site (the services check them against its others).
        if obj is None:
            return [PoolInline]
        return list(self.inlines)

    @admin.display(description="pools", ordering="pool_total")
    def pool_count(self, obj: Site) -> int:
        return int(getattr(obj, "pool_total", 0))

    @admin.display(description="maintenance windows")
    def windows(self, obj: Site) -> str:
        found = [
            f"{Weekday(w.weekday).label} {w.start:%H:%M}–{w.end:%H:%M}"
            for w in obj.maintenance_windows.all()
        ]
        return "; ".join(found) or "always open"

    def save_formset(self, request: HttpRequest, form: Any, formset: Any, change: Any) -> None:
        if formset.model is not MaintenanceWindow:
            super().save_formset(request, form, formset, change)
            return
        actor = actor_of(request)
        # commit=False: only builds the objects and lists the deleted ones.
        instances = formset.save(commit=False)
        for window in formset.deleted_objects:
            maintenance_window_delete(window=window, actor=actor)
        for window in instances:
            if window.pk is None:  # existing windows are read-only
                created = maintenance_window_create(
                    site=form.instance,
                    weekday=window.weekday,
                    start=window.start,
                    end=window.end,
                    actor=actor,
                )
                adopt(window, created)


class ServerInline(LabelledTabularInline[Server, Pool]):
    model = Server
    extra = 0
    fields = ("fqdn", "worker_seen_at")
    readonly_fields = ("worker_seen_at",)


@admin.register(Pool)
class PoolAdmin(TopologyAdmin[Pool]):
    # The pool by its name (its host name), which links to it; its identity beside it.
    list_display = ("fqdn", "identity", "site", "internal_web_fqdn", "external_web_fqdn")
    list_filter = ("site",)
    list_select_related = ("site",)
    search_fields = ("fqdn", "internal_web_fqdn", "external_web_fqdn")
    inlines = (ServerInline,)
    actions = ("clear_unused_files",)

    @admin.action(
        description="Clear unused files: remove versions no rule of the pool refers to",
        permissions=["change"],
    )
    def clear_unused_files(self, request: HttpRequest, queryset: QuerySet[Pool]) -> None:
        for pool in queryset:
            folders = unused_files_clear_queue(pool=pool, actor=actor_of(request))
            self.message_user(
                request,
                f"{pool.fqdn}: removal of {len(folders)} unused version(s) queued to its "
                f"servers{': ' + ', '.join(folders) if folders else ''}",
                messages.SUCCESS,
            )


@admin.register(Server)
class ServerAdmin(TopologyAdmin[Server]):
    list_display = ("fqdn", "pool", "queue", "offer_cap_per_minute", "worker_seen_at")
    list_filter = ("pool__site", "pool")
    list_select_related = ("pool",)
    search_fields = ("fqdn",)
    readonly_fields = ("queue", "worker_seen_at")
    actions = ("resync_servers",)

    @admin.action(
        description="Re-sync: check every copy (SHA-256) and copy what is missing",
        permissions=["change"],
    )
    def resync_servers(self, request: HttpRequest, queryset: QuerySet[Server]) -> None:
        sent = servers_resync_queue(servers=list(queryset), actor=actor_of(request))
        self.message_user(
            request, f"Full store check queued for {sent} server(s)", messages.SUCCESS
        )
