"""The benchmarks' baseline: the project's whole Django stack (settings, middleware)
with one trivial view that reads the request body and answers an empty 200, on every
path. Served by the same gunicorn configuration as the real application, it is the
ceiling an update check is measured against.

Used as ROOT_URLCONF by a settings module the benchmarks write into their private
data directory (``from deviceupdate.settings import *``), never by the service.
"""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.urls import re_path
from django.views.decorators.csrf import csrf_exempt


@csrf_exempt
def empty(request: HttpRequest) -> HttpResponse:
    request.body  # noqa: B018 -- read it, as the update check does
    return HttpResponse(b"", content_type="text/xml; charset=utf-8")


urlpatterns = [re_path(r"^", empty)]
