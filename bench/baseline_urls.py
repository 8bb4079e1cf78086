"""The benchmarks' baselines: the project's whole Django stack (settings, middleware)
with trivial views, served by the same gunicorn configuration as the real application.

- every path: read the request body and answer an empty 200, the ceiling an update
  check or a log upload is measured against;
- ``/floor/...``: the least any log store must do with an upload, stream the body into
  a new file beside its final name and rename it into place (no checks, no quota, no
  listing); the log-upload benchmark reports how close the service comes to it.

Used as ROOT_URLCONF by a settings module the benchmarks write into their private
data directory (``from deviceupdate.settings import *``), never by the service.
"""

from __future__ import annotations

import os
import uuid

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.urls import re_path
from django.views.decorators.csrf import csrf_exempt


@csrf_exempt
def empty(request: HttpRequest) -> HttpResponse:
    request.body  # noqa: B018 -- read it, as the update check does
    return HttpResponse(b"", content_type="text/xml; charset=utf-8")


@csrf_exempt
def store_floor(request: HttpRequest) -> HttpResponse:
    folder = os.path.join(settings.DEVICE_LOG_DIR, "floor", request.GET["mac"])
    os.makedirs(folder, exist_ok=True)
    part = os.path.join(folder, f".{uuid.uuid4().hex}.part")
    with open(part, "xb") as out:
        for chunk in iter(lambda: request.read(64 * 1024), b""):
            out.write(chunk)
    os.replace(part, os.path.join(folder, request.GET["name"]))
    return HttpResponse(b"", status=201, content_type="text/xml; charset=utf-8")


urlpatterns = [re_path(r"^floor/", store_floor), re_path(r"^", empty)]
