"""Replication to every server of a pool: verified copies, idempotence, anti-entropy."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from django.conf import settings

from deviceupdate_devtools import builder
from portal.choices import ReplicaState
from portal.models import Pool, Server, ServerFile, TrustedPublisher, UpdateFile
from portal.services.audit import Actor
from portal.services.imports import package_import_run, package_import_start
from portal.services.replication import (
    server_check_store,
    server_replicate,
    server_verified_folders,
)
from portal.services.topology import topology_save
from portal.tasks import server_replicate_task

pytestmark = pytest.mark.django_db

FOLDER = "UCPhone/Polycom/CX600/Rev-1/ENU/4.0.7577.4387/CPE"
ACTOR = Actor.system("tests")


@pytest.fixture
def two_servers(db: None) -> tuple[Server, Server]:
    first = Server.objects.get()
    second = Server.objects.create(pool=first.pool, fqdn="fe02.example.org")
    return first, second


def imported(
    tmp_path: Path, publisher: builder.Signer, capture: Callable[..., Any]
) -> tuple[int, list[Any]]:
    """Import one update; returns its version id and the callbacks queued on commit."""
    package = builder.build_package(
        [builder.build_update(signer=publisher, images={"CPE.nbt": 200_000})],
        path=tmp_path / "p.cab",
    )
    with capture(execute=False), package.open("rb") as source:
        job = package_import_start(source=source, filename="p.cab", pools=[], actor=ACTOR)
    with (
        mock.patch("portal.tasks.server_replicate_task.delay") as delay,
        capture(execute=True),
    ):
        job = package_import_run(job_id=job.pk)  # type: ignore[assignment]
    assert job.status == "succeeded"
    version_id = UpdateFile.objects.first().version_id  # type: ignore[union-attr]
    return version_id, delay.call_args_list


def states(server: Server) -> list[tuple[str, str]]:
    return sorted(ServerFile.objects.filter(server=server).values_list("file__name", "state"))


def test_an_import_queues_one_replication_per_server_and_records_pending_files(
    tmp_path: Path,
    publisher: builder.Signer,
    stores: dict[str, Path],
    trusted: TrustedPublisher,
    two_servers: tuple[Server, Server],
    django_capture_on_commit_callbacks: Callable[..., Any],
) -> None:
    version_id, sent = imported(tmp_path, publisher, django_capture_on_commit_callbacks)
    assert sorted(sent, key=str) == sorted(
        (mock.call(server_fqdn=server.fqdn, version_id=version_id) for server in two_servers),
        key=str,
    )
    for server in two_servers:
        assert states(server) == [
            ("CPE.cat", "pending"),
            ("CPE.nbt", "pending"),
            ("CPE.xml", "pending"),
        ]
        assert server_verified_folders(server=server) == set()


def test_a_server_copies_verifies_and_then_offers_the_version(
    tmp_path: Path,
    publisher: builder.Signer,
    stores: dict[str, Path],
    trusted: TrustedPublisher,
    two_servers: tuple[Server, Server],
    django_capture_on_commit_callbacks: Callable[..., Any],
) -> None:
    first, second = two_servers
    version_id, _ = imported(tmp_path, publisher, django_capture_on_commit_callbacks)
    store = tmp_path / "fe01"
    result = server_replicate(server=first, version_id=version_id, store_dir=store)
    assert (result.verified, result.copied, result.failed) == (3, 3, 0)
    for row in UpdateFile.objects.all():
        copy = store / FOLDER / row.name
        assert hashlib.sha256(copy.read_bytes()).hexdigest() == row.sha256
    assert sorted(p.name for p in (store / FOLDER).iterdir()) == ["CPE.cat", "CPE.nbt", "CPE.xml"]
    assert server_verified_folders(server=first) == {FOLDER}
    assert server_verified_folders(server=second) == set()
    # Twice is the same as once.
    again = server_replicate(server=first, version_id=version_id, store_dir=store)
    assert (again.verified, again.copied, again.failed) == (3, 0, 0)


def test_a_copy_that_fails_verification_is_never_put_in_place(
    tmp_path: Path,
    publisher: builder.Signer,
    stores: dict[str, Path],
    trusted: TrustedPublisher,
    two_servers: tuple[Server, Server],
    django_capture_on_commit_callbacks: Callable[..., Any],
) -> None:
    first, _ = two_servers
    version_id, _ = imported(tmp_path, publisher, django_capture_on_commit_callbacks)
    image = UpdateFile.objects.get(name="CPE.nbt")
    central_copy = stores["central"] / image.storage_name
    central_copy.write_bytes(b"\0" * image.size)
    store = tmp_path / "fe01"
    result = server_replicate(server=first, version_id=version_id, store_dir=store)
    assert (result.verified, result.copied, result.failed) == (2, 2, 1)
    row = ServerFile.objects.get(server=first, file=image)
    assert row.state == ReplicaState.FAILED
    zeros = hashlib.sha256(b"\0" * image.size).hexdigest()
    assert row.error == (
        f"the copy does not match the import: {image.size} bytes, SHA-256 {zeros} "
        f"(expected {image.size} bytes, {image.sha256})"
    )
    assert sorted(p.name for p in (store / FOLDER).iterdir()) == ["CPE.cat", "CPE.xml"]
    assert server_verified_folders(server=first) == set()


def test_anti_entropy_repairs_missing_and_corrupt_copies(
    tmp_path: Path,
    publisher: builder.Signer,
    stores: dict[str, Path],
    trusted: TrustedPublisher,
    two_servers: tuple[Server, Server],
    django_capture_on_commit_callbacks: Callable[..., Any],
) -> None:
    first, _ = two_servers
    version_id, _ = imported(tmp_path, publisher, django_capture_on_commit_callbacks)
    store = tmp_path / "fe01"
    server_replicate(server=first, version_id=version_id, store_dir=store)
    image = store / FOLDER / "CPE.nbt"
    good = image.read_bytes()
    image.write_bytes(b"\xff" * len(good))  # same size: only the SHA-256 can tell
    (store / FOLDER / "CPE.xml").unlink()

    quick = server_check_store(server=first, store_dir=store, full=False)
    assert (quick.missing, quick.corrupt, quick.result.copied) == (1, 0, 1)
    assert image.read_bytes() != good

    full = server_check_store(server=first, store_dir=store, full=True)
    assert (full.missing, full.corrupt, full.result.copied, full.result.failed) == (0, 1, 1, 0)
    assert image.read_bytes() == good
    assert server_verified_folders(server=first) == {FOLDER}


def test_a_server_added_to_the_pool_catches_up_with_what_the_rules_reference(
    tmp_path: Path,
    publisher: builder.Signer,
    stores: dict[str, Path],
    trusted: TrustedPublisher,
    django_capture_on_commit_callbacks: Callable[..., Any],
) -> None:
    imported(tmp_path, publisher, django_capture_on_commit_callbacks)
    with (
        mock.patch("portal.tasks.server_check_store_task.delay") as delay,
        django_capture_on_commit_callbacks(execute=True),
    ):
        newcomer = topology_save(
            obj=Server(pool=Pool.objects.get(), fqdn="fe09.example.org"), actor=ACTOR
        )
    delay.assert_called_once_with(server_fqdn="fe09.example.org")
    assert isinstance(newcomer, Server)
    check = server_check_store(server=newcomer, store_dir=tmp_path / "fe09", full=False)
    assert (check.added, check.result.copied, check.result.verified) == (3, 3, 3)
    assert server_verified_folders(server=newcomer) == {FOLDER}


def test_a_misrouted_task_never_writes_into_another_servers_store(
    tmp_path: Path,
    publisher: builder.Signer,
    stores: dict[str, Path],
    trusted: TrustedPublisher,
    two_servers: tuple[Server, Server],
    django_capture_on_commit_callbacks: Callable[..., Any],
) -> None:
    version_id, _ = imported(tmp_path, publisher, django_capture_on_commit_callbacks)
    assert settings.SERVER_FQDN != "fe02.example.org"
    assert server_replicate_task(server_fqdn="fe02.example.org", version_id=version_id) is None
    assert not stores["server"].exists()
    assert {state for _name, state in states(two_servers[1])} == {"pending"}
