"""Control-panel pages for device update rules: the list and its four actions.

Rules come from package imports, never from a form: there is no add page and the
change page is read-only. Approve, cancel pending, restore and remove are actions,
each confirmed on a page saying what will reach phones, each a thin wrapper over
``rules_apply``. They need ``change_deviceupdaterule`` (remove:
``delete_deviceupdaterule``), so the helpdesk never sees them. The rule's page lists
its rollouts and, for a pending version, offers "Approve in waves…" (the rollout
plan page, ``add_rollout``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.contrib.admin.options import IncorrectLookupParameters
from django.db.models import OuterRef, QuerySet, Subquery
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.html import format_html
from django.utils.safestring import SafeString

from portal.admin.base import actor_of
from portal.choices import RolloutState, RuleAction, RuleState
from portal.display import state_badge
from portal.models import DeviceUpdateRule, Rollout
from portal.selectors import rules_state_q
from portal.services.rules import (
    RuleVersions,
    TransitionRefused,
    rule_transition,
    rules_apply,
)


class RuleStateFilter(admin.SimpleListFilter):
    title = "state"
    parameter_name = "state"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [(str(value), str(label)) for value, label in RuleState.choices]

    def queryset(
        self, request: HttpRequest, queryset: QuerySet[DeviceUpdateRule]
    ) -> QuerySet[DeviceUpdateRule]:
        value = self.value()
        if value is None:
            return queryset
        try:
            state = RuleState(value)
        except ValueError:
            raise IncorrectLookupParameters(f"{value!r} is not a rule state") from None
        return queryset.filter(rules_state_q(state))


@dataclass(frozen=True)
class RulePreview:
    """What an action will do to one rule, in terms of what phones will be offered."""

    rule: DeviceUpdateRule
    refused: bool
    effect: str


def _was(version: str) -> str:
    return version or "nothing"


# The preview's words for a refusal; whether an action is refused is the state machine's.
_PREVIEW_REFUSED = {
    RuleAction.APPROVE: "refused: no pending version to approve",
    RuleAction.RESET: "refused: no pending version to cancel",
    RuleAction.RESTORE: "refused: no approved version to restore",
}


def rule_preview(action: RuleAction, rule: DeviceUpdateRule) -> RulePreview:
    """The confirmation page's line for one rule: ``rule_transition`` said in words."""
    before = RuleVersions.of(rule)
    try:
        after = rule_transition(action, before)
    except TransitionRefused:
        return RulePreview(rule, True, _PREVIEW_REFUSED[action])
    if after is None:
        dropped = f", pending {before.pending} dropped" if before.pending else ""
        effect = f"rule deleted: nothing is offered any more (was {_was(before.approved)}){dropped}"
        return RulePreview(rule, False, effect)
    if action is RuleAction.APPROVE:
        kept = f"; {after.restore} kept for a restore" if after.restore else ""
        effect = (
            f"everyone gets {after.approved} (was {_was(before.approved)}), "
            f"test devices follow{kept}"
        )
    elif action is RuleAction.RESET:
        effect = f"test devices go back to {_was(after.approved)} ({before.pending} cancelled)"
    else:
        back = (
            f"everyone goes back to {after.approved}"
            if after.approved
            else "nothing is offered any more"
        )
        testers = f"test devices keep {after.pending}" if after.pending else "test devices follow"
        effect = f"{back} (was {before.approved}), {testers}"
    return RulePreview(rule, False, effect)


@admin.register(DeviceUpdateRule)
class DeviceUpdateRuleAdmin(admin.ModelAdmin[DeviceUpdateRule]):
    # What fits at 1280 px: the class and pool in words, the versions, the state, the
    # active rollout; the identity and the class's fields are on the rule's page.
    list_display = (
        "name",
        "approved_version",
        "pending_version",
        "restore_version",
        "state",
        "active_rollout",
    )
    list_filter = ("brand", "model", RuleStateFilter, "pool")
    list_select_related = ("pool",)
    search_fields = (
        "pool__fqdn",
        "brand",
        "model",
        "rule_id",
        "pending_version",
        "approved_version",
        "restore_version",
    )
    fields = (
        "name",
        "identity",
        "pool",
        "rule_id",
        "device_type",
        "brand",
        "model",
        "revision",
        "locale",
        "update_type",
        "pending_version",
        "approved_version",
        "restore_version",
        "state",
        "created_at",
        "updated_at",
    )
    readonly_fields = fields
    actions = ("approve_rules", "reset_rules", "restore_rules", "remove_rules")
    confirmation_template = "admin/portal/deviceupdaterule/action_confirmation.html"
    change_form_template = "admin/portal/deviceupdaterule/change_form.html"

    @admin.display(description="identity", ordering="pool__fqdn")
    def identity(self, obj: DeviceUpdateRule) -> str:
        return obj.identity

    @admin.display(description="rule", ordering="brand")
    def name(self, obj: DeviceUpdateRule) -> str:
        return obj.name

    @admin.display(description="state")
    def state(self, obj: DeviceUpdateRule) -> SafeString:
        return state_badge(obj.state.value, str(obj.state.label))

    @admin.display(description="rollout")
    def active_rollout(self, obj: DeviceUpdateRule) -> SafeString | str:
        pk = getattr(obj, "active_rollout_pk", None)
        if pk is None:
            return "-"
        url = reverse("admin:portal_rollout_change", args=[pk])
        return format_html('<a href="{}">#{} {}</a>', url, pk, obj.active_rollout_state)  # type: ignore[attr-defined]

    def get_queryset(self, request: HttpRequest) -> QuerySet[DeviceUpdateRule]:
        # One subquery for the list's rollout column instead of a query per row.
        active = Rollout.objects.filter(
            rule=OuterRef("pk"), state__in=RolloutState.active()
        ).order_by("-created_at")
        return (
            super()
            .get_queryset(request)
            .annotate(
                active_rollout_pk=Subquery(active.values("pk")[:1]),
                active_rollout_state=Subquery(active.values("state")[:1]),
            )
        )

    # Rules are made by imports and changed only by the actions below.
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(
        self, request: HttpRequest, obj: DeviceUpdateRule | None = None
    ) -> bool:
        return False

    def has_delete_permission(
        self, request: HttpRequest, obj: DeviceUpdateRule | None = None
    ) -> bool:
        return False

    def has_rule_change_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("portal.change_deviceupdaterule")

    def has_rule_remove_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("portal.delete_deviceupdaterule")

    def render_change_form(
        self,
        request: HttpRequest,
        context: dict[str, Any],
        add: bool = False,
        change: bool = False,
        form_url: str = "",
        obj: DeviceUpdateRule | None = None,
    ) -> HttpResponse:
        # Reached only once the admin has checked the view permission on ``obj``.
        if obj is not None:
            # The rule for each rollout's name, in the same query.
            rollouts = list(
                Rollout.objects.filter(rule=obj)
                .select_related("rule")
                .order_by("-created_at", "-pk")
            )
            context["rollouts"] = [
                {
                    "rollout": rollout,
                    "url": reverse("admin:portal_rollout_change", args=[rollout.pk]),
                }
                for rollout in rollouts
            ]
            active = any(rollout.state in RolloutState.active() for rollout in rollouts)
            if obj.pending_version and not active and request.user.has_perm("portal.add_rollout"):
                context["plan_url"] = reverse("admin:portal_rollout_plan", args=[obj.pk])
            context["rule_actions"] = self._page_actions(request, obj, context.get("plan_url"))
            context["changelist_url"] = reverse("admin:portal_deviceupdaterule_changelist")
            context["action_checkbox_name"] = helpers.ACTION_CHECKBOX_NAME
        return super().render_change_form(request, context, add, change, form_url, obj)

    def _page_actions(
        self, request: HttpRequest, rule: DeviceUpdateRule, plan_url: str | None
    ) -> list[tuple[str, str, str | None]]:
        """The rule page's buttons, (action name, label, link): each action opens the
        same confirmation page as the list's, for this rule only; "Approve in waves"
        is a link to the rollout plan."""
        buttons: list[tuple[str, str, str | None]] = []
        change = self.has_rule_change_permission(request)
        if change and rule.pending_version:
            buttons.append(("approve_rules", "Approve", None))
        if plan_url:
            buttons.append(("approve-in-waves", "Approve in waves", plan_url))
        if change and rule.pending_version:
            buttons.append(("reset_rules", "Cancel pending", None))
        if change and rule.approved_version:
            buttons.append(("restore_rules", "Restore", None))
        if self.has_rule_remove_permission(request):
            buttons.append(("remove_rules", "Remove", None))
        return buttons

    @admin.action(description="Approve selected rules", permissions=["rule_change"])
    def approve_rules(
        self, request: HttpRequest, queryset: QuerySet[DeviceUpdateRule]
    ) -> TemplateResponse | None:
        return self._confirm_then_apply(request, queryset, RuleAction.APPROVE, "approve_rules")

    @admin.action(
        description="Cancel pending versions of selected rules", permissions=["rule_change"]
    )
    def reset_rules(
        self, request: HttpRequest, queryset: QuerySet[DeviceUpdateRule]
    ) -> TemplateResponse | None:
        return self._confirm_then_apply(request, queryset, RuleAction.RESET, "reset_rules")

    @admin.action(description="Restore selected rules", permissions=["rule_change"])
    def restore_rules(
        self, request: HttpRequest, queryset: QuerySet[DeviceUpdateRule]
    ) -> TemplateResponse | None:
        return self._confirm_then_apply(request, queryset, RuleAction.RESTORE, "restore_rules")

    @admin.action(description="Remove selected rules", permissions=["rule_remove"])
    def remove_rules(
        self, request: HttpRequest, queryset: QuerySet[DeviceUpdateRule]
    ) -> TemplateResponse | None:
        return self._confirm_then_apply(request, queryset, RuleAction.REMOVE, "remove_rules")

    def _confirm_then_apply(
        self,
        request: HttpRequest,
        queryset: QuerySet[DeviceUpdateRule],
        action: RuleAction,
        action_name: str,
    ) -> TemplateResponse | None:
        rules = list(queryset.select_related("pool"))
        if request.POST.get("post") == "yes":
            names = {rule.identity: rule.name for rule in rules}
            for outcome in rules_apply(action=action, rules=rules, actor=actor_of(request)):
                # The list says the rule's name; the services' messages, shared with the
                # commands and the API, start with its identity.
                name = names.get(outcome.identity, outcome.identity)
                text = outcome.message.removeprefix(outcome.identity).removeprefix(": ")
                level = messages.SUCCESS if outcome.ok else messages.ERROR
                self.message_user(request, f"{name}: {text}", level)
            return None  # back to the list, which shows the messages
        previews = [rule_preview(action, rule) for rule in rules]
        context = {
            **self.admin_site.each_context(request),
            "title": f"{action.label}: {len(rules)} rule{'s' if len(rules) != 1 else ''}",
            "subtitle": None,
            "opts": self.opts,
            "action_name": action_name,
            "action_label": action.label,
            "previews": previews,
            "refused_count": sum(preview.refused for preview in previews),
            "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
            "media": self.media,
        }
        request.current_app = self.admin_site.name
        return TemplateResponse(request, self.confirmation_template, context)
