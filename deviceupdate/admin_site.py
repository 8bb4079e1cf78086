"""The control panel's admin site: Django's own, branded, with the dashboards' pages at
its top level (``admin:fleet-dashboard``, ``admin:rollout-dashboard``)."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.contrib.admin.apps import AdminConfig
from django.urls import URLPattern, URLResolver


class DeviceUpdateAdminSite(admin.AdminSite):
    site_header = "Device Update control panel"
    site_title = "Device Update"
    index_title = "Phones, firmware and rollouts"

    def get_urls(self) -> list[URLResolver | URLPattern]:
        # Imported here: this site is created while the apps load, before the models
        # the dashboards read can be imported.
        from phones.admin.dashboards import Dashboards
        from portal.admin.readiness import ReadinessPage

        # Before the site's own URLs, whose last pattern catches everything.
        return [*Dashboards(self).urls(), *ReadinessPage(self).urls(), *super().get_urls()]

    @property
    def login_form(self) -> Any:  # type: ignore[override]
        # Says "the directory is unreachable" rather than "wrong password" (imported
        # here, like the dashboards: the form reads the user model).
        from portal.admin.signin import DirectorySignInForm

        return DirectorySignInForm


class DeviceUpdateAdminConfig(AdminConfig):
    default_site = "deviceupdate.admin_site.DeviceUpdateAdminSite"
