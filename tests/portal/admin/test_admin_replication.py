"""Replication in the control panel: the matrix of copies per server, the dashboard,
the "Re-sync" server action, and who may reach every page of imports and replication."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from django.contrib.auth.models import User
from django.template import Context, Template
from django.test import Client

from deviceupdate_devtools import builder
from portal.choices import ImportStatus, ReplicaState
from portal.models import (
    AuditEntry,
    ImportJob,
    Pool,
    Server,
    ServerFile,
    TrustedPublisher,
    UpdateFile,
    UpdateVersion,
)
from portal.services.audit import Actor
from portal.services.imports import package_import_run, package_import_start
from portal.services.replication import server_replicate
from tests.portal.admin.test_admin_imports import table_rows

pytestmark = pytest.mark.django_db

FOLDER = "UCPhone/Polycom/CX600/Rev-1/ENU/4.0.7577.4387/CPE"
DASHBOARD = "/admin/portal/serverfile/dashboard/"
SERVERS = "/admin/portal/server/"
Capture = Callable[..., Any]
Messages = Callable[[Any], list[tuple[str, str]]]


@pytest.fixture
def two_servers(db: None) -> tuple[Server, Server]:
    """The install's own server and a second front end of the same pool."""
    first = Server.objects.get()
    second = Server.objects.create(pool=first.pool, fqdn="zz-fe02.example.org")
    return first, second


def imported(tmp_path: Path, publisher: builder.Signer, capture: Capture) -> UpdateVersion:
    """One update imported to every pool, its replication recorded but not run."""
    package = builder.build_package(
        [builder.build_update(signer=publisher, images={"CPE.nbt": 20_000})],
        path=tmp_path / "UCUpdates.cab",
    )
    with capture(execute=False), package.open("rb") as source:
        job = package_import_start(
            source=source, filename=package.name, pools=[], actor=Actor.system("tests")
        )
    with capture(execute=False):
        done = package_import_run(job_id=job.pk)
    assert done is not None
    assert done.status == ImportStatus.SUCCEEDED
    return UpdateVersion.objects.get()


def test_the_matrix_shows_one_server_verified_and_the_other_lagging(
    client: Client,
    helpdesk: User,
    tmp_path: Path,
    stores: dict[str, Path],
    publisher: builder.Signer,
    trusted: TrustedPublisher,
    two_servers: tuple[Server, Server],
    django_capture_on_commit_callbacks: Capture,
) -> None:
    first, second = two_servers
    version = imported(tmp_path, publisher, django_capture_on_commit_callbacks)
    server_replicate(server=first, version_id=version.pk, store_dir=tmp_path / "fe01")
    client.force_login(helpdesk)

    version_page = client.get(f"/admin/portal/updateversion/{version.pk}/change/")
    job_page = client.get(f"/admin/portal/importjob/{version.import_job_id}/change/")

    assert (version_page.status_code, job_page.status_code) == (200, 200)
    assert table_rows(version_page.content.decode(), "replication-matrix") == [
        ["server", "CPE.cat", "CPE.nbt", "CPE.xml"],
        [first.fqdn, "verified", "verified", "verified"],
        [f"{second.fqdn} lagging", "pending", "pending", "pending"],
    ]
    assert table_rows(job_page.content.decode(), "replication-matrix") == [
        ["server", FOLDER],
        [first.fqdn, "verified 3/3"],
        [f"{second.fqdn} lagging", "verified 0/3, pending 3"],
    ]


def test_a_failed_copy_is_shown_with_its_reason(
    client: Client,
    administrator: User,
    tmp_path: Path,
    stores: dict[str, Path],
    publisher: builder.Signer,
    trusted: TrustedPublisher,
    two_servers: tuple[Server, Server],
    django_capture_on_commit_callbacks: Capture,
) -> None:
    first, second = two_servers
    version = imported(tmp_path, publisher, django_capture_on_commit_callbacks)
    server_replicate(server=first, version_id=version.pk, store_dir=tmp_path / "fe01")
    image = UpdateFile.objects.get(name="CPE.nbt")
    (stores["central"] / image.storage_name).write_bytes(b"\0" * image.size)
    server_replicate(server=second, version_id=version.pk, store_dir=tmp_path / "fe02")
    zeros = hashlib.sha256(b"\0" * image.size).hexdigest()
    reason = (
        f"the copy does not match the import: {image.size} bytes, SHA-256 {zeros} "
        f"(expected {image.size} bytes, {image.sha256})"
    )
    client.force_login(administrator)

    version_html = client.get(f"/admin/portal/updateversion/{version.pk}/change/")
    job_html = client.get(f"/admin/portal/importjob/{version.import_job_id}/change/")
    dashboard = client.get(DASHBOARD).content.decode()

    assert table_rows(version_html.content.decode(), "replication-matrix")[1:] == [
        [first.fqdn, "verified", "verified", "verified"],
        [f"{second.fqdn} failed", "verified", f"failed: {reason}", "verified"],
    ]
    assert table_rows(job_html.content.decode(), "replication-matrix")[1:] == [
        [first.fqdn, "verified 3/3"],
        [f"{second.fqdn} failed", f"verified 2/3, failed 1 CPE.nbt: {reason}"],
    ]
    assert table_rows(dashboard, "replication-by-server") == [
        ["server", "pool", "verified", "pending", "copying", "failed", "worker last seen"],
        [first.fqdn, first.pool.fqdn, "3", "0", "0", "0", "never"],
        [second.fqdn, second.pool.fqdn, "2", "0", "0", "1", "never"],
    ]
    assert table_rows(dashboard, "lagging-files") == [
        ["file", "state", "attempts", "reason", "updated"],
        [
            image.storage_name,
            "failed",
            "1",
            reason,
            _shown_time(ServerFile.objects.get(server=second, file=image)),
        ],
    ]


def _shown_time(row: ServerFile) -> str:
    """``updated_at`` as the page prints it (the active locale's date format)."""
    return Template("{{ value }}").render(Context({"value": row.updated_at}))


def test_the_dashboard_counts_every_state_per_server(
    client: Client,
    helpdesk: User,
    two_servers: tuple[Server, Server],
) -> None:
    first, second = two_servers
    version = _stored_version(files=4)
    files = list(version.files.order_by("name"))
    for file, state in zip(
        files,
        [ReplicaState.VERIFIED, ReplicaState.PENDING, ReplicaState.COPYING, ReplicaState.FAILED],
        strict=True,
    ):
        ServerFile.objects.create(server=first, file=file, state=state, error="")
    ServerFile.objects.create(server=second, file=files[0], state=ReplicaState.VERIFIED)
    client.force_login(helpdesk)

    html = client.get(DASHBOARD).content.decode()

    assert table_rows(html, "replication-by-server")[1:] == [
        [first.fqdn, first.pool.fqdn, "1", "1", "1", "1", "never"],
        [second.fqdn, second.pool.fqdn, "1", "0", "0", "0", "never"],
    ]
    # Failed first, then by name; the verified one and the other server are not listed.
    lagging = table_rows(html, "lagging-files")
    assert [row[:2] for row in lagging] == [
        ["file", "state"],
        [files[3].storage_name, "failed"],
        [files[1].storage_name, "pending"],
        [files[2].storage_name, "copying"],
    ]
    assert f'data-server="{second.fqdn}"' in html
    assert html.count('class="lagging-files"') == 1


def test_the_server_file_list_filters_by_state(
    client: Client, administrator: User, two_servers: tuple[Server, Server]
) -> None:
    first, second = two_servers
    version = _stored_version(files=2)
    verified, failed = version.files.order_by("name")
    ServerFile.objects.create(server=first, file=verified, state=ReplicaState.VERIFIED)
    bad = ServerFile.objects.create(
        server=second, file=failed, state=ReplicaState.FAILED, error="x"
    )
    client.force_login(administrator)

    response = client.get("/admin/portal/serverfile/", {"state__exact": "failed"})

    assert response.status_code == 200
    changelist = response.context["cl"]
    assert list(changelist.result_list) == [bad]
    assert list(changelist.list_display) == [
        "server",
        "file",
        "state",
        "error",
        "attempts",
        "updated_at",
        "verified_at",
    ]
    assert f'href="{DASHBOARD}"' in response.content.decode()


def test_resync_queues_one_full_store_check_per_selected_server(
    client: Client,
    administrator: User,
    two_servers: tuple[Server, Server],
    django_capture_on_commit_callbacks: Capture,
    read_messages: Messages,
) -> None:
    first, second = two_servers
    third = Server.objects.create(pool=first.pool, fqdn="zz-fe03.example.org")
    client.force_login(administrator)

    with (
        mock.patch("portal.tasks.server_check_store_task.delay") as delay,
        django_capture_on_commit_callbacks(execute=True),
    ):
        response = client.post(
            SERVERS, {"action": "resync_servers", "_selected_action": [first.pk, third.pk]}
        )

    assert response.status_code == 302
    assert sorted(delay.call_args_list, key=str) == sorted(
        [
            mock.call(server_fqdn=first.fqdn, full=True),
            mock.call(server_fqdn=third.fqdn, full=True),
        ],
        key=str,
    )
    audit = AuditEntry.objects.filter(action="portal.server.resync_requested")
    assert sorted(audit.values_list("actor_name", "object_type", "object_id", "changes")) == sorted(
        [
            ("ada", "portal.server", str(first.pk), {"full_check": [None, True]}),
            ("ada", "portal.server", str(third.pk), {"full_check": [None, True]}),
        ]
    )
    assert read_messages(response) == [("success", "Full store check queued for 2 server(s)")]
    assert second.pk not in [int(pk) for pk in audit.values_list("object_id", flat=True)]


def test_resync_is_refused_to_the_helpdesk(
    client: Client,
    helpdesk: User,
    two_servers: tuple[Server, Server],
    django_capture_on_commit_callbacks: Capture,
) -> None:
    client.force_login(helpdesk)
    listing = client.get(SERVERS)

    with (
        mock.patch("portal.tasks.server_check_store_task.delay") as delay,
        django_capture_on_commit_callbacks(execute=True),
    ):
        response = client.post(
            SERVERS,
            {"action": "resync_servers", "_selected_action": [s.pk for s in two_servers]},
        )

    assert listing.context["action_form"] is None  # no action is offered at all
    assert response.status_code == 200  # the list again, nothing run
    assert delay.call_count == 0
    assert AuditEntry.objects.count() == 0


def test_administrators_are_offered_the_resync_action(client: Client, administrator: User) -> None:
    client.force_login(administrator)
    response = client.get(SERVERS)
    choices = dict(response.context["action_form"].fields["action"].choices)
    assert str(choices["resync_servers"]) == (
        "Re-sync: check every copy (SHA-256) and copy what is missing"
    )


def _stored_version(*, files: int) -> UpdateVersion:
    """A stored version made directly, with ``files`` image rows."""
    job = ImportJob.objects.create(
        actor_name="setup",
        package_name="UCUpdates.cab",
        package_size=1,
        package_sha256="0" * 64,
        status=ImportStatus.SUCCEEDED,
        updates=[{"folder": FOLDER, "version": "4.0.7577.4387", "files": [], "rules": []}],
    )
    version = UpdateVersion.objects.create(
        device_type="UCPhone",
        brand="Polycom",
        model="CX600",
        revision="Rev-1",
        locale="ENU",
        version="4.0.7577.4387",
        update_type="CPE",
        folder=FOLDER,
        rule_id=uuid.UUID("2de8cbf6-8a1e-4bc0-9d9e-0b2b5a1c1f11"),
        signer="CN=Matrix",
        catalog_digest="sha256",
        import_job=job,
    )
    for index in range(files):
        UpdateFile.objects.create(
            version=version,
            name=f"F{index}.nbt",
            role="image",
            size=10,
            sha256=f"{index:064d}",
            storage_name=f"DeviceUpdateStore/{FOLDER}/F{index}.nbt",
        )
    return version


# --- Who may reach each page ----------------------------------------------------------

# (page, method, path template) -> status for (administrator, helpdesk); anonymous
# always gets the login page.
PAGES: list[tuple[str, str, str, tuple[int, int]]] = [
    ("import list", "get", "/admin/portal/importjob/", (200, 200)),
    ("import page", "get", "/admin/portal/importjob/import/", (200, 403)),
    ("import page post", "post", "/admin/portal/importjob/import/", (200, 403)),
    ("import add", "get", "/admin/portal/importjob/add/", (403, 403)),
    ("import detail", "get", "/admin/portal/importjob/{importjob}/change/", (200, 200)),
    ("import change post", "post", "/admin/portal/importjob/{importjob}/change/", (403, 403)),
    ("import delete", "get", "/admin/portal/importjob/{importjob}/delete/", (403, 403)),
    ("version list", "get", "/admin/portal/updateversion/", (200, 200)),
    ("version add", "get", "/admin/portal/updateversion/add/", (403, 403)),
    ("version detail", "get", "/admin/portal/updateversion/{updateversion}/change/", (200, 200)),
    (
        "version change post",
        "post",
        "/admin/portal/updateversion/{updateversion}/change/",
        (403, 403),
    ),
    ("version delete", "get", "/admin/portal/updateversion/{updateversion}/delete/", (403, 403)),
    ("server file list", "get", "/admin/portal/serverfile/", (200, 200)),
    ("server file add", "get", "/admin/portal/serverfile/add/", (403, 403)),
    ("server file detail", "get", "/admin/portal/serverfile/{serverfile}/change/", (200, 200)),
    ("server file delete", "get", "/admin/portal/serverfile/{serverfile}/delete/", (403, 403)),
    ("replication dashboard", "get", DASHBOARD, (200, 200)),
]
USERS = ["administrator", "helpdesk", "anonymous"]


@pytest.fixture
def world(two_servers: tuple[Server, Server]) -> dict[str, int]:
    """One row of every model the new pages show."""
    version = _stored_version(files=1)
    replica = ServerFile.objects.create(
        server=two_servers[0], file=version.files.get(), state=ReplicaState.FAILED, error="x"
    )
    assert version.import_job_id is not None
    return {
        "importjob": version.import_job_id,
        "updateversion": version.pk,
        "serverfile": replica.pk,
    }


@pytest.mark.parametrize("user", USERS)
@pytest.mark.parametrize(
    ("method", "template", "expected"),
    [pytest.param(method, path, expected, id=page) for page, method, path, expected in PAGES],
)
def test_page_access(
    client: Client,
    request: pytest.FixtureRequest,
    world: dict[str, int],
    stores: dict[str, Path],
    user: str,
    method: str,
    template: str,
    expected: tuple[int, int],
) -> None:
    path = template.format(**world)
    if user != "anonymous":
        client.force_login(request.getfixturevalue(user))
    before = (
        ImportJob.objects.count(),
        UpdateVersion.objects.count(),
        list(ServerFile.objects.values_list("state", "error")),
    )

    response = getattr(client, method)(path, {} if method == "post" else None)

    if user == "anonymous":
        assert response.status_code == 302
        assert response["Location"] == f"/admin/login/?next={path}"
    else:
        assert response.status_code == expected[USERS.index(user)]
    after = (
        ImportJob.objects.count(),
        UpdateVersion.objects.count(),
        list(ServerFile.objects.values_list("state", "error")),
    )
    assert after == before
    assert AuditEntry.objects.count() == 0
    assert Pool.objects.count() == 1


def test_the_server_file_list_never_counts_the_whole_table(
    client: Client, administrator: User
) -> None:
    from portal.admin.audit import BoundedCountPaginator

    client.force_login(administrator)
    response = client.get("/admin/portal/serverfile/")
    assert response.status_code == 200
    changelist = response.context["cl"]
    assert changelist.show_full_result_count is False
    assert isinstance(changelist.paginator, BoundedCountPaginator)
