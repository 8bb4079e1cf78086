"""Control-panel pages for the device log configuration (global and per site).

Saving calls ``log_config_set``; deleting calls ``log_config_reset``: the global
settings go back to the defaults, a site's fall back to the global ones. The list
also shows the settings in force for every site, wherever they come from.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from typing import Any

from django import forms
from django.contrib import admin
from django.db import transaction
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse

from portal.admin.base import ServiceAdmin, ServiceForm, actor_of, scope_choices
from portal.display import format_minutes, format_size
from portal.errors import DomainError
from portal.models import DeviceLogConfiguration, Site
from portal.models.log_config import default_extensions, default_types
from portal.selectors import log_config_effective, scope_resolve
from portal.services.log_config import SETTINGS, log_config_reset, log_config_set


class WordListField(forms.CharField):
    """A list of words typed on one line, separated by spaces."""

    def prepare_value(self, value: Any) -> Any:
        if isinstance(value, list | tuple):
            return " ".join(str(item) for item in value)
        return value

    def to_python(self, value: Any) -> list[str]:  # type: ignore[override]
        text = super().to_python(value)
        return text.split() if text else []


class DeviceLogConfigurationForm(ServiceForm[DeviceLogConfiguration]):
    scope = forms.ChoiceField(help_text="global, or one site's scope (overrides global).")
    # A declared field takes no default from the model: a new scope's form starts from
    # the same defaults as every other setting (and as the effective settings).
    valid_log_file_extensions = WordListField(
        label="ValidLogFileExtensions",
        initial=default_extensions,
        help_text="Separated by spaces: .dmp .clg .txt …",
    )
    valid_log_file_types = WordListField(
        label="ValidLogFileTypes",
        initial=default_types,
        help_text="Separated by spaces: Watson CELog Config DiagLog",
    )

    class Meta:
        model = DeviceLogConfiguration
        fields = SETTINGS

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        scope = self.fields["scope"]
        assert isinstance(scope, forms.ChoiceField)
        if self.instance.pk is None:
            # A new row is for a scope that has no settings of its own yet.
            taken = {
                config.scope for config in DeviceLogConfiguration.objects.select_related("site")
            }
            scope.choices = scope_choices(exclude=taken)
        else:
            scope.choices = [(self.instance.scope, self.instance.scope)]
            scope.initial = self.instance.scope
            scope.disabled = True

    def clean(self) -> dict[str, Any]:
        scope = self.cleaned_data.get("scope")
        if scope and self.instance.pk is None:
            # A scope the service refuses is named by the check in super().clean().
            with contextlib.suppress(DomainError):
                self.instance.site = scope_resolve(scope)
        return super().clean()

    def apply(self) -> DeviceLogConfiguration:
        values = {name: self.cleaned_data[name] for name in SETTINGS}
        return log_config_set(scope=self.cleaned_data["scope"], values=values, actor=self.actor)


WORDS = ("flush", "cache", "file_size", "quota", "cleanup")  # the admin's display methods


def cleanup_words(days: int, time_of_day: dt.time | None) -> str:
    """``every 10 days, any time`` / ``every day at 02:30``."""
    every = "every day" if days == 1 else f"every {days} days"
    return f"{every} at {time_of_day:%H:%M}" if time_of_day else f"{every}, any time"


@admin.register(DeviceLogConfiguration)
class DeviceLogConfigurationAdmin(ServiceAdmin[DeviceLogConfiguration]):
    form = DeviceLogConfigurationForm
    fields = ("scope", *SETTINGS)
    # What people compare between scopes, in words; the word lists are on each page.
    list_display = ("scope_display", *WORDS)
    list_select_related = ("site",)
    search_fields = ("site__name",)
    change_list_template = "admin/portal/devicelogconfiguration/change_list.html"

    @admin.display(description="scope", ordering="site__name")
    def scope_display(self, obj: DeviceLogConfiguration) -> str:
        return obj.scope

    @admin.display(description="LogFlushInterval", ordering="log_flush_interval_minutes")
    def flush(self, obj: DeviceLogConfiguration) -> str:
        return format_minutes(obj.log_flush_interval_minutes)

    @admin.display(description="MaxLogCacheLimit", ordering="max_log_cache_limit")
    def cache(self, obj: DeviceLogConfiguration) -> str:
        return format_size(obj.max_log_cache_limit)

    @admin.display(description="MaxLogFileSize", ordering="max_log_file_size")
    def file_size(self, obj: DeviceLogConfiguration) -> str:
        return format_size(obj.max_log_file_size)

    @admin.display(description="LogStoreQuota", ordering="log_store_quota")
    def quota(self, obj: DeviceLogConfiguration) -> str:
        return format_size(obj.log_store_quota)

    @admin.display(description="LogCleanUp", ordering="log_cleanup_interval_days")
    def cleanup(self, obj: DeviceLogConfiguration) -> str:
        return cleanup_words(obj.log_cleanup_interval_days, obj.log_cleanup_time_of_day)

    def changelist_view(
        self, request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        effective = [("global", log_config_effective(site=None))]
        effective += [
            (f"site:{site.name}", log_config_effective(site=site)) for site in Site.objects.all()
        ]
        # The table below the list says each scope's settings in the list's words.
        in_force = [
            (scope, config.source, [getattr(self, name)(config) for name in WORDS])
            for scope, config in effective
        ]
        context = {
            **(extra_context or {}),
            "effective_log_configs": effective,
            "in_force": in_force,
            "in_force_headers": [getattr(self, name).short_description for name in WORDS],
        }
        return super().changelist_view(request, context)

    def delete_model(self, request: HttpRequest, obj: DeviceLogConfiguration) -> None:
        log_config_reset(scope=obj.scope, actor=actor_of(request))

    def delete_queryset(
        self, request: HttpRequest, queryset: QuerySet[DeviceLogConfiguration]
    ) -> None:
        actor = actor_of(request)
        with transaction.atomic():
            for config in queryset.select_related("site"):
                log_config_reset(scope=config.scope, actor=actor)
