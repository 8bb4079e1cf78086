"""``/``: what this service is and where to go: the control panel, the API and its
interactive schema, the health probe, and the address phones use."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_safe


@require_safe
def landing(request: HttpRequest) -> HttpResponse:
    return render(
        request,
        "landing.html",
        {
            "links": [
                ("Control panel", reverse("admin:index"), "Import, approve, roll out, watch."),
                ("REST API", reverse("api:api-root"), "Every endpoint, browsable."),
                ("API reference", reverse("api:docs"), "The OpenAPI schema, interactive."),
                ("Health", reverse("healthz"), "What the load balancer asks."),
            ],
            "update_check": request.build_absolute_uri(reverse("update-check")),
        },
    )
