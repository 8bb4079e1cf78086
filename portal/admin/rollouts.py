"""Control-panel pages for staged rollouts.

A rollout is planned from its rule's page ("Approve in waves…"): a plan form whose
input is dry-run through ``rollout_plan`` (a refusal is a form error), then a page
saying what will reach phones, then the rollout. The rollout page is read-only;
Advance, Pause, Resume, Cancel and Restore are buttons, each confirmed on a page
saying what reaches phones, each a thin wrapper over its service. Planning needs
``add_rollout``, the buttons ``change_rollout``: the helpdesk sees and never changes.

The plan form and its preview are ``portal.admin.rollout_plans``; device groups are
``portal.admin.fleet``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import flatten_fieldsets
from django.core.exceptions import PermissionDenied
from django.db.models import Count, QuerySet
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.loader import render_to_string
from django.template.response import TemplateResponse
from django.urls import NoReverseMatch, URLPattern, path, reverse
from django.utils import timezone
from django.utils.html import format_html

from portal.admin.base import actor_of, service_check
from portal.admin.rollout_plans import RolloutPlanForm, _version, plan_preview
from portal.choices import RolloutState
from portal.errors import DomainError
from portal.models import DeviceUpdateRule, Rollout, RolloutWave
from portal.services.rollouts import (
    ACTIVE,
    ROLLOUT_MOVES,
    rollout_advance,
    rollout_cancel,
    rollout_pause,
    rollout_plan,
    rollout_restore,
    rollout_resume,
)
from portal.waves import wave_describe


def dashboard_url(rollout_id: int) -> str | None:
    """The rollout's dashboard page, when the dashboards are installed."""
    try:
        return reverse("admin:rollout-dashboard", kwargs={"rollout_id": rollout_id})
    except NoReverseMatch:
        return None


# -- transitions ------------------------------------------------------------------------


@dataclass(frozen=True)
class Transition:
    """One button of the rollout page: when it is offered and which service it calls."""

    name: str
    label: str
    allowed: frozenset[RolloutState]
    service: Callable[..., Rollout]


TRANSITIONS: dict[str, Transition] = {
    move.action: Transition(move.action, move.label, move.allowed, service)
    for move, service in (
        (ROLLOUT_MOVES["advance"], rollout_advance),
        (ROLLOUT_MOVES["pause"], rollout_pause),
        (ROLLOUT_MOVES["resume"], rollout_resume),
        (ROLLOUT_MOVES["cancel"], rollout_cancel),
        (ROLLOUT_MOVES["restore"], rollout_restore),
    )
}


def _waves_of(rollout: Rollout) -> list[RolloutWave]:
    return list(rollout.waves.order_by("position").prefetch_related("sites", "groups"))


def transition_effect(name: str, rollout: Rollout) -> str:
    """The confirmation page's sentence: what the transition does to what phones get."""
    waves = _waves_of(rollout)
    to, before = rollout.to_version, _version(rollout.from_version)
    number, total = rollout.current_wave + 1, len(waves)
    if name == "advance":
        resumed = " The rollout runs again." if rollout.state == RolloutState.PAUSED else ""
        if number >= total:
            return (
                f"Wave {number} of {total} is the last: the rollout completes and {to} is "
                f"approved for everyone (was {before}); test devices follow.{resumed}"
            )
        nxt = waves[number]
        return (
            f"Wave {number + 1} of {total} ({wave_describe(nxt)}) starts: the phones it "
            f"adds are offered {to}; the others keep {before}.{resumed}"
        )
    if name == "pause":
        return (
            f"{to} is offered to no new phone: phones already running it keep it, every "
            f"other phone is offered {before}. Resume or Advance starts offering it again."
        )
    if name == "resume":
        counted = (
            " Only failures observed from now on count against the failure gate."
            if rollout.state == RolloutState.HALTED
            else ""
        )
        return (
            f"The phones of waves 1 to {number} of {total} are offered {to} again; the "
            f"others keep {before}.{counted}"
        )
    if name == "cancel":
        return (
            f"The rollout stops for good: phones running {to} keep it, no other phone gets "
            f"it (they keep {before}). {to} stays pending, so test devices keep it."
        )
    back = f"is offered {before}" if rollout.from_version else "is offered nothing any more"
    return (
        f"Everyone goes back: {to} is no longer pending and every phone, test devices "
        f"included, {back}."
    )


def transition_done(rollout: Rollout) -> str:
    """The message after a transition, from the rollout it left."""
    total = rollout.waves.count()
    if rollout.state == RolloutState.COMPLETED:
        return f"Rollout #{rollout.pk} completed: {rollout.to_version} is approved for everyone"
    if rollout.state == RolloutState.RESTORED:
        return (
            f"Rollout #{rollout.pk} restored: everyone goes back to "
            f"{_version(rollout.from_version)}"
        )
    return f"Rollout #{rollout.pk} is {rollout.state} at wave {rollout.current_wave + 1} of {total}"


class TransitionForm(forms.Form):
    reason = forms.CharField(
        max_length=400,
        required=False,
        help_text="Kept with the rollout and in the audit trail; empty: the default.",
    )


# -- the pages --------------------------------------------------------------------------


@admin.register(Rollout)
class RolloutAdmin(admin.ModelAdmin[Rollout]):
    list_display = (
        "number",
        "rule_identity",
        "versions",
        "state",
        "wave",
        "reason",
        "updated_at",
    )
    list_display_links = ("number", "rule_identity")
    list_filter = ("state",)
    list_select_related = ("rule__pool",)
    search_fields = ("rule__brand", "rule__model", "to_version", "from_version", "reason")
    fieldsets = (
        (
            None,
            {
                "fields": (
                    "number",
                    "rule_link",
                    "device_class",
                    "versions",
                    "state",
                    "wave",
                    "reason",
                    "dashboard",
                )
            },
        ),
        ("plan", {"fields": ("plan_table", "wave_table")}),
        (
            "history",
            {
                "fields": (
                    "actor_name",
                    "created_at",
                    "wave_started_at",
                    "counting_since",
                    "updated_at",
                    "finished_at",
                )
            },
        ),
    )
    # Everything shown is read-only: the list is the fieldsets' own.
    readonly_fields = tuple(flatten_fieldsets(fieldsets))
    change_form_template = "admin/portal/rollout/change_form.html"
    plan_template = "admin/portal/rollout/plan_form.html"
    plan_confirmation_template = "admin/portal/rollout/plan_confirmation.html"
    transition_template = "admin/portal/rollout/transition_confirmation.html"

    def get_queryset(self, request: HttpRequest) -> QuerySet[Rollout]:
        return super().get_queryset(request).annotate(wave_total=Count("waves"))

    @admin.display(description="rollout", ordering="id")
    def number(self, obj: Rollout) -> str:
        return f"#{obj.pk}"

    @admin.display(description="rule", ordering="rule__pool__fqdn")
    def rule_identity(self, obj: Rollout) -> str:
        return obj.rule.name  # the identity is on the rule's page

    @admin.display(description="rule")
    def rule_link(self, obj: Rollout) -> str:
        url = reverse("admin:portal_deviceupdaterule_change", args=[obj.rule_id])
        return format_html('<a href="{}">{}</a> ({})', url, obj.rule.name, obj.rule.identity)

    @admin.display(description="device class")
    def device_class(self, obj: Rollout) -> str:
        return obj.rule.device_class

    @admin.display(description="versions")
    def versions(self, obj: Rollout) -> str:
        return f"{_version(obj.from_version)} → {obj.to_version}"

    @admin.display(description="wave")
    def wave(self, obj: Rollout) -> str:
        total = getattr(obj, "wave_total", None)
        if total is None:
            total = obj.waves.count()
        return f"{obj.current_wave + 1} of {total}"

    @admin.display(description="dashboard")
    def dashboard(self, obj: Rollout) -> str:
        url = dashboard_url(obj.pk)
        if url is None:
            return "-"
        return format_html('<a href="{}">planned and observed, wave by wave</a>', url)

    # Rendered by autoescaping templates; render_to_string returns safe HTML.
    @admin.display(description="gates")
    def plan_table(self, obj: Rollout) -> str:
        return render_to_string("admin/portal/rollout/plan.html", {"rollout": obj})

    @admin.display(description="waves")
    def wave_table(self, obj: Rollout) -> str:
        rows = [
            {
                "number": wave.position + 1,
                "target": wave_describe(wave),
                "started_at": wave.started_at,
                "completed_at": wave.completed_at,
                "current": wave.position == obj.current_wave and obj.state in ACTIVE,
            }
            for wave in _waves_of(obj)
        ]
        return render_to_string("admin/portal/rollout/waves.html", {"waves": rows})

    # Rollouts are made by the plan page and changed only by the buttons.
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Rollout | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Rollout | None = None) -> bool:
        return False

    def has_plan_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("portal.add_rollout")

    def has_transition_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("portal.change_rollout")

    def get_urls(self) -> list[URLPattern]:
        pages = [
            path(
                "plan/<int:rule_id>/",
                self.admin_site.admin_view(self.plan_view),
                name="portal_rollout_plan",
            ),
            *(
                path(
                    f"<int:rollout_id>/{name}/",
                    self.admin_site.admin_view(self.transition_view),
                    {"name": name},
                    name=f"portal_rollout_{name}",
                )
                for name in TRANSITIONS
            ),
        ]
        return [*pages, *super().get_urls()]

    def render_change_form(
        self,
        request: HttpRequest,
        context: dict[str, Any],
        add: bool = False,
        change: bool = False,
        form_url: str = "",
        obj: Rollout | None = None,
    ) -> HttpResponse:
        # Reached only once the admin has checked the view permission on ``obj``.
        if obj is not None:
            context["dashboard_url"] = dashboard_url(obj.pk)
            context["rollout_buttons"] = (
                [
                    {
                        "label": t.label,
                        "url": reverse(f"admin:portal_rollout_{t.name}", args=[obj.pk]),
                    }
                    for t in TRANSITIONS.values()
                    if obj.state in t.allowed
                ]
                if self.has_transition_permission(request)
                else []
            )
        return super().render_change_form(request, context, add, change, form_url, obj)

    def _page(
        self, request: HttpRequest, template: str, title: str, **context: Any
    ) -> TemplateResponse:
        context = {
            **self.admin_site.each_context(request),
            "title": title,
            "subtitle": None,
            "opts": self.opts,
            "media": self.media,
            **context,
        }
        request.current_app = self.admin_site.name
        return TemplateResponse(request, template, context)

    def plan_view(self, request: HttpRequest, rule_id: int) -> HttpResponse:
        """Approve the rule's pending version in waves: plan, confirm, then the rollout."""
        if not self.has_plan_permission(request):
            raise PermissionDenied
        rule = DeviceUpdateRule.objects.select_related("pool").filter(pk=rule_id).first()
        if rule is None:
            raise Http404("no such rule")
        actor = actor_of(request)
        form = RolloutPlanForm(
            request.POST if request.method == "POST" else None, rule=rule, actor=actor
        )
        title = f"Approve {rule.pending_version or 'the pending version'} in waves"
        if request.method == "POST" and form.is_valid():
            plan = form.plan()
            if request.POST.get("post") != "yes":
                return self._page(
                    request,
                    self.plan_confirmation_template,
                    title,
                    rule=rule,
                    form=form,
                    plan=plan,
                    preview=plan_preview(rule, plan),
                )
            try:
                rollout = rollout_plan(rule=rule, plan=plan, actor=actor)
            except DomainError as error:
                # Something changed since the confirmation page (another plan, an approve).
                form.refuse(error)
            else:
                self.message_user(
                    request,
                    f"Rollout #{rollout.pk} of {rollout.to_version} on {rule.name} started: "
                    f"wave 1 of {len(plan.waves)} ({plan.waves[0].describe()})",
                    messages.SUCCESS,
                )
                return HttpResponseRedirect(
                    reverse("admin:portal_rollout_change", args=[rollout.pk])
                )
        return self._page(request, self.plan_template, title, rule=rule, form=form)

    def transition_view(self, request: HttpRequest, rollout_id: int, name: str) -> HttpResponse:
        """A button of the rollout page: confirm (what reaches phones), then the service."""
        if not self.has_transition_permission(request):
            raise PermissionDenied
        rollout = Rollout.objects.select_related("rule__pool").filter(pk=rollout_id).first()
        if rollout is None:
            raise Http404("no such rollout")
        transition = TRANSITIONS[name]
        back = reverse("admin:portal_rollout_change", args=[rollout.pk])
        actor = actor_of(request)
        form = TransitionForm(request.POST if request.method == "POST" else None)

        def run(*, dry: bool) -> Rollout:
            reason = form.cleaned_data["reason"].strip() if form.is_bound and not dry else ""
            extra = {"reason": reason} if reason else {}
            return transition.service(rollout=rollout, actor=actor, **extra)

        if request.method == "POST" and request.POST.get("post") == "yes" and form.is_valid():
            try:
                done = run(dry=False)
            except DomainError as error:
                self.message_user(request, error.message, messages.ERROR)
            else:
                self.message_user(request, transition_done(done), messages.SUCCESS)
            return HttpResponseRedirect(back)
        refusal = service_check(lambda: run(dry=True))
        if refusal is not None:
            self.message_user(request, refusal.message, messages.ERROR)
            return HttpResponseRedirect(back)
        return self._page(
            request,
            self.transition_template,
            f"{transition.label} rollout #{rollout.pk}",
            rollout=rollout,
            transition=transition,
            effect=transition_effect(name, rollout),
            form=form,
            back_url=back,
            now=timezone.now(),
        )
