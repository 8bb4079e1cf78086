"""The tooling as a Django app, only for its ``make_demo_package`` command: the tooling
calls the app's services, the app never imports the tooling for the demo."""

from __future__ import annotations

from django.apps import AppConfig


class DevtoolsConfig(AppConfig):
    name = "deviceupdate_devtools"
    verbose_name = "Device Update tooling"
