"""Every bad cabinet of the spec, through the import: a failed job saying why, and
no rule, no stored file and no staging leftovers."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from deviceupdate_devtools import builder
from portal.choices import ImportStatus
from portal.models import DeviceUpdateRule, ImportJob, TrustedPublisher, UpdateFile
from portal.services.audit import Actor
from portal.services.imports import package_import_run, package_import_start

pytestmark = pytest.mark.django_db

FOLDER = b"UCPhone/Polycom/CX600/Rev-1/ENU/1.0/CPE/"
# Enough of an update folder to pass the layout checks and reach extraction.
UPDATE_MEMBERS = [
    (FOLDER + b"CPE.xml", b"x"),
    (FOLDER + b"CPE.cat", b"y"),
    (FOLDER + b"a.nbt", b"abcdef"),
]


def left_files(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.is_file()] if folder.exists() else []


def import_bytes(
    data: bytes, tmp_path: Path, capture: Callable[..., Any], stores: dict[str, Path]
) -> ImportJob:
    package = tmp_path / "hostile.cab"
    package.write_bytes(data)
    with capture(execute=False), package.open("rb") as source:
        job = package_import_start(
            source=source, filename=package.name, pools=[], actor=Actor.system("tests")
        )
    result = package_import_run(job_id=job.pk)
    assert result is not None
    assert result.status == ImportStatus.FAILED
    assert (DeviceUpdateRule.objects.count(), UpdateFile.objects.count()) == (0, 0)
    assert left_files(stores["central"]) == []
    assert left_files(stores["staging"]) == []
    return result


def real_package(tmp_path: Path, publisher: builder.Signer) -> bytes:
    update = builder.build_update(signer=publisher, images={"CPE.nbt": 100_000})
    return builder.build_package([update], path=tmp_path / "real.cab").read_bytes()


Raw = Callable[..., bytes]

CASES: list[tuple[str, Callable[[Raw], bytes], str]] = [
    (
        "not a cabinet",
        lambda raw: b"GIF89a" + b"\0" * 64,
        "the file is neither a Microsoft cabinet nor a security catalog",
    ),
    ("split set, next", lambda raw: raw(flags=2), "is part of a split cabinet set"),
    ("split set, previous", lambda raw: raw(flags=1), "is part of a split cabinet set"),
    (
        "unsupported compression",
        lambda raw: raw(compression=0x0F),
        "uses unknown compression type 15",
    ),
    ("dot-dot", lambda raw: raw([(FOLDER + b"../../x.nbt", b"x")]), "has a '..' path component"),
    ("absolute", lambda raw: raw([(b"/etc/x.nbt", b"x")]), "member name is absolute"),
    (
        "drive letter",
        lambda raw: raw([(b"C:\\x.nbt", b"x")]),
        "member name starts with a drive letter",
    ),
    (
        "control character",
        lambda raw: raw([(FOLDER + b"a\x07.nbt", b"x")]),
        "member name contains a control character",
    ),
    (
        "case duplicates",
        lambda raw: raw([(FOLDER + b"A.nbt", b"x"), (FOLDER + b"a.nbt", b"y")]),
        "two members have the same name apart from case",
    ),
    (
        "name over 255",
        lambda raw: raw([(b"n" * 256, b"x")]),
        "member name is longer than 255 characters (256)",
    ),
    (
        "declared size over limit",
        lambda raw: raw(sizes={0: 2**31}),
        "more than the per-file limit of 1073741824",
    ),
    (
        "more than 10,000 members",
        lambda raw: raw(file_count=10_001),
        "more than the limit of 10000",
    ),
    ("corrupt data block", lambda raw: raw(UPDATE_MEMBERS)[:-6] + b"ABCDEF", "checksum"),
]


@pytest.mark.parametrize(
    ("case", "make", "expected"),
    CASES,
    ids=[c[0] for c in CASES],
)
def test_a_hostile_cabinet_is_refused_leaving_nothing(
    case: str,
    make: Callable[[Raw], bytes],
    expected: str,
    cabinet_bytes: Raw,
    tmp_path: Path,
    stores: dict[str, Path],
    trusted: TrustedPublisher,
    django_capture_on_commit_callbacks: Callable[..., Any],
) -> None:
    job = import_bytes(make(cabinet_bytes), tmp_path, django_capture_on_commit_callbacks, stores)
    assert job.error != ""
    assert expected.lower() in job.error.lower()


def test_a_truncated_package_is_refused_leaving_nothing(
    tmp_path: Path,
    publisher: builder.Signer,
    stores: dict[str, Path],
    trusted: TrustedPublisher,
    django_capture_on_commit_callbacks: Callable[..., Any],
) -> None:
    data = real_package(tmp_path, publisher)
    job = import_bytes(data[: len(data) // 2], tmp_path, django_capture_on_commit_callbacks, stores)
    assert "truncated" in job.error or "past the end" in job.error


def test_a_corrupted_block_of_a_real_package_is_refused_leaving_nothing(
    tmp_path: Path,
    publisher: builder.Signer,
    stores: dict[str, Path],
    trusted: TrustedPublisher,
    django_capture_on_commit_callbacks: Callable[..., Any],
) -> None:
    data = bytearray(real_package(tmp_path, publisher))
    data[-500] ^= 0xFF
    job = import_bytes(bytes(data), tmp_path, django_capture_on_commit_callbacks, stores)
    assert job.error != ""


def test_a_block_inflating_past_its_declared_size_is_refused_leaving_nothing(
    cabinet_bytes: Raw,
    mszip: Callable[..., list[tuple[bytes, int]]],
    tmp_path: Path,
    stores: dict[str, Path],
    trusted: TrustedPublisher,
    django_capture_on_commit_callbacks: Callable[..., Any],
) -> None:
    # The block inflates to 30,000 bytes but declares 1,000, as its members do in all.
    ((payload, _size),) = mszip([b"\0" * 30_000])
    members = [
        (FOLDER + b"CPE.xml", b"x"),
        (FOLDER + b"CPE.cat", b"y"),
        (FOLDER + b"a.nbt", b"\0" * 998),
    ]
    data = cabinet_bytes(members, compression=1, blocks=[(payload, 1000)])
    job = import_bytes(data, tmp_path, django_capture_on_commit_callbacks, stores)
    assert job.error == (
        "the cabinet is corrupt (more bytes out than data block 0 of folder 0 declares)"
    )
