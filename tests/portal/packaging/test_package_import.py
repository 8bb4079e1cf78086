"""Package import: a signed cabinet becomes stored files and pending rules, or nothing."""

from __future__ import annotations

import hashlib
import io
import shutil
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from pytest_django.fixtures import Settings as SettingsWrapper

from deviceupdate_devtools.builder import Signer, build_package, build_update, make_test_ca
from portal.choices import ImportStatus
from portal.errors import DomainError
from portal.models import (
    AuditEntry,
    DeviceUpdateRule,
    ImportJob,
    Pool,
    TrustedPublisher,
    UpdateFile,
    UpdateVersion,
)
from portal.services.audit import Actor
from portal.services.imports import package_import_run, package_import_start
from portal.services.rules import rule_approve

pytestmark = pytest.mark.django_db

ACTOR = Actor.system("tests")
FOLDER = "UCPhone/Polycom/CX600/Rev-1/ENU/4.0.7577.4387/CPE"
RULE_ID = "2de8cbf6-8a1e-4bc0-9d9e-0b2b5a1c1f11"


def files_under(folder: Path) -> list[str]:
    if not folder.exists():
        return []
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())


def run_import(
    path: Path, capture: Callable[..., Any], *, pools: list[Pool] | None = None
) -> ImportJob:
    """Start an import as the control panel does, check it was queued, then run it."""
    with capture(execute=False) as callbacks, path.open("rb") as source:
        job = package_import_start(
            source=source, filename=path.name, pools=pools or [], actor=ACTOR
        )
    assert len(callbacks) == 1
    result = package_import_run(job_id=job.pk)
    assert result is not None
    return result


def assert_nothing_kept(stores: dict[str, Path]) -> None:
    assert DeviceUpdateRule.objects.count() == 0
    assert UpdateVersion.objects.count() == 0
    assert UpdateFile.objects.count() == 0
    assert files_under(stores["central"]) == []
    assert files_under(stores["staging"]) == []
    assert not AuditEntry.objects.filter(action__startswith="portal.rule.").exists()


def test_a_signed_package_becomes_stored_files_and_a_pending_rule(
    tmp_path: Path,
    stores: dict[str, Path],
    publisher: Signer,
    trusted: TrustedPublisher,
    django_capture_on_commit_callbacks: Callable[..., Any],
) -> None:
    update = build_update(signer=publisher, images={"CPE.nbt": 70_000, "Boot.nbt": 1_000})
    package = build_package([update], path=tmp_path / "UCUpdates.cab")
    job = run_import(package, django_capture_on_commit_callbacks)

    assert (job.status, job.error, job.progress) == (ImportStatus.SUCCEEDED, "", 100)
    assert job.package_sha256 == hashlib.sha256(package.read_bytes()).hexdigest()
    assert job.signer == "CN=Device Update Test Publisher,O=Device Update Tests"
    assert job.warnings == []
    pool = Pool.objects.get()
    rule = DeviceUpdateRule.objects.get()
    assert (rule.identity, rule.pending_version, rule.approved_version) == (
        f"service:WebServer:{pool.fqdn}/{RULE_ID}",
        "4.0.7577.4387",
        "",
    )
    expected_files = {
        name: (len(data), hashlib.sha256(data).hexdigest()) for name, data in update.files.items()
    }
    assert files_under(stores["central"]) == sorted(
        f"DeviceUpdateStore/{FOLDER}/{name}" for name in expected_files
    )
    for name, (size, sha256) in expected_files.items():
        stored = stores["central"] / "DeviceUpdateStore" / FOLDER / name
        assert hashlib.sha256(stored.read_bytes()).hexdigest() == sha256
        row = UpdateFile.objects.get(name=name)
        assert (row.size, row.sha256, row.version.folder) == (size, sha256, FOLDER)
    assert job.updates == [
        {
            "folder": FOLDER,
            "rule_id": RULE_ID,
            "version": "4.0.7577.4387",
            "catalog_digest": "sha256",
            "files": [
                {"name": name, "size": size, "sha256": sha256}
                for name, (size, sha256) in sorted(expected_files.items())
            ],
            "rules": [{"identity": rule.identity, "changed": True}],
        }
    ]
    assert list(AuditEntry.objects.order_by("id").values_list("action", flat=True)) == [
        "portal.publisher.added",
        "portal.rule.created",
        "portal.package.imported",
    ]
    assert files_under(stores["staging"]) == []


def test_importing_the_same_package_twice_changes_nothing_the_second_time(
    tmp_path: Path,
    stores: dict[str, Path],
    publisher: Signer,
    trusted: TrustedPublisher,
    django_capture_on_commit_callbacks: Callable[..., Any],
) -> None:
    package = build_package([build_update(signer=publisher)], path=tmp_path / "p.cab")
    run_import(package, django_capture_on_commit_callbacks)
    stored_before = {p: p.stat().st_mtime_ns for p in stores["central"].rglob("*") if p.is_file()}
    rule_audits = AuditEntry.objects.filter(action__startswith="portal.rule.").count()

    job = run_import(package, django_capture_on_commit_callbacks)

    assert job.status == ImportStatus.SUCCEEDED
    assert job.updates[0]["rules"][0]["changed"] is False
    assert {p: p.stat().st_mtime_ns for p in stores["central"].rglob("*") if p.is_file()} == (
        stored_before
    )
    assert AuditEntry.objects.filter(action__startswith="portal.rule.").count() == rule_audits
    assert (UpdateVersion.objects.count(), DeviceUpdateRule.objects.count()) == (1, 1)


def test_an_older_version_than_the_approved_one_is_flagged(
    tmp_path: Path,
    stores: dict[str, Path],
    publisher: Signer,
    trusted: TrustedPublisher,
    django_capture_on_commit_callbacks: Callable[..., Any],
) -> None:
    newer = build_package(
        [build_update(signer=publisher, version="4.0.8000.1")], path=tmp_path / "a.cab"
    )
    run_import(newer, django_capture_on_commit_callbacks)
    rule_approve(rule=DeviceUpdateRule.objects.get(), actor=ACTOR)
    older = build_package([build_update(signer=publisher)], path=tmp_path / "b.cab")
    job = run_import(older, django_capture_on_commit_callbacks)
    assert job.status == ImportStatus.SUCCEEDED
    pool = Pool.objects.get()
    assert job.warnings == [
        f"{FOLDER}: 4.0.7577.4387 is older than the approved 4.0.8000.1 on {pool.fqdn}; "
        "approving it is a downgrade"
    ]
    rule = DeviceUpdateRule.objects.get()
    assert (rule.pending_version, rule.approved_version) == ("4.0.7577.4387", "4.0.8000.1")


def test_members_outside_update_folders_are_listed_as_warnings(
    tmp_path: Path,
    stores: dict[str, Path],
    publisher: Signer,
    trusted: TrustedPublisher,
    django_capture_on_commit_callbacks: Callable[..., Any],
) -> None:
    package = build_package(
        [build_update(signer=publisher)],
        path=tmp_path / "p.cab",
        extra_members={"readme.txt": b"hello", "UCPhone/notes.txt": b"x"},
    )
    job = run_import(package, django_capture_on_commit_callbacks)
    assert job.status == ImportStatus.SUCCEEDED
    assert sorted(job.warnings) == [
        "UCPhone/notes.txt: ignored (outside an update folder)",
        "readme.txt: ignored (outside an update folder)",
    ]
    assert all("notes" not in name for name in files_under(stores["central"]))


def test_sha1_catalogs_are_accepted_with_a_warning_unless_refused(
    tmp_path: Path,
    settings: SettingsWrapper,
    stores: dict[str, Path],
    publisher: Signer,
    trusted: TrustedPublisher,
    django_capture_on_commit_callbacks: Callable[..., Any],
) -> None:
    package = build_package(
        [build_update(signer=publisher, digest="sha1")], path=tmp_path / "p.cab"
    )
    settings.IMPORT_REFUSE_SHA1 = True
    job = run_import(package, django_capture_on_commit_callbacks)
    assert (job.status, job.error) == (
        ImportStatus.FAILED,
        "the catalog uses SHA-1, which the settings refuse",
    )
    assert_nothing_kept(stores)
    settings.IMPORT_REFUSE_SHA1 = False
    job = run_import(package, django_capture_on_commit_callbacks)
    assert job.status == ImportStatus.SUCCEEDED
    assert job.warnings == [
        f"{FOLDER}: the catalog uses SHA-1; ask the vendor for a SHA-256 catalog"
    ]


def tampered(update: Any, name: str) -> Any:
    files = dict(update.files)
    files[name] = files[name][:-1] + bytes([files[name][-1] ^ 0xFF])
    return type(update)(update.folder, files)


def without(update: Any, name: str) -> Any:
    return type(update)(update.folder, {k: v for k, v in update.files.items() if k != name})


@pytest.mark.parametrize(
    ("change", "error"),
    [
        (
            lambda u: without(u, "CPE.cat"),
            f"the update folder {FOLDER} has no security catalog CPE.cat",
        ),
        (lambda u: without(u, "CPE.xml"), f"the update folder {FOLDER} has no description CPE.xml"),
        (lambda u: tampered(u, "CPE.nbt"), "CPE.nbt"),
    ],
    ids=["no catalog", "no description", "tampered image"],
)
def test_a_broken_update_folder_refuses_the_whole_package(
    tmp_path: Path,
    stores: dict[str, Path],
    publisher: Signer,
    trusted: TrustedPublisher,
    django_capture_on_commit_callbacks: Callable[..., Any],
    change: Callable[[Any], Any],
    error: str,
) -> None:
    good = build_update(signer=publisher, model="CX700", update_id=uuid.uuid4())
    package = build_package([good, change(build_update(signer=publisher))], path=tmp_path / "p.cab")
    job = run_import(package, django_capture_on_commit_callbacks)
    assert job.status == ImportStatus.FAILED
    assert error in job.error
    assert_nothing_kept(stores)


def test_a_package_signed_by_an_untrusted_publisher_is_refused(
    tmp_path: Path,
    stores: dict[str, Path],
    trusted: TrustedPublisher,
    django_capture_on_commit_callbacks: Callable[..., Any],
) -> None:
    stranger = make_test_ca(common_name="Someone Else")
    package = build_package([build_update(signer=stranger)], path=tmp_path / "p.cab")
    job = run_import(package, django_capture_on_commit_callbacks)
    assert job.status == ImportStatus.FAILED
    assert job.error != ""
    assert_nothing_kept(stores)


def test_without_any_trusted_publisher_nothing_is_imported(
    tmp_path: Path,
    stores: dict[str, Path],
    publisher: Signer,
    django_capture_on_commit_callbacks: Callable[..., Any],
) -> None:
    package = build_package([build_update(signer=publisher)], path=tmp_path / "p.cab")
    job = run_import(package, django_capture_on_commit_callbacks)
    assert (job.status, job.error) == (
        ImportStatus.FAILED,
        "no trusted publisher is configured; add the vendor's certificate",
    )
    assert_nothing_kept(stores)


@pytest.mark.parametrize(
    ("fixture", "error"),
    [
        ("normal_2files_2folders.cab", "no device update in the package"),
        # Quantum is refused first: the package could never be imported as it is.
        (
            "mszip_lzx_qtm.cab",
            "qtm.txt: member uses Quantum compression, which is not supported; "
            "rebuild the package with MSZIP or LZX",
        ),
    ],
)
def test_microsofts_sample_cabinets_are_refused(
    tmp_path: Path,
    stores: dict[str, Path],
    trusted: TrustedPublisher,
    django_capture_on_commit_callbacks: Callable[..., Any],
    fixture_cab: Callable[[str], Path],
    fixture: str,
    error: str,
) -> None:
    package = tmp_path / fixture
    shutil.copy(fixture_cab(fixture), package)
    job = run_import(package, django_capture_on_commit_callbacks)
    assert (job.status, job.error) == (ImportStatus.FAILED, error)
    assert_nothing_kept(stores)


def test_a_file_that_is_not_a_cabinet_is_refused(
    tmp_path: Path,
    stores: dict[str, Path],
    trusted: TrustedPublisher,
    django_capture_on_commit_callbacks: Callable[..., Any],
) -> None:
    package = tmp_path / "firmware.zip"
    package.write_bytes(b"PK\x03\x04" + b"\x00" * 100)
    job = run_import(package, django_capture_on_commit_callbacks)
    assert (job.status, job.error) == (
        ImportStatus.FAILED,
        "the file is neither a Microsoft cabinet nor a security catalog",
    )
    assert_nothing_kept(stores)


def test_an_upload_over_the_size_limit_is_refused_before_any_job(
    settings: SettingsWrapper, stores: dict[str, Path]
) -> None:
    settings.IMPORT_MAX_PACKAGE_SIZE = 1024
    with pytest.raises(DomainError) as error:
        package_import_start(
            source=io.BytesIO(b"x" * 1025), filename="big.cab", pools=[], actor=ACTOR
        )
    assert error.value.message == "the package is larger than the limit of 1,024 bytes"
    assert ImportJob.objects.count() == 0
    assert files_under(stores["staging"]) == []


def test_a_job_runs_once_even_when_its_message_arrives_twice(
    tmp_path: Path,
    stores: dict[str, Path],
    publisher: Signer,
    trusted: TrustedPublisher,
    django_capture_on_commit_callbacks: Callable[..., Any],
) -> None:
    package = build_package([build_update(signer=publisher)], path=tmp_path / "p.cab")
    job = run_import(package, django_capture_on_commit_callbacks)
    assert package_import_run(job_id=job.pk) is None
    assert ImportJob.objects.get(pk=job.pk).status == ImportStatus.SUCCEEDED


def test_the_package_goes_only_to_the_chosen_pools(
    tmp_path: Path,
    stores: dict[str, Path],
    publisher: Signer,
    trusted: TrustedPublisher,
    django_capture_on_commit_callbacks: Callable[..., Any],
) -> None:
    default = Pool.objects.get()
    other = Pool.objects.create(
        site=default.site, fqdn="pool02.example.org", internal_web_fqdn="pool02.example.org"
    )
    package = build_package([build_update(signer=publisher)], path=tmp_path / "p.cab")
    run_import(package, django_capture_on_commit_callbacks, pools=[other])
    assert list(DeviceUpdateRule.objects.values_list("pool__fqdn", flat=True)) == [
        "pool02.example.org"
    ]
    run_import(package, django_capture_on_commit_callbacks)
    assert sorted(DeviceUpdateRule.objects.values_list("pool__fqdn", flat=True)) == sorted(
        [default.fqdn, "pool02.example.org"]
    )


__all__ = ["settings"]
