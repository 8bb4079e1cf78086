"""Writes to the central store: a file is under its final name only once verified."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from portal.services.central_store import (
    StoreVerifyError,
    central_store_discard,
    central_store_put,
)

DATA = hashlib.shake_256(b"central").digest(3 * 1024 * 1024 + 17)
NAME = "DeviceUpdateStore/UCPhone/Polycom/CX600/Rev-1/ENU/1.0/CPE/CPE.nbt"


@pytest.fixture
def source(tmp_path: Path) -> Path:
    path = tmp_path / "CPE.nbt"
    path.write_bytes(DATA)
    return path


def test_a_verified_file_lands_under_its_name_and_no_temporary_file_stays(
    stores: dict[str, Path], source: Path
) -> None:
    central_store_put(
        source=source,
        name=NAME,
        size=len(DATA),
        sha256=hashlib.sha256(DATA).hexdigest(),
        owner="job-1",
    )
    assert (stores["central"] / NAME).read_bytes() == DATA
    assert [p for p in (stores["central"] / ".incoming").rglob("*") if p.is_file()] == []


@pytest.mark.parametrize(
    ("size", "sha256"),
    [
        (len(DATA), "0" * 64),
        (len(DATA) + 1, hashlib.sha256(DATA).hexdigest()),
    ],
)
def test_a_copy_that_does_not_match_never_takes_the_final_name(
    stores: dict[str, Path], source: Path, size: int, sha256: str
) -> None:
    with pytest.raises(StoreVerifyError) as refused:
        central_store_put(source=source, name=NAME, size=size, sha256=sha256, owner="job-2")
    assert refused.value.message == (
        f"{NAME}: the stored copy does not match the package: {len(DATA):,} bytes, SHA-256 "
        f"{hashlib.sha256(DATA).hexdigest()} (expected {size:,} bytes, {sha256})"
    )
    assert not (stores["central"] / NAME).exists()
    assert [p for p in (stores["central"] / ".incoming").rglob("*") if p.is_file()] == []


def test_a_writers_temporary_files_are_discarded_and_no_one_elses(
    stores: dict[str, Path],
) -> None:
    mine = stores["central"] / ".incoming" / "job-3" / "a"
    other = stores["central"] / ".incoming" / "job-4" / "b"
    for path in (mine, other):
        path.parent.mkdir(parents=True)
        path.write_bytes(b"part")
    assert central_store_discard(owner="job-3") == [".incoming/job-3/a"]
    assert not mine.parent.exists()
    assert other.read_bytes() == b"part"


@pytest.fixture
def s3_bucket(settings: Any) -> Iterator[Any]:
    """The central store on an S3-compatible bucket (moto's in-process S3)."""
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket="central")
        settings.STORAGES = {
            **settings.STORAGES,
            "default": {
                "BACKEND": "storages.backends.s3.S3Storage",
                "OPTIONS": {
                    "bucket_name": "central",
                    "region_name": "us-east-1",
                    "default_acl": "private",
                    "file_overwrite": False,
                },
            },
        }
        yield client


def _keys(client: Any) -> list[str]:
    listing = client.list_objects_v2(Bucket="central")
    return sorted(item["Key"] for item in listing.get("Contents", []))


def test_on_s3_a_verified_object_is_copied_to_its_key_and_the_temporary_one_removed(
    s3_bucket: Any, source: Path
) -> None:
    central_store_put(
        source=source,
        name=NAME,
        size=len(DATA),
        sha256=hashlib.sha256(DATA).hexdigest(),
        owner="job-5",
    )
    assert _keys(s3_bucket) == [NAME]
    assert s3_bucket.get_object(Bucket="central", Key=NAME)["Body"].read() == DATA


def test_on_s3_a_copy_that_does_not_match_never_takes_its_key(s3_bucket: Any, source: Path) -> None:
    with pytest.raises(StoreVerifyError):
        central_store_put(source=source, name=NAME, size=len(DATA), sha256="0" * 64, owner="j")
    assert _keys(s3_bucket) == []


def test_on_s3_a_writers_temporary_objects_are_discarded_and_no_one_elses(
    s3_bucket: Any,
) -> None:
    for key in (".incoming/job-6/a", ".incoming/job-6/sub/b", ".incoming/job-7/c"):
        s3_bucket.put_object(Bucket="central", Key=key, Body=b"part")
    assert sorted(central_store_discard(owner="job-6")) == [
        ".incoming/job-6/a",
        ".incoming/job-6/sub/b",
    ]
    assert _keys(s3_bucket) == [".incoming/job-7/c"]
