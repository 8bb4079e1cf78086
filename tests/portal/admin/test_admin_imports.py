"""Package imports in the control panel: the "Import device update" page, the job's
report, and the read-only pages of imports and stored versions."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from pytest_django.fixtures import Settings as SettingsWrapper

from deviceupdate_devtools import builder
from portal.choices import ImportStatus, ReplicaState
from portal.display import format_size
from portal.models import (
    AuditEntry,
    DeviceUpdateRule,
    ImportJob,
    Pool,
    Server,
    ServerFile,
    TrustedPublisher,
    UpdateFile,
    UpdateVersion,
)
from portal.services.imports import package_import_run

pytestmark = pytest.mark.django_db

IMPORT_PAGE = "/admin/portal/importjob/import/"
CHANGELIST = "/admin/portal/importjob/"
FOLDER = "UCPhone/Polycom/CX600/Rev-1/ENU/4.0.7577.4387/CPE"
RULE_ID = "2de8cbf6-8a1e-4bc0-9d9e-0b2b5a1c1f11"
SIGNER = "CN=Device Update Test Publisher,O=Device Update Tests"
Messages = Callable[[Any], list[tuple[str, str]]]
Capture = Callable[..., Any]


class _Tables(HTMLParser):
    """The text of every cell of the tables with a given class, row by row."""

    def __init__(self, css_class: str) -> None:
        super().__init__()
        self.css_class = css_class
        self.depth = 0  # >0 inside a matching table
        self.rows: list[list[str]] = []
        self.cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        classes = (dict(attrs).get("class") or "").split()
        if tag == "table" and (self.depth or self.css_class in classes):
            self.depth += 1
        elif self.depth and tag == "tr":
            self.rows.append([])
        elif self.depth and tag in ("td", "th"):
            self.cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag == "table" and self.depth:
            self.depth -= 1
        elif self.depth and tag in ("td", "th") and self.cell is not None:
            self.rows[-1].append(" ".join("".join(self.cell).split()))
            self.cell = None

    def handle_data(self, data: str) -> None:
        if self.cell is not None:
            self.cell.append(data)


def table_rows(html: str, css_class: str) -> list[list[str]]:
    """Rows (header included) of the tables of ``css_class`` as whitespace-normalised text."""
    parser = _Tables(css_class)
    parser.feed(html)
    return parser.rows


def staged(stores: dict[str, Path]) -> list[str]:
    folder = stores["staging"]
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def package(tmp_path: Path, publisher: builder.Signer) -> Path:
    update = builder.build_update(signer=publisher, images={"CPE.nbt": 5_000})
    return builder.build_package([update], path=tmp_path / "UCUpdates.cab")


def post_package(
    client: Client, path: Path, pools: list[Pool], capture: Capture
) -> tuple[Any, list[Any]]:
    with capture(execute=False) as callbacks, path.open("rb") as upload:
        response = client.post(IMPORT_PAGE, {"package": upload, "pools": [p.pk for p in pools]})
    return response, callbacks


def imported_through_the_page(
    client: Client, tmp_path: Path, publisher: builder.Signer, capture: Capture
) -> ImportJob:
    """Upload a package to every pool and run its import; the copies' tasks are not run."""
    post_package(client, package(tmp_path, publisher), list(Pool.objects.all()), capture)
    job = ImportJob.objects.get()
    with capture(execute=False):
        package_import_run(job_id=job.pk)
    return job


def test_import_page_offers_every_pool_ticked(
    client: Client, administrator: User, pool01: Pool
) -> None:
    client.force_login(administrator)
    response = client.get(IMPORT_PAGE)
    assert response.status_code == 200
    form = response.context["form"]
    assert list(form.fields) == ["package", "pools"]
    assert sorted(form.fields["pools"].initial) == sorted(Pool.objects.values_list("pk", flat=True))
    assert len(form.fields["pools"].initial) == 2
    assert response.content.decode().count('type="checkbox"') == 2


def test_an_uploaded_package_is_queued_then_its_report_is_shown(
    client: Client,
    administrator: User,
    tmp_path: Path,
    stores: dict[str, Path],
    publisher: builder.Signer,
    trusted: TrustedPublisher,
    pool01: Pool,
    django_capture_on_commit_callbacks: Capture,
    read_messages: Messages,
) -> None:
    path = package(tmp_path, publisher)
    client.force_login(administrator)

    response, callbacks = post_package(client, path, [pool01], django_capture_on_commit_callbacks)

    job = ImportJob.objects.get()
    assert response.status_code == 302
    assert response["Location"] == f"/admin/portal/importjob/{job.pk}/change/"
    assert read_messages(response) == [("success", f"Import #{job.pk} queued")]
    assert len(callbacks) == 1  # the task, after commit
    assert (job.status, job.actor, job.actor_name, job.package_name) == (
        ImportStatus.QUEUED,
        administrator,
        "ada",
        "UCUpdates.cab",
    )
    assert (job.package_size, job.package_sha256) == (
        path.stat().st_size,
        hashlib.sha256(path.read_bytes()).hexdigest(),
    )
    assert list(job.pools.all()) == [pool01]
    assert staged(stores) == [f"job-{job.pk}"]

    with django_capture_on_commit_callbacks(execute=False):
        package_import_run(job_id=job.pk)
    job.refresh_from_db()
    assert (job.status, job.error) == (ImportStatus.SUCCEEDED, "")
    rule = DeviceUpdateRule.objects.get()
    assert (rule.pool, rule.pending_version) == (pool01, "4.0.7577.4387")

    page = client.get(f"/admin/portal/importjob/{job.pk}/change/")
    assert page.status_code == 200
    html = page.content.decode()
    files = {row.name: row for row in UpdateFile.objects.all()}
    assert table_rows(html, "import-report") == [
        ["folder", "version", "rule Id", "catalog", "files", "rules"],
        [
            FOLDER,
            "4.0.7577.4387",
            RULE_ID,
            "sha256",
            " ".join(
                f"{name} — {format_size(files[name].size)}, SHA-256 {files[name].sha256}"
                for name in ("CPE.cat", "CPE.nbt", "CPE.xml")
            ),
            f"{rule.identity}: set pending",
        ],
    ]
    # pool01 has no server: nothing is copied anywhere.
    assert table_rows(html, "replication-matrix") == []
    assert "no server holds or needs these versions" in html
    for text in (SIGNER, "succeeded", job.package_sha256, pool01.identity, "100%"):
        assert text in html


def test_the_job_page_shows_each_servers_copies(
    client: Client,
    administrator: User,
    tmp_path: Path,
    stores: dict[str, Path],
    publisher: builder.Signer,
    trusted: TrustedPublisher,
    django_capture_on_commit_callbacks: Capture,
) -> None:
    client.force_login(administrator)
    response, _ = post_package(
        client,
        package(tmp_path, publisher),
        list(Pool.objects.all()),
        django_capture_on_commit_callbacks,
    )
    job = ImportJob.objects.get()
    with django_capture_on_commit_callbacks(execute=False):
        package_import_run(job_id=job.pk)

    html = client.get(f"/admin/portal/importjob/{job.pk}/change/").content.decode()

    server = Server.objects.get()
    assert table_rows(html, "replication-matrix") == [
        ["server", FOLDER],
        [f"{server.fqdn} lagging", "verified 0/3, pending 3"],
    ]


def test_a_file_that_is_not_a_cabinet_makes_a_job_that_fails_when_run(
    client: Client,
    administrator: User,
    stores: dict[str, Path],
    trusted: TrustedPublisher,
    django_capture_on_commit_callbacks: Capture,
) -> None:
    client.force_login(administrator)
    upload = SimpleUploadedFile("notes.txt", b"not a cabinet at all")
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = client.post(IMPORT_PAGE, {"package": upload, "pools": [Pool.objects.get().pk]})
    job = ImportJob.objects.get()
    assert response.status_code == 302
    assert len(callbacks) == 1

    package_import_run(job_id=job.pk)

    job.refresh_from_db()
    assert (job.status, job.error, job.package_name) == (
        ImportStatus.FAILED,
        "the file is neither a Microsoft cabinet nor a security catalog",
        "notes.txt",
    )
    assert (UpdateVersion.objects.count(), DeviceUpdateRule.objects.count()) == (0, 0)
    assert staged(stores) == []
    html = client.get(f"/admin/portal/importjob/{job.pk}/change/").content.decode()
    assert "the file is neither a Microsoft cabinet nor a security catalog" in html
    assert "failed" in html
    assert client.get(f"/admin/portal/importjob/{job.pk}/status.json").json() == {
        "status": "failed",
        "label": "failed",
        "tone": "bad",
        "progress": job.progress,
        "reason": "the file is neither a Microsoft cabinet nor a security catalog",
        "finished": True,
    }


def test_the_status_of_a_queued_import_says_it_waits_and_is_for_viewers_only(
    client: Client, administrator: User, helpdesk: User
) -> None:
    job = ImportJob.objects.create(
        actor_name="ada", package_name="a.cab", package_size=1, package_sha256="0" * 64
    )
    url = f"/admin/portal/importjob/{job.pk}/status.json"
    assert client.get(url).status_code == 302  # to the sign-in page
    client.force_login(helpdesk)
    assert client.get(url).json() == {
        "status": "queued",
        "label": "queued",
        "tone": "muted",
        "progress": 0,
        "reason": "waiting for a worker",
        "finished": False,
    }
    page = client.get(f"/admin/portal/importjob/{job.pk}/change/").content.decode()
    assert f'data-live-url="{url}"' in page
    assert "/static/portal/live.js" in page
    missing = client.get(f"/admin/portal/importjob/{job.pk + 1}/status.json")
    assert (missing.status_code, missing.json()) == (404, {"error": f"no import #{job.pk + 1}"})


@pytest.mark.parametrize(
    ("data", "errors"),
    [
        pytest.param({}, {"package": ["This field is required."]}, id="no file"),
        pytest.param(
            {"package": b""}, {"package": ["The submitted file is empty."]}, id="empty file"
        ),
        pytest.param(
            {"package": b"0123456789A"},
            {"package": ["the package is larger than the limit of 10 bytes"]},
            id="over the limit",
        ),
        pytest.param(
            {"package": b"MSCF", "pools": []},
            {"pools": ["This field is required."]},
            id="no pool",
        ),
    ],
)
def test_a_refused_upload_is_a_form_error_and_creates_nothing(
    client: Client,
    administrator: User,
    settings: SettingsWrapper,
    stores: dict[str, Path],
    django_capture_on_commit_callbacks: Capture,
    data: dict[str, Any],
    errors: dict[str, list[str]],
) -> None:
    settings.IMPORT_MAX_PACKAGE_SIZE = 10
    client.force_login(administrator)
    post: dict[str, Any] = {"pools": [Pool.objects.get().pk]}
    if "package" in data:
        post["package"] = SimpleUploadedFile("UCUpdates.cab", data["package"])
    if "pools" in data:
        post["pools"] = data["pools"]

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = client.post(IMPORT_PAGE, post)

    assert response.status_code == 200
    assert response.context["form"].errors == errors
    assert callbacks == []
    assert ImportJob.objects.count() == 0
    assert staged(stores) == []
    assert AuditEntry.objects.count() == 0


@pytest.mark.parametrize("method", ["get", "post"])
@pytest.mark.parametrize("user", ["helpdesk", "anonymous"])
def test_only_administrators_reach_the_import_page(
    client: Client,
    request: pytest.FixtureRequest,
    stores: dict[str, Path],
    django_capture_on_commit_callbacks: Capture,
    user: str,
    method: str,
) -> None:
    if user != "anonymous":
        client.force_login(request.getfixturevalue(user))
    data = None
    if method == "post":
        data = {
            "package": SimpleUploadedFile("UCUpdates.cab", b"MSCF...."),
            "pools": [Pool.objects.get().pk],
        }

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = getattr(client, method)(IMPORT_PAGE, data)

    if user == "anonymous":
        assert response.status_code == 302
        assert response["Location"] == f"/admin/login/?next={IMPORT_PAGE}"
    else:
        assert response.status_code == 403
    assert callbacks == []
    assert ImportJob.objects.count() == 0
    assert staged(stores) == []


def test_the_import_button_is_shown_to_administrators_only(
    client: Client, administrator: User, helpdesk: User
) -> None:
    client.force_login(administrator)
    assert f'href="{IMPORT_PAGE}"' in client.get(CHANGELIST).content.decode()
    client.force_login(helpdesk)
    page = client.get(CHANGELIST)
    assert page.status_code == 200
    assert f'href="{IMPORT_PAGE}"' not in page.content.decode()


def test_the_import_list_shows_every_column(
    client: Client,
    administrator: User,
    tmp_path: Path,
    stores: dict[str, Path],
    publisher: builder.Signer,
    trusted: TrustedPublisher,
    django_capture_on_commit_callbacks: Capture,
) -> None:
    client.force_login(administrator)
    job = imported_through_the_page(client, tmp_path, publisher, django_capture_on_commit_callbacks)

    response = client.get(CHANGELIST, {"status__exact": "succeeded", "q": "UCUpdates"})

    changelist = response.context["cl"]
    # when, who, file, state, reason; the signer and the counts are on the job's page.
    assert list(changelist.list_display) == [
        "id",
        "created_at",
        "actor_name",
        "package_name",
        "size",
        "state",
        "reason",
    ]
    assert list(changelist.result_list) == [job]
    html = response.content.decode()
    job.refresh_from_db()
    updates = len(job.updates)
    plural = "s" if updates != 1 else ""
    for text in (
        f"{updates} update{plural}; queued to 1 server(s)",
        '<span class="state state-ok" data-state="succeeded">succeeded</span>',
        "ada",
    ):
        assert text in html
    assert SIGNER in client.get(f"/admin/portal/importjob/{job.pk}/change/").content.decode()
    none = client.get(CHANGELIST, {"status__exact": "failed"})
    assert list(none.context["cl"].result_list) == []


def test_a_stored_imports_page_follows_its_copies_to_the_servers(
    client: Client,
    administrator: User,
    tmp_path: Path,
    stores: dict[str, Path],
    publisher: builder.Signer,
    trusted: TrustedPublisher,
    django_capture_on_commit_callbacks: Capture,
) -> None:
    """Succeeded is not the end of it: the page keeps polling until every server of the
    pool has verified its copies (or failed one), and says how far they got."""
    client.force_login(administrator)
    job = imported_through_the_page(client, tmp_path, publisher, django_capture_on_commit_callbacks)
    url = f"/admin/portal/importjob/{job.pk}/status.json"
    server = Server.objects.get()

    def status() -> tuple[str, str, bool]:
        answer = client.get(url).json()
        return (answer["label"], answer["reason"], answer["finished"])

    assert status() == ("succeeded", "verified on 0 of 1 server", False)
    copies = ServerFile.objects.filter(server=server)
    assert set(copies.values_list("state", flat=True)) == {ReplicaState.PENDING}
    assert copies.count() == UpdateFile.objects.count()
    copies.update(state=ReplicaState.VERIFIED)  # what the server's worker does
    assert status() == ("succeeded", "verified on 1 of 1 server", True)
    ServerFile.objects.filter(pk=copies.first().pk).update(  # type: ignore[union-attr]
        state=ReplicaState.FAILED, error="disk full"
    )
    assert status() == ("succeeded", "verified on 0 of 1 server, failed on 1", True)
    page = client.get(f"/admin/portal/importjob/{job.pk}/change/").content.decode()
    assert "verified on 0 of 1 server, failed on 1" in page


def test_the_version_page_lists_its_files(
    client: Client,
    helpdesk: User,
    tmp_path: Path,
    stores: dict[str, Path],
    publisher: builder.Signer,
    trusted: TrustedPublisher,
    administrator: User,
    django_capture_on_commit_callbacks: Capture,
) -> None:
    client.force_login(administrator)
    post_package(
        client,
        package(tmp_path, publisher),
        list(Pool.objects.all()),
        django_capture_on_commit_callbacks,
    )
    with django_capture_on_commit_callbacks(execute=False):
        package_import_run(job_id=ImportJob.objects.get().pk)
    version = UpdateVersion.objects.get()
    client.force_login(helpdesk)

    listing = client.get("/admin/portal/updateversion/", {"brand": "Polycom"})
    page = client.get(f"/admin/portal/updateversion/{version.pk}/change/")

    assert list(listing.context["cl"].result_list) == [version]
    assert page.status_code == 200
    inline = page.context["inline_admin_formsets"][0]
    shown = [
        (form.original.name, form.original.role, form.original.size, form.original.sha256)
        for form in inline
    ]
    assert shown == [
        (row.name, row.role, row.size, row.sha256) for row in UpdateFile.objects.order_by("name")
    ]
    assert [name for name, *_ in shown] == ["CPE.cat", "CPE.nbt", "CPE.xml"]
    html = page.content.decode()
    assert SIGNER in html
    assert 'name="_save"' not in html


def test_a_dry_run_shows_the_verdict_and_writes_nothing(
    client: Client,
    administrator: User,
    tmp_path: Path,
    stores: dict[str, Path],
    publisher: builder.Signer,
    trusted: TrustedPublisher,
    pool01: Pool,
    django_capture_on_commit_callbacks: Capture,
) -> None:
    path = package(tmp_path, publisher)
    client.force_login(administrator)
    audit_rows = AuditEntry.objects.count()

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = client.post(
            IMPORT_PAGE,
            {
                "package": SimpleUploadedFile("UCUpdates.cab", path.read_bytes()),
                "pools": [pool01.pk],
                "dry_run": "Dry run (inspect only)",
            },
        )

    assert response.status_code == 200
    report = response.context["inspection"]
    assert (report["verdict"], report["updates"][0]["folder"]) == ("accepted", FOLDER)
    page = response.content.decode()
    assert "The import would be <strong>accepted</strong>." in page
    assert f"<h3>{FOLDER}: accepted</h3>" in page
    assert callbacks == []
    assert (ImportJob.objects.count(), AuditEntry.objects.count()) == (0, audit_rows)
    assert staged(stores) == []


def test_the_import_page_warns_when_lzx_packages_cannot_be_read(
    client: Client, administrator: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    client.force_login(administrator)
    assert "lzx-notice" not in client.get(IMPORT_PAGE).content.decode()
    monkeypatch.setattr("portal.packaging.cabinet.cabextract.shutil.which", lambda name: None)
    page = client.get(IMPORT_PAGE).content.decode()
    assert (
        '<p class="errornote lzx-notice">LZX-compressed packages need the cabextract program '
        "(Debian package &#x27;cabextract&#x27;), which is not installed</p>"
    ) in page


def test_a_dry_run_of_an_unsigned_catalog_says_unsigned(
    client: Client,
    administrator: User,
    stores: dict[str, Path],
    trusted: TrustedPublisher,
    pool01: Pool,
) -> None:
    catalog = builder.unsigned_catalog(builder.build_ctl({"CPE.nbt": b"image"}))
    client.force_login(administrator)

    response = client.post(
        IMPORT_PAGE,
        {
            "package": SimpleUploadedFile("CPE.cat", catalog),
            "pools": [pool01.pk],
            "dry_run": "Dry run (inspect only)",
        },
    )

    assert response.status_code == 200
    assert response.context["inspection"]["reason"] == "the catalog is not signed"
    page = response.content.decode()
    assert "<li>Unsigned: the catalog carries no signature</li>" in page
    assert "unknown signer" not in page
    assert ImportJob.objects.count() == 0
