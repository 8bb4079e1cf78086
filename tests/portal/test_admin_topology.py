"""The control panel: branding, login, and the topology pages by role."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.test import Client

from portal.models import AuditEntry, Pool, Server, Site

pytestmark = pytest.mark.django_db

TOPOLOGY_PAGES = ["/admin/portal/site/", "/admin/portal/pool/", "/admin/portal/server/"]


def test_login_page_is_branded(client: Client) -> None:
    response = client.get("/admin/login/")
    assert response.status_code == 200
    assert "Device Update control panel" in response.content.decode()


@pytest.mark.parametrize("page", ["/admin/", *TOPOLOGY_PAGES])
def test_anonymous_users_are_sent_to_the_login_page(client: Client, page: str) -> None:
    response = client.get(page)
    assert response.status_code == 302
    assert response["Location"] == f"/admin/login/?next={page}"


@pytest.mark.parametrize("page", TOPOLOGY_PAGES)
def test_administrator_and_helpdesk_see_topology_pages(
    client: Client, administrator: User, helpdesk: User, page: str
) -> None:
    for user in (administrator, helpdesk):
        client.force_login(user)
        assert client.get(page).status_code == 200


def test_administrator_can_add_a_pool(client: Client, administrator: User) -> None:
    client.force_login(administrator)
    site = Site.objects.get()
    response = client.post(
        "/admin/portal/pool/add/",
        {
            "site": site.pk,
            "fqdn": "pool02.example.org",
            "internal_web_fqdn": "pool02.example.org",
            "external_web_fqdn": "web.example.org",
            "servers-TOTAL_FORMS": "1",
            "servers-INITIAL_FORMS": "0",
            "servers-0-fqdn": "fe01.example.org",
        },
    )
    assert response.status_code == 302
    pool = Pool.objects.get(fqdn="pool02.example.org")
    assert list(pool.servers.values_list("fqdn", flat=True)) == ["fe01.example.org"]
    # The page and its inline both saved through the topology service, audited.
    assert list(
        AuditEntry.objects.order_by("id").values_list("action", "actor_name", "object_repr")
    ) == [
        ("portal.pool.created", "ada", "pool02.example.org"),
        ("portal.server.created", "ada", "fe01.example.org"),
    ]


def test_invalid_fqdn_is_refused_with_a_message_and_nothing_changes(
    client: Client, administrator: User
) -> None:
    client.force_login(administrator)
    response = client.post(
        "/admin/portal/server/add/",
        {"pool": Pool.objects.get().pk, "fqdn": "Bad_Host!"},
    )
    assert response.status_code == 200
    assert "is not a valid host name" in response.content.decode()
    assert Server.objects.count() == 1


def test_helpdesk_cannot_change_topology(client: Client, helpdesk: User) -> None:
    client.force_login(helpdesk)
    pool = Pool.objects.get()
    assert client.get("/admin/portal/pool/add/").status_code == 403
    response = client.post(
        f"/admin/portal/pool/{pool.pk}/change/",
        {"site": pool.site_id, "fqdn": "changed.example.org", "internal_web_fqdn": "x.example"},
    )
    assert response.status_code == 403
    assert Pool.objects.get().fqdn == pool.fqdn
    assert (
        client.post(
            f"/admin/portal/server/{Server.objects.get().pk}/delete/", {"post": "yes"}
        ).status_code
        == 403
    )
    assert Server.objects.count() == 1


def test_removing_a_server_inline_goes_through_the_service(
    client: Client, administrator: User
) -> None:
    client.force_login(administrator)
    pool = Pool.objects.get()
    extra = Server.objects.create(pool=pool, fqdn="fe02.example.org")
    first = Server.objects.exclude(pk=extra.pk).get()

    response = client.post(
        f"/admin/portal/pool/{pool.pk}/change/",
        {
            "site": pool.site_id,
            "fqdn": pool.fqdn,
            "internal_web_fqdn": pool.internal_web_fqdn,
            "external_web_fqdn": "",
            "servers-TOTAL_FORMS": "2",
            "servers-INITIAL_FORMS": "2",
            "servers-0-id": first.pk,
            "servers-0-pool": pool.pk,
            "servers-0-fqdn": first.fqdn,
            "servers-1-id": extra.pk,
            "servers-1-pool": pool.pk,
            "servers-1-fqdn": extra.fqdn,
            "servers-1-DELETE": "on",
        },
    )

    assert response.status_code == 302
    assert list(Server.objects.values_list("fqdn", flat=True)) == [first.fqdn]
    assert list(AuditEntry.objects.values_list("action", "object_repr")) == [
        ("portal.server.removed", "fe02.example.org")
    ]


def test_deleting_a_site_in_use_is_refused_and_changes_nothing(
    client: Client, administrator: User
) -> None:
    client.force_login(administrator)
    site = Site.objects.get()

    page = client.get(f"/admin/portal/site/{site.pk}/delete/")
    response = client.post(f"/admin/portal/site/{site.pk}/delete/", {"post": "yes"})

    assert page.status_code == 200
    assert "Cannot delete site" in page.content.decode()
    assert response.status_code == 200
    assert Site.objects.count() == 1
    assert AuditEntry.objects.count() == 0


def test_deleting_a_server_is_audited(client: Client, administrator: User) -> None:
    client.force_login(administrator)
    server = Server.objects.create(pool=Pool.objects.get(), fqdn="fe09.example.org")

    response = client.post(f"/admin/portal/server/{server.pk}/delete/", {"post": "yes"})

    assert response.status_code == 302
    assert not Server.objects.filter(pk=server.pk).exists()
    entry = AuditEntry.objects.get()
    assert (entry.action, entry.actor_name, entry.object_repr) == (
        "portal.server.removed",
        "ada",
        "fe09.example.org",
    )


def test_the_pool_list_names_each_pool_with_its_identity_beside_it(
    client: Client, helpdesk: User
) -> None:
    pool = Pool.objects.get()
    client.force_login(helpdesk)

    page = client.get("/admin/portal/pool/").content.decode()

    assert (
        f'<th class="field-fqdn"><a href="/admin/portal/pool/{pool.pk}/change/">'
        f"{pool.fqdn}</a></th>"
    ) in page
    assert f'<td class="field-identity">service:WebServer:{pool.fqdn}</td>' in page
