"""The migrations give a fresh install one site, one pool, one server, and both roles."""

from __future__ import annotations

import pytest
from django.apps import apps
from django.conf import settings
from django.contrib.auth.models import Group

from portal.models import Pool, Server, Site
from portal.roles import ADMINISTRATORS, HELPDESK, ROLE_APPS

pytestmark = pytest.mark.django_db


def test_fresh_install_has_one_site_pool_and_server_for_this_machine() -> None:
    assert list(Site.objects.values_list("name", flat=True)) == ["Default"]
    pool = Pool.objects.get()
    assert (pool.fqdn, pool.internal_web_fqdn, pool.external_web_fqdn) == (
        settings.SERVER_FQDN,
        settings.SERVER_FQDN,
        "",
    )
    assert pool.identity == f"service:WebServer:{settings.SERVER_FQDN}"
    server = Server.objects.get()
    assert (server.fqdn, server.pool_id, server.queue) == (
        settings.SERVER_FQDN,
        pool.pk,
        f"server.{settings.SERVER_FQDN}",
    )


def _codenames(group_name: str) -> set[str]:
    return set(Group.objects.get(name=group_name).permissions.values_list("codename", flat=True))


def test_administrators_hold_every_permission_of_every_service_model() -> None:
    expected = {
        f"{action}_{model._meta.model_name}"
        for app_label in ROLE_APPS
        for model in apps.get_app_config(app_label).get_models()
        for action in ("add", "change", "delete", "view")
    }
    assert {"add_site", "view_server"} <= expected
    assert _codenames(ADMINISTRATORS) == expected


def test_helpdesk_holds_only_view_permissions() -> None:
    expected = {
        f"view_{model._meta.model_name}"
        for app_label in ROLE_APPS
        for model in apps.get_app_config(app_label).get_models()
    }
    assert _codenames(HELPDESK) == expected
