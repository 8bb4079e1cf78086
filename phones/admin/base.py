"""What the phone-side admin pages share: read-only tables that search a whole MAC
address through its index, and the words the control panel uses for an outcome."""

from __future__ import annotations

from typing import TypeVar

from django.contrib import admin
from django.db import models
from django.db.models import Q, QuerySet
from django.http import HttpRequest

from phones.choices import Outcome
from phones.selectors import (
    mac_search_term,
)
from portal.admin.audit import BoundedCountPaginator

M = TypeVar("M", bound=models.Model)


def outcome_label(value: str) -> str:
    """The words the control panel uses for an outcome (``not yet on this server``)."""
    return Outcome(value).label if value in Outcome.values else value


class ReadOnlyAdmin(admin.ModelAdmin[M]):
    """Viewable with the view permission; nobody adds, edits or deletes, not even a superuser.

    Whole-MAC searches go to the stored form (12 upper-case hex digits) through the index.
    """

    show_full_result_count = False
    paginator = BoundedCountPaginator
    list_per_page = 100

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: M | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: M | None = None) -> bool:
        return False

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[M], search_term: str
    ) -> tuple[QuerySet[M], bool]:
        mac = mac_search_term(search_term)
        if mac is None:
            return super().get_search_results(request, queryset, search_term)
        # 00-04-f2-11-22-33, 00:04:F2:11:22:33 and 0004f2112233 all name one phone; exact
        # matches on the indexed MAC and serial columns, never a scan of the table.
        return queryset.filter(Q(mac=mac) | Q(serial=search_term.strip())), False
