"""The audit trail in the control panel: read-only for everyone, exported as CSV."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.http import StreamingHttpResponse
from django.test import Client

from portal.admin.audit import BoundedCountPaginator
from portal.models import AuditEntry

pytestmark = pytest.mark.django_db

CHANGELIST = "/admin/portal/auditentry/"
EXPORT = f"{CHANGELIST}export.csv"
NOON = dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.UTC)


def entry(minute: int, **values: object) -> AuditEntry:
    row = AuditEntry.objects.create(
        **{
            "actor_name": "ada",
            "action": "portal.rule.approved",
            "object_type": "portal.deviceupdaterule",
            "object_id": "7",
            "object_repr": "service:WebServer:pool01.example.org/2de8cbf6",
            "changes": {"approved_version": ["4.0.1", "4.0.2"]},
            **values,
        }
    )
    AuditEntry.objects.filter(pk=row.pk).update(created_at=NOON + dt.timedelta(minutes=minute))
    row.refresh_from_db()
    return row


def csv_text(response: Any) -> str:
    assert isinstance(response, StreamingHttpResponse)
    return b"".join(response.streaming_content).decode()  # type: ignore[arg-type]


def test_list_shows_time_actor_action_object_and_changes(
    client: Client, administrator: User
) -> None:
    entry(0)
    client.force_login(administrator)

    response = client.get(CHANGELIST)

    assert response.status_code == 200
    changelist = response.context["cl"]
    assert list(changelist.list_display) == ["created_at", "actor_name", "what", "object", "reason"]
    assert changelist.show_full_result_count is False
    assert isinstance(changelist.paginator, BoundedCountPaginator)
    page = response.content.decode()
    assert "approved_version: &quot;4.0.1&quot; → &quot;4.0.2&quot;" in page
    assert '<td class="field-what">Rule approved</td>' in page
    assert f'href="{EXPORT}?"' in response.content.decode()


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("action=portal.test_device.created", ["hal"]),
        ("actor_name=ada", ["ada"]),
        ("object_type=portal.testdevice", ["hal"]),
        ("q=Lobby", ["hal"]),
        ("created_at__day=1&created_at__month=3&created_at__year=2026", ["hal", "ada"]),
        ("created_at__year=2025", []),
    ],
)
def test_list_filters(client: Client, administrator: User, query: str, expected: list[str]) -> None:
    entry(0)
    entry(
        1,
        actor_name="hal",
        action="portal.test_device.created",
        object_type="portal.testdevice",
        object_repr="global/Lobby phone",
    )
    client.force_login(administrator)

    response = client.get(f"{CHANGELIST}?{query}")

    assert [row.actor_name for row in response.context["cl"].result_list] == expected


def test_the_trail_is_never_edited_not_even_by_a_superuser(
    client: Client, administrator: User
) -> None:
    row = entry(0)
    root = User.objects.create_superuser("root", password="correct horse battery")
    for user in (administrator, root):
        client.force_login(user)
        page = client.get(f"{CHANGELIST}{row.pk}/change/")
        assert page.status_code == 200
        assert 'name="_save"' not in page.content.decode()
        assert client.get(f"{CHANGELIST}add/").status_code == 403
        assert client.post(f"{CHANGELIST}add/", {"action": "x"}).status_code == 403
        assert client.post(f"{CHANGELIST}{row.pk}/change/", {"action": "x.y"}).status_code == 403
        assert client.post(f"{CHANGELIST}{row.pk}/delete/", {"post": "yes"}).status_code == 403
        changelist = client.get(CHANGELIST)
        assert changelist.context["action_form"] is None
    assert AuditEntry.objects.get().action == "portal.rule.approved"


def test_csv_export_has_every_column_of_the_filtered_rows(client: Client, helpdesk: User) -> None:
    first = entry(0)
    entry(1, action="portal.test_device.created", object_type="portal.testdevice")
    third = entry(
        2,
        actor_name="@evil",
        object_id="-1",
        object_repr='=HYPERLINK("http://x")',
        changes={"name": ["+cmd", "ok"]},
    )
    client.force_login(helpdesk)

    response = client.get(f"{EXPORT}?action=portal.rule.approved")

    assert response.status_code == 200
    assert isinstance(response, StreamingHttpResponse)
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"] == 'attachment; filename="audit-trail.csv"'
    assert csv_text(response) == (
        "id,time,actor,action,what,object_type,object_id,object,changes\r\n"
        f"{third.pk},2026-03-01T12:02:00+00:00,'@evil,portal.rule.approved,Rule approved,"
        'portal.deviceupdaterule,\'-1,"\'=HYPERLINK(""http://x"")",'
        '"{""name"": [""+cmd"", ""ok""]}"\r\n'
        f"{first.pk},2026-03-01T12:00:00+00:00,ada,portal.rule.approved,Rule approved,"
        "portal.deviceupdaterule,7,service:WebServer:pool01.example.org/2de8cbf6,"
        '"{""approved_version"": [""4.0.1"", ""4.0.2""]}"\r\n'
    )


def test_csv_export_of_everything_follows_the_list_order(
    client: Client, administrator: User
) -> None:
    rows = [entry(minute, object_id=str(minute)) for minute in range(3)]
    client.force_login(administrator)

    lines = csv_text(client.get(EXPORT)).splitlines()

    assert [line.split(",")[0] for line in lines] == ["id", *(str(r.pk) for r in reversed(rows))]


def test_csv_export_with_a_bad_filter_goes_back_to_the_list(
    client: Client, administrator: User
) -> None:
    client.force_login(administrator)

    response = client.get(f"{EXPORT}?no_such_field=1")

    assert response.status_code == 302
    assert response["Location"] == f"{CHANGELIST}?e=1"


def test_anonymous_cannot_export(client: Client) -> None:
    response = client.get(EXPORT)

    assert response.status_code == 302
    assert response["Location"] == f"/admin/login/?next={EXPORT}"


def test_the_list_never_counts_more_than_the_bound(client: Client, administrator: User) -> None:
    for minute in range(4):
        entry(minute)
    client.force_login(administrator)

    original = BoundedCountPaginator.limit
    BoundedCountPaginator.limit = 3
    try:
        response = client.get(CHANGELIST)
    finally:
        BoundedCountPaginator.limit = original

    assert response.context["cl"].result_count == 3
    assert "3+ audit trail (filter by date to see older ones)" in response.content.decode()
