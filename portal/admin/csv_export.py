"""The control panel's one CSV export: the rows a list shows, with its filters, search
and order, streamed (the big tables are never built in memory), each cell protected
against spreadsheet formulas.

A ``CsvExportAdmin`` names its columns (``csv_header``), the file (``csv_filename``)
and one row's values (``csv_row``); the page is ``export.csv`` beside the list, named
``admin:<app>_<model>_export``.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Iterator, Sequence
from typing import Any, TypeVar

from django.contrib import admin
from django.contrib.admin.options import IncorrectLookupParameters
from django.core.exceptions import PermissionDenied
from django.db import models
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, StreamingHttpResponse
from django.urls import URLPattern, path, reverse

M = TypeVar("M", bound=models.Model)

# A spreadsheet runs a cell starting with one of these as a formula (OWASP "CSV injection").
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
_CHUNK_SIZE = 2000


def csv_cell(value: Any) -> str:
    """The text of one cell, with a leading quote when a spreadsheet would run it."""
    text = "" if value is None else str(value)
    return f"'{text}" if text.startswith(_FORMULA_STARTS) else text


class _Echo:
    """A file-like object whose ``write`` hands the line back to the CSV writer's caller."""

    def write(self, value: str) -> str:
        return value


def csv_lines(header: Sequence[str], rows: Iterable[Iterable[Any]]) -> Iterator[str]:
    """The export's lines: the header, then one line per row, every cell through
    ``csv_cell``."""
    writer = csv.writer(_Echo())
    yield writer.writerow(header)
    for values in rows:
        yield writer.writerow([csv_cell(value) for value in values])


class CsvExportAdmin(admin.ModelAdmin[M]):
    """A list with an ``export.csv`` page for whoever may view it."""

    csv_header: tuple[str, ...]
    csv_filename: str

    def csv_row(self, obj: M) -> Sequence[Any]:
        """The values of one row, in the order of ``csv_header``."""
        raise NotImplementedError

    def _url_name(self, page: str) -> str:
        return f"{self.opts.app_label}_{self.opts.model_name}_{page}"

    def get_urls(self) -> list[URLPattern]:
        export = path(
            "export.csv",
            self.admin_site.admin_view(self.export_csv_view),
            name=self._url_name("export"),
        )
        return [export, *super().get_urls()]

    def export_csv_view(self, request: HttpRequest) -> HttpResponse | StreamingHttpResponse:
        """The rows the list shows with the same filters and search, as CSV."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        try:
            changelist = self.get_changelist_instance(request)
        except IncorrectLookupParameters:
            changelist_url = reverse(f"admin:{self._url_name('changelist')}")
            return HttpResponseRedirect(f"{changelist_url}?e=1")
        rows = (self.csv_row(obj) for obj in changelist.queryset.iterator(chunk_size=_CHUNK_SIZE))
        response = StreamingHttpResponse(
            csv_lines(self.csv_header, rows), content_type="text/csv; charset=utf-8"
        )
        response["Content-Disposition"] = f'attachment; filename="{self.csv_filename}"'
        return response
