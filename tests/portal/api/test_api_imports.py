"""Package imports through the API: a multipart upload queues the job; reports read back."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from rest_framework.test import APIClient

from deviceupdate_devtools import builder
from portal.models import AuditEntry, ImportJob, Pool, TrustedPublisher
from portal.services.imports import package_import_run

pytestmark = pytest.mark.django_db
URL = "/api/v1/imports/"


def package(tmp_path: Path, publisher: builder.Signer) -> Path:
    return builder.build_package([builder.build_update(signer=publisher)], path=tmp_path / "p.cab")


def test_an_administrator_uploads_a_package_and_reads_its_report(
    admin_api: APIClient,
    tmp_path: Path,
    publisher: builder.Signer,
    stores: dict[str, Path],
    trusted: TrustedPublisher,
    django_capture_on_commit_callbacks: Callable[..., Any],
) -> None:
    pool = Pool.objects.get()
    with (
        mock.patch("portal.tasks.package_import_task.delay") as delay,
        django_capture_on_commit_callbacks(execute=True),
        package(tmp_path, publisher).open("rb") as source,
    ):
        response = admin_api.post(
            URL, {"package": source, "pools": [pool.fqdn]}, format="multipart"
        )
    assert response.status_code == 202
    job = ImportJob.objects.get()
    delay.assert_called_once_with(job_id=job.pk)
    assert response.json()["status"] == "queued"
    assert response.json()["pools"] == [pool.fqdn]
    assert (job.actor_name, job.package_name) == ("ada", "p.cab")
    with mock.patch("portal.tasks.server_replicate_task.delay"):
        package_import_run(job_id=job.pk)
    report = admin_api.get(f"{URL}{job.pk}/").json()
    assert (report["status"], report["error"], report["progress"]) == ("succeeded", "", 100)
    assert [update["folder"] for update in report["updates"]] == [
        "UCPhone/Polycom/CX600/Rev-1/ENU/4.0.7577.4387/CPE"
    ]
    listed = admin_api.get(URL).json()["results"]
    assert [item["id"] for item in listed] == [job.pk]


@pytest.mark.parametrize(
    ("data", "errors"),
    [
        ({}, {"package": ["No file was submitted."]}),
        ({"pools": ["nowhere.example.org"]}, {"pools": ["no pool nowhere.example.org"]}),
    ],
)
def test_a_bad_upload_is_400_and_creates_nothing(
    admin_api: APIClient,
    tmp_path: Path,
    publisher: builder.Signer,
    stores: dict[str, Path],
    data: dict[str, Any],
    errors: dict[str, list[str]],
) -> None:
    if "pools" in data:
        data = {**data, "package": package(tmp_path, publisher).open("rb")}
    response = admin_api.post(URL, data, format="multipart")
    if "package" in data:
        data["package"].close()
    assert (response.status_code, response.json()) == (400, errors)
    assert ImportJob.objects.count() == 0
    assert AuditEntry.objects.count() == 0
    assert not stores["staging"].exists() or list(stores["staging"].iterdir()) == []


def test_the_helpdesk_reads_imports_but_cannot_upload(
    helpdesk_api: APIClient, anonymous_api: APIClient, tmp_path: Path, publisher: builder.Signer,
    stores: dict[str, Path],
) -> None:  # fmt: skip
    assert helpdesk_api.get(URL).status_code == 200
    with package(tmp_path, publisher).open("rb") as source:
        assert helpdesk_api.post(URL, {"package": source}, format="multipart").status_code == 403
    assert anonymous_api.get(URL).status_code == 403
    assert ImportJob.objects.count() == 0


def test_a_dry_run_returns_the_report_and_queues_nothing(
    admin_api: APIClient,
    tmp_path: Path,
    publisher: builder.Signer,
    stores: dict[str, Path],
    trusted: TrustedPublisher,
    django_capture_on_commit_callbacks: Callable[..., Any],
) -> None:
    audit_rows = AuditEntry.objects.count()
    with (
        django_capture_on_commit_callbacks(execute=False) as callbacks,
        package(tmp_path, publisher).open("rb") as source,
    ):
        response = admin_api.post(f"{URL}?dry_run=1", {"package": source}, format="multipart")
    assert response.status_code == 200
    report = response.json()
    assert (report["kind"], report["name"], report["verdict"], report["reason"]) == (
        "cabinet",
        "p.cab",
        "accepted",
        "",
    )
    assert [update["folder"] for update in report["updates"]] == [
        "UCPhone/Polycom/CX600/Rev-1/ENU/4.0.7577.4387/CPE"
    ]
    assert callbacks == []
    assert (ImportJob.objects.count(), AuditEntry.objects.count()) == (0, audit_rows)


def test_a_bad_dry_run_value_is_400_and_creates_nothing(
    admin_api: APIClient, tmp_path: Path, publisher: builder.Signer, stores: dict[str, Path]
) -> None:
    with package(tmp_path, publisher).open("rb") as source:
        response = admin_api.post(f"{URL}?dry_run=maybe", {"package": source}, format="multipart")
    assert response.status_code == 400
    assert response.json() == {"dry_run": ["must be 1, true, 0 or false"]}
    assert ImportJob.objects.count() == 0


def test_the_helpdesk_cannot_dry_run(
    helpdesk_api: APIClient, tmp_path: Path, publisher: builder.Signer, stores: dict[str, Path]
) -> None:
    with package(tmp_path, publisher).open("rb") as source:
        response = helpdesk_api.post(f"{URL}?dry_run=1", {"package": source}, format="multipart")
    assert response.status_code == 403
    assert ImportJob.objects.count() == 0


def test_a_dry_run_checks_a_catalog_against_the_files_uploaded_with_it(
    admin_api: APIClient,
    tmp_path: Path,
    publisher: builder.Signer,
    stores: dict[str, Path],
    trusted: TrustedPublisher,
) -> None:
    catalog = tmp_path / "CPE.cat"
    catalog.write_bytes(
        builder.build_catalog({"CPE.nbt": b"image", "b.nbt": b"b"}, signer=publisher)
    )
    (tmp_path / "CPE.nbt").write_bytes(b"image")
    (tmp_path / "b.nbt").write_bytes(b"tampered")
    with (
        catalog.open("rb") as source,
        (tmp_path / "CPE.nbt").open("rb") as first,
        (tmp_path / "b.nbt").open("rb") as second,
    ):
        response = admin_api.post(
            f"{URL}?dry_run=1",
            {"package": source, "files": [first, second]},
            format="multipart",
        )
    assert response.status_code == 200
    report = response.json()
    assert (report["kind"], report["verdict"], report["reason"]) == (
        "catalog",
        "refused",
        "b.nbt: the file's hash does not match the security catalog",
    )
    assert [(c["file"], c["status"]) for c in report["catalog"]["checks"]] == [
        ("CPE.nbt", "matched"),
        ("b.nbt", "mismatched"),
    ]
    assert ImportJob.objects.count() == 0


def test_member_files_without_a_dry_run_are_refused(
    admin_api: APIClient, tmp_path: Path, publisher: builder.Signer, stores: dict[str, Path]
) -> None:
    (tmp_path / "a.nbt").write_bytes(b"a")
    with package(tmp_path, publisher).open("rb") as source, (tmp_path / "a.nbt").open("rb") as a:
        response = admin_api.post(URL, {"package": source, "files": [a]}, format="multipart")
    assert response.status_code == 400
    assert response.json() == {"files": ["member files go with the dry run of a catalog"]}
    assert ImportJob.objects.count() == 0
