"""The control panel's sign-in guard (django-axes) and its page of failed sign-ins.

- ``SigninGuardBackend`` refuses a locked-out sign-in before any password is checked.
- The phones' external sign-ins (``RequestHandlerExt/``) check users' passwords through
  the same ``authenticate``, but keep their own throttle (``DEVICEUPDATE_AUTH_*``, 429 in
  the phones' XML): ``is_phone_sign_in`` keeps axes from counting or blocking them, so a
  phone guessing a password never locks its user out of the control panel.
- A lockout answers 429 with one line (JSON for clients that ask for it) and is audited
  by ``signin_lockout_record``; an administrator lifts it here ("Lift lockout", through
  ``signin_lockout_lift``). The helpdesk may look, not lift; nobody edits or deletes.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from axes.backends import AxesStandaloneBackend
from axes.models import AccessAttempt
from axes.signals import user_locked_out
from django.conf import settings
from django.contrib import admin, messages
from django.db.models import (
    BooleanField,
    ExpressionWrapper,
    IntegerField,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Sum,
)
from django.db.models.functions import Coalesce
from django.dispatch import receiver
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.template import engines
from django.utils import timezone

from portal.admin.base import actor_of
from portal.errors import DomainError
from portal.roles import ADMINISTRATORS, HELPDESK
from portal.services.signin import signin_lockout_lift, signin_lockout_record

# The phones' external endpoints (deviceupdate/urls.py): their sign-ins are not axes'.
PHONE_SIGN_IN_URLS = frozenset({"update-check-external", "log-upload-external"})

_LOCKOUT_PAGE = engines["django"].from_string(
    '{% extends "admin/base_site.html" %}'
    '{% block content %}<p class="errornote">{{ message }}</p>{% endblock %}'
)


class SigninGuardBackend(AxesStandaloneBackend):
    """axes' guard for sign-ins made for a request. One made without a request (a
    script, the shell) has no address to count or lock and goes to the next backend."""

    def authenticate(
        self,
        request: HttpRequest | None,
        username: str | None = None,
        password: str | None = None,
        **kwargs: Any,
    ) -> None:
        if request is None:
            return
        super().authenticate(request, username, password, **kwargs)


def is_phone_sign_in(request: HttpRequest, credentials: dict[str, Any] | None = None) -> bool:
    """``AXES_WHITELIST_CALLABLE``: a phone's external sign-in, left to the phones' throttle."""
    match = getattr(request, "resolver_match", None)
    return match is not None and match.url_name in PHONE_SIGN_IN_URLS


def lockout_message() -> str:
    return (
        "Too many failed sign-ins: locked for up to "
        f"{settings.SIGNIN_COOLOFF_MINUTES} minutes, unless an administrator lifts it sooner."
    )


def lockout_response(
    request: HttpRequest,
    original_response: HttpResponse | None = None,
    credentials: dict[str, Any] | None = None,
) -> HttpResponse:
    """``AXES_LOCKOUT_CALLABLE``: 429 with one line, as JSON for clients that ask for it."""
    message = lockout_message()
    wants_json = (
        request.path_info.startswith("/api/")
        or request.headers.get("x-requested-with") == "XMLHttpRequest"
        or request.get_preferred_type(["text/html", "application/json"]) == "application/json"
    )
    response: HttpResponse
    if wants_json:
        response = JsonResponse({"detail": message}, status=429)
    else:
        context = {**admin.site.each_context(request), "title": "Sign-in locked"}
        page = _LOCKOUT_PAGE.render({**context, "message": message}, request)
        response = HttpResponse(page, status=429)
    response["Retry-After"] = str(settings.SIGNIN_COOLOFF_MINUTES * 60)
    return response


@receiver(user_locked_out, dispatch_uid="portal.signin.locked_out")
def _audit_lockout(
    sender: object, request: HttpRequest, username: str | None, ip_address: str | None, **_: Any
) -> None:
    # axes sends this signal again for every try refused while locked; only the failure
    # that locked carries its count (axes' only hook for a lockout, hence a signal).
    failures = getattr(request, "axes_failures_since_start", None)
    if failures is not None:
        signin_lockout_record(username=username or "", address=ip_address, failures=failures)


def _in_role(request: HttpRequest, *groups: str) -> bool:
    user = request.user
    return bool(
        user.is_active and (user.is_superuser or user.groups.filter(name__in=groups).exists())
    )


class LockedFilter(admin.SimpleListFilter):
    title = "locked"
    parameter_name = "locked"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("yes", "Locked"), ("no", "Not locked")]

    def queryset(
        self, request: HttpRequest, queryset: QuerySet[AccessAttempt]
    ) -> QuerySet[AccessAttempt]:
        if self.value() == "yes":
            return queryset.filter(locked=True)
        if self.value() == "no":
            return queryset.filter(locked=False)
        return queryset


@admin.register(AccessAttempt)
class LockoutAdmin(admin.ModelAdmin[AccessAttempt]):
    """Failed sign-ins per username and address, with whether they lock right now."""

    list_display = ("username", "ip_address", "failures_since_start", "attempt_time", "state")
    list_filter = (LockedFilter,)
    search_fields = ("username", "ip_address")
    ordering = ("-attempt_time",)
    fields = (
        "username",
        "ip_address",
        "failures_since_start",
        "attempt_time",
        "state",
        "path_info",
        "user_agent",
    )
    readonly_fields = fields
    actions = ("lift_lockouts",)

    def get_queryset(self, request: HttpRequest) -> QuerySet[AccessAttempt]:
        # The rules of settings.AXES_LOCKOUT_PARAMETERS, as axes counts them: failures
        # within the cool-off, per username and address, and per address.
        since = timezone.now() - dt.timedelta(minutes=settings.SIGNIN_COOLOFF_MINUTES)
        limit = settings.SIGNIN_FAILURE_LIMIT
        address_failures = (
            AccessAttempt.objects.filter(ip_address=OuterRef("ip_address"), attempt_time__gte=since)
            .values("ip_address")
            .annotate(total=Sum("failures_since_start"))
            .values("total")
        )
        return (
            super()
            .get_queryset(request)
            .annotate(
                address_failures=Coalesce(
                    Subquery(address_failures), 0, output_field=IntegerField()
                )
            )
            .annotate(
                locked=ExpressionWrapper(
                    Q(attempt_time__gte=since, failures_since_start__gte=limit)
                    | Q(address_failures__gte=limit),
                    output_field=BooleanField(),
                )
            )
        )

    @admin.display(description="state")
    def state(self, obj: AccessAttempt) -> str:
        if getattr(obj, "locked", False):
            until = obj.attempt_time + dt.timedelta(minutes=settings.SIGNIN_COOLOFF_MINUTES)
            return f"locked until {timezone.localtime(until):%Y-%m-%d %H:%M}"
        return "not locked"

    # Rows are written by axes only; they go away by lifting (or when the cool-off ends).
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: AccessAttempt | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: AccessAttempt | None = None) -> bool:
        return False

    def has_module_permission(self, request: HttpRequest) -> bool:
        return _in_role(request, ADMINISTRATORS, HELPDESK)

    def has_view_permission(self, request: HttpRequest, obj: AccessAttempt | None = None) -> bool:
        return _in_role(request, ADMINISTRATORS, HELPDESK)

    def has_lift_permission(self, request: HttpRequest) -> bool:
        return _in_role(request, ADMINISTRATORS)

    @admin.action(description="Lift lockout of selected sign-ins", permissions=["lift"])
    def lift_lockouts(self, request: HttpRequest, queryset: QuerySet[AccessAttempt]) -> None:
        # One lift per address: it clears every failure from there (the per-address rule).
        lifts: dict[tuple[str | None, str | None], str] = {}
        for attempt in queryset.order_by("ip_address", "username"):
            key = (attempt.ip_address, None if attempt.ip_address else attempt.username)
            lifts.setdefault(key, attempt.username or "")
        actor = actor_of(request)
        for (address, _), username in lifts.items():
            try:
                failures = signin_lockout_lift(username=username, address=address, actor=actor)
            except DomainError as error:
                self.message_user(request, error.message, messages.ERROR)
                continue
            where = f" from {address}" if address else ""
            self.message_user(
                request,
                f"Lifted the lockout of {username!r}{where}: {failures} failed sign-ins cleared.",
                messages.SUCCESS,
            )
