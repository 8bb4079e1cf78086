"""Reads of the control panel: scopes, effective log settings, rule lists."""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import time

from django.db.models import Q, QuerySet

from portal.choices import RuleState
from portal.errors import DomainError
from portal.models import DeviceLogConfiguration, DeviceUpdateRule, Server, Site


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
    rows = {
        row.site_id: row
        for row in DeviceLogConfiguration.objects.filter(
            Q(site__isnull=True) | Q(site=site) if site else Q(site__isnull=True)
        )
    }
    if site is not None and site.pk in rows:
        return _effective_from(rows[site.pk], f"site:{site.name}")
    if None in rows:
        return _effective_from(rows[None], "global")
    return _effective_from(DeviceLogConfiguration(), "defaults")


def log_config_for_server(*, server: Server) -> EffectiveLogConfig:
    return log_config_effective(site=server.pool.site)


def rules_list(
    *,
    pool_fqdn: str | None = None,
    brand: str | None = None,
    model: str | None = None,
    state: str | None = None,
) -> QuerySet[DeviceUpdateRule]:
    """Rules filtered as the Device Update list and `device_update_rules list` do."""
    rules = DeviceUpdateRule.objects.select_related("pool")
    if pool_fqdn:
        rules = rules.filter(pool__fqdn__iexact=pool_fqdn)
    if brand:
        rules = rules.filter(brand__iexact=brand)
    if model:
        rules = rules.filter(model__iexact=model)
    if state:
        rules = rules.filter(rules_state_q(RuleState(state)))
    return rules


def rules_state_q(state: RuleState) -> Q:
    """The state of the rule list, as a database condition (mirrors ``rule.state``)."""
    pending = ~Q(pending_version="")
    approved = ~Q(approved_version="")
    return {
        RuleState.PENDING: pending & ~approved,
        RuleState.PENDING_APPROVED: pending & approved,
        RuleState.APPROVED: ~pending & approved & Q(restored=False),
        RuleState.RESTORED: ~pending & approved & Q(restored=True),
        RuleState.NOT_USED: ~pending & ~approved,
    }[state]
