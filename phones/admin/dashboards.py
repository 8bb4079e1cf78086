"""Control-panel dashboards, drawn by Chart.js from the project's own static files: the
fleet (versions per model, phones by state) and each rollout (planned vs observed per
wave over time, the current numbers, the failed phones).

The pages live at the admin site's top level (``admin:fleet-dashboard`` at
``/admin/dashboards/``, ``admin:rollout-dashboard`` at ``/admin/dashboards/rollouts/<id>/``)
rather than under a model: the project's admin site (``deviceupdate.admin_site``) puts
their URLs in front of its own. Both need ``phones.view_device`` (helpdesk and
administrators). Every number is in a table beside its chart, and the charts read their
numbers from ``json_script`` blocks: no inline script. The numbers are counted by the
reads in ``phones.dashboards`` and ``phones.selectors``; this module turns them into
pages and chart data.

Both pages follow what is running without a reload: ``static/portal/dashboards.js`` polls
their ``numbers.json`` (``admin:fleet-numbers``, ``admin:rollout-numbers``) every
``REFRESH_MS`` and puts the answer's parts (the tables, rendered by the same template
fragments as the page) and chart data in place, adding the chart of a wave that got its
first sample since the page opened; a finished rollout's page stops polling.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.contrib.admin import AdminSite
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.template.loader import render_to_string
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils import timezone
from django.utils.http import urlencode

from phones.dashboards import (
    FleetVersions,
    StateCount,
    WaveHistory,
    fleet_states,
    fleet_versions,
    rollout_history,
)
from phones.models import Device
from phones.services.rollout_watch import RolloutProgress, rollout_progress
from portal.choices import RolloutState
from portal.display import state_tone
from portal.models import Rollout

PERMISSION = "phones.view_device"
FAILED_SHOWN = 100
UNREPORTED = "no version reported"
# How often an open dashboard asks for its numbers (milliseconds).
REFRESH_MS = 5000
FLEET_PARTS = {
    "fleet-summary": "admin/dashboards/parts/fleet_summary.html",
    "fleet-versions-table": "admin/dashboards/parts/fleet_versions.html",
    "fleet-states-table": "admin/dashboards/parts/fleet_states.html",
}
ROLLOUT_PARTS = {
    "rollout-state": "admin/dashboards/parts/rollout_state.html",
    "rollout-summary": "admin/dashboards/parts/rollout_summary.html",
    "rollout-waves-table": "admin/dashboards/parts/rollout_waves.html",
    "rollout-failed": "admin/dashboards/parts/rollout_failed.html",
}
# A wave's chart over time: in the page, and in numbers.json for a wave the page lacks.
WAVE_HISTORY_PART = "admin/dashboards/parts/rollout_wave_history.html"


def time_label(value: dt.datetime, zone: dt.tzinfo | None = None) -> str:
    """Local time to the minute (``zone``: the current time zone, looked up once per chart)."""
    return f"{value.astimezone(zone or timezone.get_current_timezone()):%Y-%m-%d %H:%M}"


def states_chart(states: tuple[StateCount, ...]) -> dict[str, Any]:
    """Phones by state, for a doughnut."""
    return {
        "kind": "doughnut",
        "labels": [row.state for row in states],
        "datasets": [{"label": "phones", "data": [row.phones for row in states]}],
    }


def versions_chart(fleet: FleetVersions) -> dict[str, Any]:
    """One bar per model (and update type), stacked by version."""
    types = sorted({label.rpartition(" ")[0] for label in fleet.versions})
    datasets: list[dict[str, Any]] = [
        {
            "label": label,
            "stack": label.rpartition(" ")[0],
            "data": [model.versions.get(label, 0) for model in fleet.models],
        }
        for label in fleet.versions
    ]
    if any(model.unreported for model in fleet.models):
        datasets.append(
            {
                "label": UNREPORTED,
                "stack": types[0] if types else UNREPORTED,
                "role": "none",
                "data": [model.unreported for model in fleet.models],
            }
        )
    return {
        "kind": "stacked-bar",
        "labels": [model.name for model in fleet.models],
        "datasets": datasets,
    }


def wave_label(progress: RolloutProgress, wave: int) -> str:
    """``wave 2 (25 %)``, ``wave 1 (site:Berlin, group:lab)``."""
    for row in progress.waves:
        if row.position == wave:
            return f"wave {wave + 1} ({row.label})"
    return f"wave {wave + 1}"


def progress_chart(progress: RolloutProgress) -> dict[str, Any]:
    """Per wave, the phones planned and observed now, as grouped bars."""
    fields = ("planned", "offered", "downloaded", "running", "failed")
    return {
        "kind": "bar",
        "labels": [wave_label(progress, wave.position) for wave in progress.waves],
        "datasets": [
            {"label": field, "role": field, "data": [getattr(w, field) for w in progress.waves]}
            for field in fields
        ],
    }


def history_chart(history: WaveHistory, label: str) -> dict[str, Any]:
    """One wave over time: planned against offered, running and failed."""
    zone = timezone.get_current_timezone()
    return {
        "kind": "line",
        "title": label,
        "labels": [time_label(value, zone) for value in history.times],
        "datasets": [
            {"label": field, "role": field, "data": list(getattr(history, field))}
            for field in ("planned", "offered", "running", "failed")
        ],
    }


def failed_lines(progress: RolloutProgress, limit: int = FAILED_SHOWN) -> list[dict[str, Any]]:
    """The failed phones with links to their inventory page and their uploaded logs."""
    shown = progress.failed_phones[:limit]
    ids = [phone.device_id for phone in shown if phone.device_id is not None]
    devices = {
        pk: (mac, serial)
        for pk, mac, serial in Device.objects.filter(pk__in=ids).values_list("pk", "mac", "serial")
    }
    logs = reverse("admin:phones_devicelog_changelist")
    lines = []
    for phone in shown:
        mac, serial = devices.get(phone.device_id or 0, ("", ""))
        # Logs are filed under the MAC, or the serial number as the phone sent it.
        log_device = mac or serial or phone.identity.partition(":")[2]
        lines.append(
            {
                "identity": phone.identity,
                "wave": wave_label(progress, phone.wave),
                "failure": phone.failure,
                "failed_at": time_label(phone.failed_at) if phone.failed_at else "",
                "device_url": (
                    reverse("admin:phones_device_change", args=[phone.device_id])
                    if phone.device_id is not None and phone.device_id in devices
                    else ""
                ),
                "logs_url": f"{logs}?{urlencode({'device': log_device})}",
            }
        )
    return lines


def rollout_status(rollout: Rollout) -> dict[str, Any]:
    """A rollout's state in words and colour, its wave and why, for the live box."""
    return {
        "status": rollout.state,
        "label": rollout.get_state_display(),
        "tone": state_tone(rollout.state),
        "progress": rollout.current_wave + 1,
        "progress_text": f"wave {rollout.current_wave + 1}",
        "reason": rollout.reason,
        "finished": rollout.state in RolloutState.finished(),
    }


class Dashboards:
    """The dashboard pages of one admin site."""

    def __init__(self, site: AdminSite) -> None:
        self.site = site

    def urls(self) -> list[URLPattern]:
        return [
            path("dashboards/", self.site.admin_view(self.fleet_view), name="fleet-dashboard"),
            path(
                "dashboards/rollouts/<int:rollout_id>/",
                self.site.admin_view(self.rollout_view),
                name="rollout-dashboard",
            ),
            path(
                "dashboards/numbers.json",
                self.site.admin_view(self.fleet_numbers_view),
                name="fleet-numbers",
            ),
            path(
                "dashboards/rollouts/<int:rollout_id>/numbers.json",
                self.site.admin_view(self.rollout_numbers_view),
                name="rollout-numbers",
            ),
            path(
                "dashboards/rollouts/<int:rollout_id>/status.json",
                self.site.admin_view(self.rollout_status_view),
                name="rollout-status",
            ),
        ]

    def rollout_status_view(self, request: HttpRequest, rollout_id: int) -> JsonResponse:
        """The live part of a rollout's page and dashboard, polled by portal/live.js."""
        if not request.user.has_perm(PERMISSION):
            raise PermissionDenied
        rollout = Rollout.objects.filter(pk=rollout_id).first()
        if rollout is None:
            return JsonResponse({"error": f"no rollout #{rollout_id}"}, status=404)
        return JsonResponse(rollout_status(rollout))

    def context(self, request: HttpRequest, title: str, **extra: Any) -> dict[str, Any]:
        if not request.user.has_perm(PERMISSION):
            raise PermissionDenied
        request.current_app = self.site.name
        return {**self.site.each_context(request), "title": title, "subtitle": None, **extra}

    def numbers(
        self,
        request: HttpRequest,
        context: dict[str, Any],
        parts: dict[str, str],
        charts: dict[str, dict[str, Any]],
        finished: bool = False,
        chart_parts: dict[str, str] | None = None,
    ) -> JsonResponse:
        """A dashboard's live numbers: its tables as the page draws them, and its charts;
        ``chart_parts`` is the markup of each chart, for a page opened before it had one."""
        return JsonResponse(
            {
                "parts": {
                    key: render_to_string(name, context, request=request)
                    for key, name in parts.items()
                },
                "charts": charts,
                "chart_parts": chart_parts or {},
                "finished": finished,
            }
        )

    def fleet_context(self) -> dict[str, Any]:
        fleet = fleet_versions()
        states = fleet_states()
        return {
            "fleet": fleet,
            "states": states,
            "phones": sum(row.phones for row in states),
            "version_rows": [
                {
                    "model": model,
                    "counts": [model.versions.get(label, 0) for label in fleet.versions],
                }
                for model in fleet.models
            ],
            "versions_chart": versions_chart(fleet),
            "states_chart": states_chart(states),
            "refresh_ms": REFRESH_MS,
        }

    def fleet_view(self, request: HttpRequest) -> HttpResponse:
        """Per model the versions its phones run; phones by state."""
        context = self.context(request, "Fleet dashboard")
        context.update(self.fleet_context())
        return TemplateResponse(request, "admin/dashboards/fleet.html", context)

    def fleet_numbers_view(self, request: HttpRequest) -> JsonResponse:
        """The fleet dashboard's live part, polled by portal/dashboards.js."""
        context = self.context(request, "Fleet dashboard")
        context.update(self.fleet_context())
        return self.numbers(
            request,
            context,
            FLEET_PARTS,
            {
                "chart-data-fleet-versions": context["versions_chart"],
                "chart-data-fleet-states": context["states_chart"],
            },
        )

    def rollout_context(self, rollout: Rollout) -> dict[str, Any]:
        progress = rollout_progress(rollout=rollout)
        history = rollout_history(rollout=rollout)
        waves = [
            {
                "wave": wave.wave,
                "label": wave_label(progress, wave.wave),
                "samples": len(wave.times),
                "chart": history_chart(wave, wave_label(progress, wave.wave)),
                "chart_id": f"chart-data-wave-{wave.wave}",
            }
            for wave in history
        ]
        return {
            "rollout": rollout,
            "progress": progress,
            "waves": waves,
            "progress_chart": progress_chart(progress),
            "failed": failed_lines(progress),
            "failed_total": sum(wave.failed + wave.failed_before for wave in progress.waves),
            "failed_limit": FAILED_SHOWN,
            "finished": rollout.state in RolloutState.finished(),
            "refresh_ms": REFRESH_MS,
        }

    def rollout_or_404(self, rollout_id: int) -> Rollout:
        rollout = Rollout.objects.select_related("rule__pool").filter(pk=rollout_id).first()
        if rollout is None:
            raise Http404("no such rollout")
        return rollout

    def rollout_view(self, request: HttpRequest, rollout_id: int) -> HttpResponse:
        """Per wave: planned vs observed over time and now; the failed phones, linked."""
        context = self.context(request, f"Rollout #{rollout_id}")  # the permission first
        rollout = self.rollout_or_404(rollout_id)
        context.update(self.rollout_context(rollout), title=rollout.name)
        return TemplateResponse(request, "admin/dashboards/rollout.html", context)

    def rollout_numbers_view(self, request: HttpRequest, rollout_id: int) -> JsonResponse:
        """The rollout dashboard's live part, polled by portal/dashboards.js."""
        context = self.context(request, f"Rollout #{rollout_id}")
        rollout = Rollout.objects.select_related("rule__pool").filter(pk=rollout_id).first()
        if rollout is None:
            return JsonResponse({"error": f"no rollout #{rollout_id}"}, status=404)
        context.update(self.rollout_context(rollout))
        charts = {"chart-data-rollout-now": context["progress_chart"]}
        charts.update({wave["chart_id"]: wave["chart"] for wave in context["waves"]})
        chart_parts: dict[str, str] = {
            wave["chart_id"]: render_to_string(WAVE_HISTORY_PART, {"wave": wave}, request=request)
            for wave in context["waves"]
        }
        return self.numbers(
            request,
            context,
            ROLLOUT_PARTS,
            charts,
            finished=context["finished"],
            chart_parts=chart_parts,
        )
