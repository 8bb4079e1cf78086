"""Control-panel pages for the inventory: one row per phone, read-only for all.

Written by the phones (through the recorder), never by hand. A phone's page shows its
check-in history, what it would be offered now and why, what it was seen doing with each
version offered (observed outcomes) and its holds and pins; administrators hold, pin and
release it per rule through the fleet services, after a confirmation page.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import flatten_fieldsets
from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils import timezone
from django.utils.http import urlencode

from phones.admin.base import ReadOnlyAdmin, outcome_label
from phones.models import Device, DeviceLog, RequestAudit
from phones.selectors import (
    WhatIf,
    device_history,
    device_outcomes,
    device_what_if_explained,
)
from portal.admin.base import service_check
from portal.choices import DeviceControlKind
from portal.device_class import DeviceClass
from portal.errors import DomainError
from portal.identifiers import parse_version
from portal.models import DeviceControl, DeviceUpdateRule, Server, Site, UpdateVersion
from portal.selectors import rule_versions
from portal.services.audit import Actor
from portal.services.fleet import device_hold, device_pin, device_release


def versions_text(versions: dict[str, str]) -> str | None:
    """``CPE 4.0.7577.4387, UI 1.2`` (None, shown as the empty mark, when there are none)."""
    return ", ".join(f"{kind} {version}" for kind, version in sorted(versions.items())) or None


class DeviceSiteFilter(admin.SimpleListFilter):
    """The site of the server a phone last checked in with."""

    title = "site"
    parameter_name = "site"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [(name, name) for name in Site.objects.values_list("name", flat=True)]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Device]) -> QuerySet[Device]:
        value = self.value()
        if value is None:
            return queryset
        servers = Server.objects.filter(pool__site__name=value).values_list("fqdn", flat=True)
        return queryset.filter(last_server__in=list(servers))


class DeviceVersionFilter(admin.SimpleListFilter):
    """Phones running a version (any update type); choices are every version a phone
    runs and every stored version, in version order."""

    title = "installed version"
    parameter_name = "version"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        versions = set(UpdateVersion.objects.values_list("version", flat=True).distinct())
        # One row per distinct set of versions phones report: a short list, whatever
        # the fleet's size.
        for installed in Device.objects.order_by().values_list("installed", flat=True).distinct():
            versions.update(str(version) for version in (installed or {}).values())
        if self.value():
            versions.add(str(self.value()))  # a version no longer stored still filters
        return [(v, v) for v in sorted(versions, key=lambda v: (_version_order(v), v))]

    def has_output(self) -> bool:
        return True

    def queryset(self, request: HttpRequest, queryset: QuerySet[Device]) -> QuerySet[Device]:
        value = self.value()
        if value is None:
            return queryset
        # The JSON text holds {"CPE": "4.0.7577.4387"}: the quotes keep 4.0.1 from
        # matching 4.0.10.
        return queryset.filter(installed__icontains=f'"{value}"')


def history_lines(rows: list[RequestAudit]) -> list[dict[str, Any]]:
    """The check-in history table of the device page, one line per update check."""
    return [
        {
            "url": reverse("admin:phones_requestaudit_change", args=[row.pk]),
            "time": f"{timezone.localtime(row.created_at):%Y-%m-%d %H:%M:%S}",
            "server": row.server,
            "channel": row.channel,
            "client_address": row.client_address or "",
            "user": row.user,
            "installed": ", ".join(
                f"{m.get('update_type', '')} {m.get('version', '')}".strip()
                for m in row.request_modules
            ),
            "outcome": outcome_label(row.outcome),
            "status": row.status,
            "why": "; ".join(
                f"{m.get('update_type', '')}: {m.get('why', '')}" for m in row.response_modules
            )
            or row.message,
        }
        for row in rows
    ]


def what_if_lines(what_if: WhatIf, *, rules: list[DeviceUpdateRule]) -> list[dict[str, str]]:
    """The "what would this phone get" table, one line per update type; a rule by its
    name (its identity, which the decision records, in ``rule_identity``)."""
    test_device = "yes" if what_if.decision.test_device else "no"
    verified = {True: "yes", False: "no", None: "-"}
    names = {rule.identity: rule.name for rule in rules}
    return [
        {
            "update_type": row.module.update_type,
            "installed": row.module.installed,
            "rule": names.get(row.module.rule, row.module.rule),
            "rule_identity": row.module.rule,
            "target": row.module.target,
            "test_device": test_device,
            "verified": verified[row.verified],
            "outcome": outcome_label(row.module.outcome),
            "why": row.module.note,
        }
        for row in what_if.rows
    ]


def device_rules(device: Device) -> list[DeviceUpdateRule]:
    """The rules of the phone's class (any pool, any update type), as the gates count it."""
    return list(
        DeviceUpdateRule.objects.select_related("pool")
        .filter(DeviceClass.of(device).q())
        .order_by("pool__fqdn", "update_type", "pk")
    )


def _version_order(version: str) -> tuple[int, ...]:
    try:
        return parse_version(version)
    except ValueError:
        return ()


def _when(value: dt.datetime | None) -> str:
    return f"{timezone.localtime(value):%Y-%m-%d %H:%M}" if value else ""


def outcome_lines(identity: str) -> list[dict[str, Any]]:
    """The "observed outcomes" table of the device page, one line per rule version."""
    return [
        {
            "rule": row.rule.name,
            "rule_identity": row.rule.identity,
            "rule_url": reverse("admin:portal_deviceupdaterule_change", args=[row.rule_id]),
            "version": row.version,
            "state": row.get_state_display(),
            "offered_first": _when(row.offered_first),
            "offered_last": _when(row.offered_last),
            "offered_count": row.offered_count,
            "downloaded": _when(row.downloaded_at),
            "running": _when(row.running_at),
            "failed": _when(row.failed_at),
            "failure": row.failure,
        }
        for row in device_outcomes(identity=identity)
    ]


def control_lines(device: Device, *, rules: list[DeviceUpdateRule]) -> list[dict[str, Any]]:
    """One line per rule of the phone's class (``device_rules``): its hold or pin, and
    the versions a pin may name."""
    controls = {
        control.rule_id: control
        for control in DeviceControl.objects.filter(identity=device.identity, rule__in=rules)
    }
    lines = []
    for rule in rules:
        control = controls.get(rule.pk)
        if control is None:
            state = "follows the rule"
        elif control.kind == DeviceControlKind.HOLD:
            state = f"held by {control.actor_name}"
        else:
            state = f"pinned to {control.version} by {control.actor_name}"
        lines.append(
            {
                "rule": rule,
                "url": reverse("admin:portal_deviceupdaterule_change", args=[rule.pk]),
                "state": state,
                "control": control,
                "held": control is not None and control.kind == DeviceControlKind.HOLD,
                "versions": sorted(rule_versions(rule), key=_version_order, reverse=True),
            }
        )
    return lines


CONTROL_ACTIONS = {"hold": "Hold", "pin": "Pin", "release": "Release"}


class DeviceControlForm(forms.Form):
    """One button of the "Rollouts and controls" section: hold, pin or release."""

    rule = forms.ModelChoiceField(queryset=DeviceUpdateRule.objects.none())
    action = forms.ChoiceField(choices=list(CONTROL_ACTIONS.items()))
    version = forms.CharField(max_length=64, required=False)

    def __init__(self, *args: Any, device: Device, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        rule = self.fields["rule"]
        assert isinstance(rule, forms.ModelChoiceField)
        rule.queryset = DeviceUpdateRule.objects.select_related("pool").filter(
            pk__in=[r.pk for r in device_rules(device)]
        )


def control_effect(*, identity: str, rule: DeviceUpdateRule, action: str, version: str) -> str:
    """The confirmation page's sentence: what the phone will be offered for the rule."""
    follows = rule.approved_version or "nothing"
    if action == "hold":
        return (
            f"{identity} is offered nothing for {rule.name} until released, whatever the "
            "rule, a rollout or a test device entry say; it keeps what it runs."
        )
    if action == "pin":
        return (
            f"{identity} is offered {version} for {rule.name} until released, whatever "
            f"the rule says (approved {follows}, pending {rule.pending_version or 'none'})."
        )
    return (
        f"{identity} follows {rule.name} again: it is offered what the rule and its "
        f"rollout give it (approved {follows})."
    )


@admin.register(Device)
class DeviceAdmin(ReadOnlyAdmin[Device]):
    # phone, model, version, state, last seen, server: what fits at 1280 px; the
    # revision, locale, targets, user and channel are on the phone's page.
    list_display = (
        "phone",
        "phone_model",
        "installed_versions",
        "state",
        "last_seen",
        "last_server",
    )
    list_filter = (
        "brand",
        "model",
        DeviceVersionFilter,
        "state",
        "test_device",
        "last_channel",
        DeviceSiteFilter,
        ("last_seen", admin.DateFieldListFilter),
    )
    search_fields = ("mac", "serial", "last_user")
    change_form_template = "admin/phones/device/change_form.html"
    fieldsets = (
        (
            None,
            {
                "fields": (
                    "identity",
                    "mac",
                    "serial",
                    "device_type",
                    "brand",
                    "model",
                    "revision",
                    "locale",
                )
            },
        ),
        (
            "firmware",
            {"fields": ("installed_versions", "target_versions", "state", "test_device")},
        ),
        (
            "check-ins",
            {
                "fields": (
                    "first_seen",
                    "last_seen",
                    "last_user",
                    "last_address",
                    "last_channel",
                    "last_server",
                )
            },
        ),
    )
    # Everything shown is read-only: the list is the fieldsets' own.
    readonly_fields = tuple(flatten_fieldsets(fieldsets))

    @admin.display(description="phone", ordering="mac")
    def phone(self, obj: Device) -> str:
        label = obj.mac or obj.serial or obj.identity
        return f"{label} (test device)" if obj.test_device else label

    @admin.display(description="model", ordering="model")
    def phone_model(self, obj: Device) -> str:
        return f"{obj.brand} {obj.model}"

    @admin.display(description="installed")
    def installed_versions(self, obj: Device) -> str | None:
        return versions_text(obj.installed)

    @admin.display(description="target")
    def target_versions(self, obj: Device) -> str | None:
        return versions_text(obj.targets)

    def render_change_form(
        self,
        request: HttpRequest,
        context: dict[str, Any],
        add: bool = False,
        change: bool = False,
        form_url: str = "",
        obj: Device | None = None,
    ) -> HttpResponse:
        # Reached only once the admin has checked the view permission on ``obj``.
        if obj is not None:
            context["history"] = history_lines(device_history(device=obj))
            what_if = device_what_if_explained(device=obj)
            rules = device_rules(obj)
            context["what_if"] = what_if
            context["what_if_lines"] = what_if_lines(what_if, rules=rules)
            changelist = reverse("admin:phones_requestaudit_changelist")
            context["history_url"] = f"{changelist}?{urlencode({'identity': obj.identity})}"
            context["device_logs"] = [
                {
                    "log": log,
                    "url": reverse("admin:phones_devicelog_download", args=[log.pk]),
                }
                for log in DeviceLog.objects.filter(
                    device__in=[value for value in (obj.mac, obj.serial) if value]
                )[:50]
            ]
            context["outcome_lines"] = outcome_lines(obj.identity)
            context["control_lines"] = control_lines(obj, rules=rules)
            context["can_control"] = self.has_control_permission(request)
            context["control_url"] = reverse("admin:phones_device_control", args=[obj.pk])
        return super().render_change_form(request, context, add, change, form_url, obj)

    def has_control_permission(self, request: HttpRequest) -> bool:
        """Hold, pin and release: administrators (the helpdesk only looks)."""
        return request.user.has_perms(
            [
                "portal.add_devicecontrol",
                "portal.change_devicecontrol",
                "portal.delete_devicecontrol",
            ]
        )

    def get_urls(self) -> list[URLPattern]:
        control = path(
            "<int:device_id>/control/",
            self.admin_site.admin_view(self.control_view),
            name="phones_device_control",
        )
        return [control, *super().get_urls()]

    def control_view(self, request: HttpRequest, device_id: int) -> HttpResponse:
        """Hold, pin or release the phone for one rule: confirmed, then the service."""
        if not self.has_control_permission(request):
            raise PermissionDenied
        device = Device.objects.filter(pk=device_id).first()
        if device is None:
            raise Http404("no such phone")
        back = reverse("admin:phones_device_change", args=[device.pk])
        if request.method != "POST":
            return HttpResponseRedirect(back)
        form = DeviceControlForm(request.POST, device=device)
        if not form.is_valid():
            for field, errors in form.errors.items():
                for error in errors:
                    self.message_user(request, f"{field}: {error}", messages.ERROR)
            return HttpResponseRedirect(back)
        rule, action = form.cleaned_data["rule"], form.cleaned_data["action"]
        version = form.cleaned_data["version"].strip()
        user = request.user
        assert isinstance(user, User)
        actor = Actor.of_user(user)

        def apply() -> str:
            if action == "hold":
                device_hold(identity=device.identity, rule=rule, actor=actor)
                return f"{device.identity} held for {rule.name}"
            if action == "pin":
                control = device_pin(
                    identity=device.identity, rule=rule, version=version, actor=actor
                )
                return f"{device.identity} pinned to {control.version} for {rule.name}"
            device_release(identity=device.identity, rule=rule, actor=actor)
            return f"{device.identity} released for {rule.name}"

        if request.POST.get("post") == "yes":
            try:
                done = apply()
            except DomainError as error:
                self.message_user(request, error.message, messages.ERROR)
            else:
                self.message_user(request, done, messages.SUCCESS)
            return HttpResponseRedirect(back)
        refusal = service_check(apply)
        if refusal is not None:
            self.message_user(request, refusal.message, messages.ERROR)
            return HttpResponseRedirect(back)
        context = {
            **self.admin_site.each_context(request),
            "title": f"{CONTROL_ACTIONS[action]} {device.identity}",
            "subtitle": None,
            "opts": self.opts,
            "device": device,
            "rule": rule,
            "action": action,
            "action_label": CONTROL_ACTIONS[action],
            "version": version,
            "effect": control_effect(
                identity=device.identity, rule=rule, action=action, version=version
            ),
            "back_url": back,
        }
        request.current_app = self.admin_site.name
        return TemplateResponse(request, "admin/phones/device/control_confirmation.html", context)
