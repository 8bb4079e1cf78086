"""The control panel's Deployment readiness page (``admin:deployment-readiness`` at
``/admin/readiness/``): runs the checks of ``manage.py check_deployment`` on request and
shows each PASS / WARN / FAIL with its fix. The checks only read, so both roles (who may
view servers) may run them; the page's URL sits at the admin site's top level
(``deviceupdate.admin_site``)."""

from __future__ import annotations

from django.contrib.admin import AdminSite
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import URLPattern, path
from django.views.decorators.http import require_http_methods

from portal.readiness.runner import configured_domains, readiness_run, readiness_summary

PERMISSION = "portal.view_server"


class ReadinessPage:
    """The Deployment readiness page of one admin site."""

    def __init__(self, site: AdminSite) -> None:
        self.site = site

    def urls(self) -> list[URLPattern]:
        view = require_http_methods(["GET", "POST"])(self.view)
        return [path("readiness/", self.site.admin_view(view), name="deployment-readiness")]

    def view(self, request: HttpRequest) -> HttpResponse:
        """GET: the page and its button; POST (the button): the checks' results."""
        if not request.user.has_perm(PERMISSION):
            raise PermissionDenied
        request.current_app = self.site.name
        results = readiness_run() if request.method == "POST" else None
        context = {
            **self.site.each_context(request),
            "title": "Deployment readiness",
            "subtitle": None,
            "domains": configured_domains(),
            "results": results,
            "summary": readiness_summary(results) if results is not None else None,
        }
        return TemplateResponse(request, "admin/readiness/readiness.html", context)
