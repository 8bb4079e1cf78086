"""Inspecting a package or catalog without importing it: the service, and the verdict it
shares with the import (the same pipeline, so the same words)."""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from deviceupdate_devtools import builder
from portal.models import AuditEntry, DeviceUpdateRule, ImportJob, TrustedPublisher, UpdateFile
from portal.services.audit import Actor
from portal.services.imports import package_import_run, package_import_start, package_inspect
from portal.services.publishers import publisher_add
from tests.portal.packaging.conftest import build_raw_cabinet, mszip_blocks

pytestmark = pytest.mark.django_db

FOLDER = "UCPhone/Polycom/CX600/Rev-1/ENU/4.0.7577.4387/CPE"
RULE_ID = "2de8cbf6-8a1e-4bc0-9d9e-0b2b5a1c1f11"
SIGNER = "CN=Device Update Test Publisher,O=Device Update Tests"
CA_SUBJECT = "CN=Device Update Test CA,O=Device Update Tests"


def inspect(path: Path) -> dict[str, Any]:
    with path.open("rb") as source:
        return package_inspect(source=source, filename=path.name)


def import_error(path: Path, capture: Callable[..., Any]) -> str:
    with capture(execute=False), path.open("rb") as source:
        job = package_import_start(
            source=source, filename=path.name, pools=[], actor=Actor.system("tests")
        )
    done = package_import_run(job_id=job.pk)
    assert done is not None
    assert (DeviceUpdateRule.objects.count(), UpdateFile.objects.count()) == (0, 0)
    return done.error


def assert_nothing_written(stores: dict[str, Path], audit_rows: int) -> None:
    assert ImportJob.objects.count() == 0
    assert (DeviceUpdateRule.objects.count(), UpdateFile.objects.count()) == (0, 0)
    assert AuditEntry.objects.count() == audit_rows
    assert not stores["central"].exists() or not any(stores["central"].rglob("*"))
    assert not any(stores["staging"].iterdir())


@pytest.fixture
def good_package(tmp_path: Path, publisher: builder.Signer) -> Path:
    update = builder.build_update(signer=publisher, images={"CPE.nbt": 5000})
    return builder.build_package([update], path=tmp_path / "UCUpdates.cab")


def test_a_good_package_is_explained_and_nothing_is_written(
    good_package: Path, stores: dict[str, Path], trusted: TrustedPublisher
) -> None:
    audit_rows = AuditEntry.objects.count()

    report = inspect(good_package)

    assert (report["kind"], report["name"], report["verdict"], report["reason"]) == (
        "cabinet",
        "UCUpdates.cab",
        "accepted",
        "",
    )
    assert report["size"] == good_package.stat().st_size
    cabinet = report["cabinet"]
    assert [(f["index"], f["compression"]) for f in cabinet["folders"]] == [(0, "mszip")]
    assert sorted(m["name"] for m in cabinet["members"]) == [
        f"{FOLDER}/CPE.cat",
        f"{FOLDER}/CPE.nbt",
        f"{FOLDER}/CPE.xml",
    ]
    assert cabinet["signature"] is None
    (update,) = report["updates"]
    assert (update["folder"], update["verdict"], update["reason"]) == (FOLDER, "accepted", "")
    assert update["description"]["id"] == RULE_ID
    assert update["description"]["version"] == "4.0.7577.4387"
    assert [(f["name"], f["size"]) for f in update["files"]][1] == ("CPE.nbt", 5000)
    catalog = update["catalog"]
    assert (catalog["verdict"], catalog["member_digests"]) == ("accepted", ["sha256"])
    assert sorted(catalog["matched"]) == ["CPE.nbt", "CPE.xml"]
    assert (catalog["mismatched"], catalog["missing"], catalog["unlisted"]) == ([], [], [])
    assert catalog["signature"]["signer"]["subject"] == SIGNER
    assert [c["subject"] for c in catalog["signature"]["chain"]] == [SIGNER, CA_SUBJECT]
    assert catalog["signature"]["signing_time"] == "2024-01-01T00:00:00+00:00"
    assert (report["ignored"], report["warnings"]) == ([], [])
    assert_nothing_written(stores, audit_rows)


def test_an_untrusted_package_gets_the_reason_the_import_gives(
    good_package: Path,
    stores: dict[str, Path],
    django_capture_on_commit_callbacks: Callable[..., Any],
) -> None:
    other_ca = builder.make_test_ca(common_name="Someone Else")
    publisher_add(pem=other_ca.certificate_pem.decode(), actor=Actor.system("tests"))
    audit_rows = AuditEntry.objects.count()

    report = inspect(good_package)

    assert report["verdict"] == "refused"
    assert report["reason"] == (
        f"the catalog's signer does not chain to a trusted publisher ({SIGNER})"
    )
    assert report["updates"][0]["catalog"]["verdict"] == "refused"
    assert_nothing_written(stores, audit_rows)
    assert import_error(good_package, django_capture_on_commit_callbacks) == report["reason"]


def test_a_tampered_image_is_reported_as_mismatched(
    tmp_path: Path, publisher: builder.Signer, stores: dict[str, Path], trusted: TrustedPublisher
) -> None:
    update = builder.build_update(signer=publisher)
    update.files["CPE.nbt"] = b"tampered"
    path = builder.build_package([update], path=tmp_path / "p.cab")

    report = inspect(path)

    catalog = report["updates"][0]["catalog"]
    assert (catalog["matched"], catalog["mismatched"]) == (["CPE.xml"], ["CPE.nbt"])
    assert report["reason"] == "CPE.nbt: the file's hash does not match the security catalog"


def test_no_trusted_publisher_is_the_first_reason(
    good_package: Path, stores: dict[str, Path]
) -> None:
    report = inspect(good_package)
    assert report["reason"] == "no trusted publisher is configured; add the vendor's certificate"


def test_a_corrupt_cabinet_without_updates_is_corrupt_not_empty(
    tmp_path: Path,
    stores: dict[str, Path],
    trusted: TrustedPublisher,
    django_capture_on_commit_callbacks: Callable[..., Any],
) -> None:
    ((payload, size),) = mszip_blocks([b"readme text " * 100])
    broken = payload[:2] + bytes(byte ^ 0xFF for byte in payload[2:])
    path = tmp_path / "corrupt.cab"
    path.write_bytes(
        build_raw_cabinet(
            [(b"readme.txt", b"readme text " * 100)], compression=1, blocks=[(broken, size)]
        )
    )

    report = inspect(path)

    assert (report["verdict"], report["reason"]) == (
        "refused",
        "readme.txt: the cabinet is corrupt (cannot decompress data block 0 of folder 0)",
    )
    assert import_error(path, django_capture_on_commit_callbacks) == report["reason"]


def test_a_sound_cabinet_without_updates_says_so(
    fixture_cab: Callable[[str], Path], stores: dict[str, Path], trusted: TrustedPublisher
) -> None:
    report = inspect(fixture_cab("normal_2files_2folders.cab"))
    assert (report["verdict"], report["reason"]) == ("refused", "no device update in the package")
    assert [f["compression"] for f in report["cabinet"]["folders"]] == ["mszip", "lzx"]
    assert len(report["ignored"]) == 4


def test_a_lone_catalog_is_explained(
    tmp_path: Path, publisher: builder.Signer, stores: dict[str, Path], trusted: TrustedPublisher
) -> None:
    update = builder.build_update(signer=publisher)
    path = tmp_path / "CPE.cat"
    path.write_bytes(update.files["CPE.cat"])

    report = inspect(path)

    assert (report["kind"], report["verdict"], report["reason"]) == ("catalog", "accepted", "")
    catalog = report["catalog"]
    assert sorted(m["name"] for m in catalog["members"]) == ["CPE.nbt", "CPE.xml"]
    assert catalog["signature"]["signer"]["subject"] == SIGNER
    assert ImportJob.objects.count() == 0


def test_a_file_that_is_neither_is_refused_in_one_line(
    tmp_path: Path, stores: dict[str, Path], trusted: TrustedPublisher
) -> None:
    path = tmp_path / "picture.gif"
    path.write_bytes(b"GIF89a" + b"\0" * 64)
    report = inspect(path)
    assert (report["kind"], report["verdict"], report["reason"], report["cabinet"]) == (
        "cabinet",
        "refused",
        "the file is neither a Microsoft cabinet nor a security catalog",
        None,
    )


# --- the command ---------------------------------------------------------------------


def test_the_command_prints_one_screen_and_json_is_the_report(
    good_package: Path, stores: dict[str, Path], trusted: TrustedPublisher
) -> None:
    out = io.StringIO()
    call_command("inspect_device_update", str(good_package), stdout=out)
    lines = out.getvalue().splitlines()
    assert lines[1] == "verdict: the import would be accepted"
    assert f"update {FOLDER}: accepted" in lines
    assert any(line.startswith(f"    signed by {SIGNER} at 2024-01-01") for line in lines)
    assert len(lines) < 25

    out = io.StringIO()
    call_command("inspect_device_update", str(good_package), "--json", stdout=out)
    assert json.loads(out.getvalue()) == inspect(good_package)


def test_the_command_exits_1_when_the_import_would_refuse(
    good_package: Path, stores: dict[str, Path]
) -> None:
    out = io.StringIO()
    with pytest.raises(SystemExit) as stopped:
        call_command("inspect_device_update", str(good_package), stdout=out)
    assert stopped.value.code == 1
    assert out.getvalue().splitlines()[1] == (
        "verdict: the import would be refused: no trusted publisher is configured; "
        "add the vendor's certificate"
    )


@pytest.mark.parametrize("command", ["inspect_device_update", "import_device_update"])
def test_a_directory_is_a_directory(command: str, tmp_path: Path) -> None:
    with pytest.raises(CommandError) as refused:
        call_command(command, str(tmp_path))
    assert str(refused.value) == f"{tmp_path}: is a directory, not a file"
    with pytest.raises(CommandError) as refused:
        call_command(command, str(tmp_path / "nothing.cab"))
    assert str(refused.value) == f"{tmp_path / 'nothing.cab'}: no such file"
    assert ImportJob.objects.count() == 0


# --- a lone catalog checked against files ---------------------------------------------


@pytest.fixture
def catalog_and_files(tmp_path: Path, publisher: builder.Signer) -> tuple[Path, Path]:
    """A catalog (CPE.nbt named, b.nbt unnamed, gone.nbt named) and a folder with CPE.nbt
    tampered, b.nbt intact and an extra file; gone.nbt is not there."""
    listed = {"CPE.nbt": b"image", "b.nbt": b"second", "gone.nbt": b"gone"}
    catalog = tmp_path / "CPE.cat"
    catalog.write_bytes(builder.build_catalog(listed, signer=publisher, unnamed=["b.nbt"]))
    folder = tmp_path / "folder"
    folder.mkdir()
    (folder / "CPE.nbt").write_bytes(b"tampered")
    (folder / "b.nbt").write_bytes(b"second")
    (folder / "extra.txt").write_bytes(b"extra")
    return catalog, folder


def test_a_lone_catalog_is_checked_against_files_per_file_and_entry(
    catalog_and_files: tuple[Path, Path], stores: dict[str, Path], trusted: TrustedPublisher
) -> None:
    catalog, folder = catalog_and_files
    audit_rows = AuditEntry.objects.count()
    with contextlib.ExitStack() as stack:
        files = {p.name: stack.enter_context(p.open("rb")) for p in sorted(folder.iterdir())}
        source = stack.enter_context(catalog.open("rb"))
        report = package_inspect(source=source, filename=catalog.name, files=files)

    second = hashlib.sha256(b"second").hexdigest()
    assert (report["kind"], report["verdict"], report["reason"]) == (
        "catalog",
        "refused",
        "CPE.nbt: the file's hash does not match the security catalog",
    )
    assert report["catalog"]["checks"] == [
        {"file": "CPE.nbt", "entry": "CPE.nbt", "kind": "flat", "digest_algorithm": "sha256",
         "status": "mismatched"},
        {"file": "b.nbt", "entry": f"SHA256 {second}", "kind": "flat",
         "digest_algorithm": "sha256", "status": "matched"},
        {"file": "extra.txt", "entry": None, "kind": "", "digest_algorithm": "",
         "status": "unlisted"},
        {"file": None, "entry": "gone.nbt", "kind": "flat", "digest_algorithm": "sha256",
         "status": "missing"},
    ]  # fmt: skip
    assert_nothing_written(stores, audit_rows)


def test_the_command_checks_a_catalog_against_a_folder(
    catalog_and_files: tuple[Path, Path], stores: dict[str, Path], trusted: TrustedPublisher
) -> None:
    catalog, folder = catalog_and_files
    out, err = io.StringIO(), io.StringIO()
    with pytest.raises(SystemExit) as stopped:
        call_command(
            "inspect_device_update", str(catalog), "--files", str(folder), stdout=out, stderr=err
        )

    lines = out.getvalue().splitlines()
    assert stopped.value.code == 1
    assert err.getvalue() == (
        "error: CPE.nbt: the file's hash does not match the security catalog\n"
    )
    second = hashlib.sha256(b"second").hexdigest()
    assert lines[-4:] == [
        "  mismatched: CPE.nbt (flat sha256)",
        f"  matched: b.nbt entry SHA256 {second} (flat sha256)",
        "  unlisted: extra.txt",
        "  missing: (no file) entry gone.nbt (flat sha256)",
    ]
    out = io.StringIO()
    with pytest.raises(SystemExit):
        call_command(
            "inspect_device_update",
            str(catalog),
            "--files",
            str(folder / "b.nbt"),
            "--json",
            stdout=out,
            stderr=io.StringIO(),
        )
    checks = json.loads(out.getvalue())["catalog"]["checks"]
    assert [(c["file"], c["entry"], c["status"]) for c in checks] == [
        ("b.nbt", f"SHA256 {second}", "matched"),
        (None, "CPE.nbt", "missing"),
        (None, "gone.nbt", "missing"),
    ]


def test_an_unsigned_catalog_reads_unsigned(
    tmp_path: Path, stores: dict[str, Path], trusted: TrustedPublisher
) -> None:
    catalog = tmp_path / "CPE.cat"
    catalog.write_bytes(builder.unsigned_catalog(builder.build_ctl({"CPE.nbt": b"image"})))
    out, err = io.StringIO(), io.StringIO()
    with pytest.raises(SystemExit):
        call_command("inspect_device_update", str(catalog), stdout=out, stderr=err)

    lines = out.getvalue().splitlines()
    assert "    unsigned: the catalog carries no signature" in lines
    assert not any("unknown signer" in line for line in lines)
    assert err.getvalue() == "error: the catalog is not signed\n"
