"""``{% fleet_overview %}``: the fleet overview on the admin index (phones by state,
pending versions, active rollouts), for users who may see the inventory."""

from __future__ import annotations

from typing import Any

from django import template
from django.urls import reverse

from phones.admin.dashboards import PERMISSION, states_chart
from phones.dashboards import fleet_overview as overview_of

register = template.Library()


@register.inclusion_tag("admin/dashboards/overview.html", takes_context=True)
def fleet_overview(context: template.Context) -> dict[str, Any]:
    request = context.get("request")
    if request is None or not request.user.has_perm(PERMISSION):
        return {"shown": False}
    overview = overview_of()
    return {
        "shown": True,
        "overview": overview,
        "states_chart": states_chart(overview.states),
        "pending": [
            {
                "rule": rule,
                "url": reverse("admin:portal_deviceupdaterule_change", args=[rule.pk]),
            }
            for rule in overview.pending_rules
        ],
        "rules_url": reverse("admin:portal_deviceupdaterule_changelist"),
        "rollouts": [
            {
                "item": item,
                "url": reverse("admin:rollout-dashboard", kwargs={"rollout_id": item.rollout.pk}),
            }
            for item in overview.active_rollouts
        ],
        "fleet_url": reverse("admin:fleet-dashboard"),
    }
