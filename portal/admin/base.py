"""Shared pieces of the control-panel pages: every write goes through a service.

A form asks the service itself whether its input would be accepted (a dry run that
is rolled back), so a refusal shows as a form error naming the field and nothing is
saved; ``save_model`` then makes the change through the same service, audited. A
refusal the form could not foresee (a concurrent change) becomes an error message.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from django import forms
from django.contrib import admin, messages
from django.db import models, transaction
from django.forms.models import BaseInlineFormSet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect

from portal.errors import DomainError
from portal.models import Site
from portal.services.audit import Actor

M = TypeVar("M", bound=models.Model)


def actor_of(request: HttpRequest) -> Actor:
    return Actor.of_user(request.user)


class _DryRun(Exception):
    """Raised to roll back a service call made only to check its input."""


def service_check(call: Callable[[], object]) -> DomainError | None:
    """Run ``call`` in a savepoint that is always rolled back; its refusal, if any."""
    try:
        with transaction.atomic():
            call()
            raise _DryRun
    except _DryRun:
        return None
    except DomainError as error:
        return error


def adopt(target: models.Model, source: models.Model) -> None:
    """Make the admin's form instance the row the service saved (pk, normalised values)."""
    for field in source._meta.concrete_fields:
        setattr(target, field.attname, getattr(source, field.attname))
    target._state.adding = False
    target._state.db = source._state.db


def scope_choices(*, exclude: set[str] | None = None) -> list[tuple[str, str]]:
    """``global`` and ``site:<name>`` for every site, as the services spell scopes."""
    scopes = ["global", *(f"site:{name}" for name in Site.objects.values_list("name", flat=True))]
    return [(scope, scope) for scope in scopes if scope not in (exclude or set())]


class ServiceForm(forms.ModelForm[M]):
    """A model form whose ``apply()`` makes the change through a service.

    ``clean()`` dry-runs ``apply()`` once the fields are valid, so the service's own
    checks (identifiers, scopes, duplicates, ranges) become form errors.
    """

    actor: Actor  # set per request by ServiceAdmin.get_form

    def apply(self) -> M:
        raise NotImplementedError

    def clean(self) -> dict[str, Any]:
        cleaned: dict[str, Any] = super().clean() or {}
        if not self.errors:
            error = service_check(self.apply)
            if error is not None:
                field = error.field if error.field in self.fields else None
                # Shown beside the field: no need to repeat its name ("field: message").
                message = error.message.removeprefix(f"{field}: ") if field else error.message
                self.add_error(field, message)
        return cleaned


class ServiceAdmin(admin.ModelAdmin[M]):
    """Pages whose writes go through services; a late refusal becomes a message."""

    def get_form(
        self, request: HttpRequest, obj: M | None = None, change: bool = False, **kwargs: Any
    ) -> type[forms.ModelForm[M]]:
        form = super().get_form(request, obj, change, **kwargs)
        if issubclass(form, ServiceForm) and request.user.is_authenticated:
            return type(form.__name__, (form,), {"actor": actor_of(request)})
        return form

    def save_model(self, request: HttpRequest, obj: M, form: Any, change: Any) -> None:
        if not isinstance(form, ServiceForm):
            raise TypeError(f"{type(self).__name__} saves only through a ServiceForm")
        adopt(obj, form.apply())

    def _refused(self, request: HttpRequest, error: DomainError) -> HttpResponse:
        self.message_user(request, error.message, messages.ERROR)
        return HttpResponseRedirect(request.get_full_path())

    # The admin runs these views in a transaction: a DomainError rolls all of it back.
    def changeform_view(
        self,
        request: HttpRequest,
        object_id: str | None = None,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        try:
            return super().changeform_view(request, object_id, form_url, extra_context)
        except DomainError as error:
            return self._refused(request, error)

    def delete_view(
        self, request: HttpRequest, object_id: str, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        try:
            return super().delete_view(request, object_id, extra_context)
        except DomainError as error:
            return self._refused(request, error)

    def changelist_view(
        self, request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        try:
            return super().changelist_view(request, extra_context)
        except DomainError as error:
            return self._refused(request, error)


P = TypeVar("P", bound=models.Model)


class LabelledInlineFormSet(BaseInlineFormSet[Any, Any, Any]):
    """Rows whose inputs are named for screen readers: Django's tabular inline labels its
    columns, not the inputs (nor the Delete box) in its rows (axe-core's ``label``)."""

    def add_fields(self, form: forms.Form, index: int | None) -> None:
        super().add_fields(form, index)
        for name, field in form.fields.items():
            label = "Delete" if name == "DELETE" else str(field.label or name)
            field.widget.attrs.setdefault("aria-label", label)


class LabelledTabularInline(admin.TabularInline[M, P]):
    formset = LabelledInlineFormSet
