"""Reads of device log settings: scopes and the effective settings per site."""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import time

from portal.errors import DomainError
from portal.models import (
    DeviceLogConfiguration,
    Site,
)


def scope_resolve(scope: str) -> Site | None:
    """``global`` is None; ``site:<name>`` is that site; anything else is refused."""
    text = scope.strip()
    if text.lower() == "global":
        return None
    if text.lower().startswith("site:") and text[5:].strip():
        name = text[5:].strip()
        site = Site.objects.filter(name__iexact=name).first()
        if site is None:
            raise DomainError(f"no site named {name!r}", field="scope", code="unknown_scope")
        return site
    raise DomainError(
        f"{scope!r} is not a scope (global or site:<name>)", field="scope", code="unknown_scope"
    )


@dataclass(frozen=True)
class EffectiveLogConfig:
    """The log settings in force for a site's servers, and where they come from."""

    source: str
    log_cleanup_interval_days: int
    log_cleanup_time_of_day: time | None
    log_flush_interval_minutes: int
    max_log_cache_limit: int
    max_log_file_size: int
    valid_log_file_extensions: list[str]
    valid_log_file_types: list[str]
    log_store_quota: int


def _effective_from(config: DeviceLogConfiguration, source: str) -> EffectiveLogConfig:
    values = {
        item.name: getattr(config, item.name)
        for item in fields(EffectiveLogConfig)
        if item.name != "source"
    }
    return EffectiveLogConfig(source=source, **values)


def log_config_effective(*, site: Site | None) -> EffectiveLogConfig:
    """A site's own settings, else the global ones, else the spec's defaults."""
    configs = log_configs_by_site()
    return configs.get(site.pk if site else None, configs[None])


def log_configs_by_site() -> dict[int | None, EffectiveLogConfig]:
    """Every site's effective log settings in one query; the key ``None`` holds what a
    site without its own settings (or a server outside the topology) gets."""
    rows = list(DeviceLogConfiguration.objects.select_related("site"))
    fallback = next(
        (_effective_from(row, "global") for row in rows if row.site_id is None),
        _effective_from(DeviceLogConfiguration(), "defaults"),
    )
    configs: dict[int | None, EffectiveLogConfig] = {None: fallback}
    for row in rows:
        if row.site is not None:
            configs[row.site_id] = _effective_from(row, f"site:{row.site.name}")
    return configs
