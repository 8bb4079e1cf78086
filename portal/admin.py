"""Control-panel pages for the topology."""

from __future__ import annotations

from django.contrib import admin

from portal.models import Pool, Server, Site


class PoolInline(admin.TabularInline[Pool, Site]):
    model = Pool
    extra = 0
    fields = ("fqdn", "internal_web_fqdn", "external_web_fqdn")
    show_change_link = True


@admin.register(Site)
class SiteAdmin(admin.ModelAdmin[Site]):
    list_display = ("name", "description", "pool_count")
    search_fields = ("name",)
    inlines = (PoolInline,)

    @admin.display(description="pools")
    def pool_count(self, obj: Site) -> int:
        return obj.pools.count()


class ServerInline(admin.TabularInline[Server, Pool]):
    model = Server
    extra = 0
    fields = ("fqdn", "worker_seen_at")
    readonly_fields = ("worker_seen_at",)


@admin.register(Pool)
class PoolAdmin(admin.ModelAdmin[Pool]):
    list_display = ("identity", "site", "internal_web_fqdn", "external_web_fqdn")
    list_filter = ("site",)
    list_select_related = ("site",)
    search_fields = ("fqdn", "internal_web_fqdn", "external_web_fqdn")
    inlines = (ServerInline,)


@admin.register(Server)
class ServerAdmin(admin.ModelAdmin[Server]):
    list_display = ("fqdn", "pool", "queue", "worker_seen_at")
    list_filter = ("pool__site", "pool")
    list_select_related = ("pool",)
    search_fields = ("fqdn",)
    readonly_fields = ("queue", "worker_seen_at")
