"""An empty list says what the thing is for and how to make the first one; a list
that is empty only because of a search says nothing of the kind."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.test import Client

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("url", "title", "how"),
    [
        ("/admin/portal/testdevice/", "No test devices yet", "“Add test device” above"),
        ("/admin/portal/devicegroup/", "No device groups yet", "group:NAME"),
        ("/admin/portal/rollout/", "No rollouts yet", "“Approve in waves…”"),
        ("/admin/phones/devicelog/", "No device logs yet", "Device log configurations"),
    ],
)
def test_an_empty_list_teaches(
    client: Client, administrator: User, url: str, title: str, how: str
) -> None:
    client.force_login(administrator)

    page = client.get(url).content.decode()
    assert f'<div class="empty-state" id="empty-state">\n  <h2>{title}</h2>' in page
    assert how in page

    searched = client.get(url, {"q": "nothing-matches"}).content.decode()
    assert 'id="empty-state"' not in searched
