"""A worker killed mid-import: the job ends failed, nothing half-applied; lost messages
are sent again; files a dead import left in the central store are swept."""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from django.utils import timezone

from deviceupdate_devtools import builder
from portal.choices import ImportStatus
from portal.models import DeviceUpdateRule, ImportJob, TrustedPublisher, UpdateFile
from portal.services.audit import Actor
from portal.services.imports import (
    central_store_sweep_orphans,
    imports_recover,
    job_staging_dir,
    package_import_run,
    package_import_start,
)
from portal.tasks import central_store_sweep_task, imports_recover_task

pytestmark = pytest.mark.django_db

HOUR = dt.timedelta(hours=1)


def start(tmp_path: Path, publisher: builder.Signer, capture: Callable[..., Any]) -> ImportJob:
    package = builder.build_package(
        [builder.build_update(signer=publisher)], path=tmp_path / "p.cab"
    )
    with capture(execute=False), package.open("rb") as source:
        return package_import_start(
            source=source, filename="p.cab", pools=[], actor=Actor.system("tests")
        )


def test_an_import_whose_worker_died_is_failed_and_its_staging_removed(
    tmp_path: Path,
    publisher: builder.Signer,
    stores: dict[str, Path],
    trusted: TrustedPublisher,
    django_capture_on_commit_callbacks: Callable[..., Any],
) -> None:
    job = start(tmp_path, publisher, django_capture_on_commit_callbacks)
    # The worker claimed it two hours ago, then was killed (SIGKILL: no finally ran).
    ImportJob.objects.filter(pk=job.pk).update(
        status=ImportStatus.RUNNING, started_at=timezone.now() - 2 * HOUR
    )
    with mock.patch("portal.tasks.package_import_task.delay") as delay:
        assert imports_recover(stale_after=HOUR) == (1, 0)
    delay.assert_not_called()
    job.refresh_from_db()
    assert (job.status, job.error) == (
        ImportStatus.FAILED,
        "the worker stopped during the import; nothing was applied, import it again",
    )
    assert not job_staging_dir(job.pk).exists()
    assert DeviceUpdateRule.objects.count() == 0
    # A late duplicate of its message finds nothing to do.
    assert package_import_run(job_id=job.pk) is None


def test_a_queued_import_whose_message_was_lost_is_sent_again_once_it_is_stale(
    tmp_path: Path,
    publisher: builder.Signer,
    stores: dict[str, Path],
    trusted: TrustedPublisher,
    django_capture_on_commit_callbacks: Callable[..., Any],
) -> None:
    job = start(tmp_path, publisher, django_capture_on_commit_callbacks)
    with mock.patch("portal.tasks.package_import_task.delay") as delay:
        assert imports_recover(stale_after=HOUR) == (0, 0)
        ImportJob.objects.filter(pk=job.pk).update(created_at=timezone.now() - 2 * HOUR)
        assert imports_recover(stale_after=HOUR) == (0, 1)
    delay.assert_called_once_with(job_id=job.pk)
    assert package_import_run(job_id=job.pk).status == ImportStatus.SUCCEEDED  # type: ignore[union-attr]


def test_orphan_files_in_the_central_store_are_swept_and_recorded_ones_kept(
    tmp_path: Path,
    publisher: builder.Signer,
    stores: dict[str, Path],
    trusted: TrustedPublisher,
    django_capture_on_commit_callbacks: Callable[..., Any],
) -> None:
    job = start(tmp_path, publisher, django_capture_on_commit_callbacks)
    package_import_run(job_id=job.pk)
    orphan = stores["central"] / "DeviceUpdateStore" / "UCPhone" / "X" / "orphan.nbt"
    orphan.parent.mkdir(parents=True)
    orphan.write_bytes(b"left by a dead import")
    assert central_store_sweep_orphans(older_than=HOUR) == []  # too recent to judge
    old = (timezone.now() - 2 * HOUR).timestamp()
    os.utime(orphan, (old, old))
    for row in UpdateFile.objects.all():
        os.utime(stores["central"] / row.storage_name, (old, old))
    assert central_store_sweep_orphans(older_than=HOUR) == [
        "DeviceUpdateStore/UCPhone/X/orphan.nbt"
    ]
    assert not orphan.exists()
    assert all((stores["central"] / row.storage_name).exists() for row in UpdateFile.objects.all())
    assert UpdateFile.objects.count() == 3


def test_a_running_import_is_failed_when_its_lease_runs_out_not_before(
    tmp_path: Path,
    publisher: builder.Signer,
    stores: dict[str, Path],
    trusted: TrustedPublisher,
    django_capture_on_commit_callbacks: Callable[..., Any],
) -> None:
    job = start(tmp_path, publisher, django_capture_on_commit_callbacks)
    now = timezone.now()
    # Started long ago, but its worker renews the lease: alive.
    ImportJob.objects.filter(pk=job.pk).update(
        status=ImportStatus.RUNNING, started_at=now - 2 * HOUR, lease_expires_at=now
    )
    leftover = stores["central"] / ".incoming" / f"job-{job.pk}" / "0123abcd"
    leftover.parent.mkdir(parents=True)
    leftover.write_bytes(b"half a copy")
    assert imports_recover(stale_after=HOUR, now=now - dt.timedelta(seconds=1)) == (0, 0)
    assert ImportJob.objects.get(pk=job.pk).status == ImportStatus.RUNNING
    assert leftover.exists()

    assert imports_recover(stale_after=HOUR, now=now + dt.timedelta(seconds=1)) == (1, 0)

    job.refresh_from_db()
    assert (job.status, job.error) == (
        ImportStatus.FAILED,
        f"the worker stopped during the import (its lease ran out at "
        f"{now:%Y-%m-%d %H:%M:%S} UTC); nothing was applied, import it again",
    )
    assert not job_staging_dir(job.pk).exists()
    assert not leftover.parent.exists()


def test_an_import_given_up_by_the_recovery_while_its_worker_lived_applies_nothing(
    tmp_path: Path,
    publisher: builder.Signer,
    stores: dict[str, Path],
    trusted: TrustedPublisher,
    django_capture_on_commit_callbacks: Callable[..., Any],
) -> None:
    job = start(tmp_path, publisher, django_capture_on_commit_callbacks)

    def give_up(job: ImportJob, percent: int, step: str) -> None:
        # The worker was cut off for longer than its lease: the recovery gave it up.
        if step == "setting rules pending":
            ImportJob.objects.filter(pk=job.pk).update(lease_expires_at=timezone.now() - HOUR)
            assert imports_recover(stale_after=HOUR) == (1, 0)

    with mock.patch("portal.services.imports._progress", give_up):
        finished = package_import_run(job_id=job.pk)

    assert finished is not None
    assert (finished.status, finished.error) == (
        ImportStatus.FAILED,
        "the import was given up while it ran; import it again",
    )
    assert (DeviceUpdateRule.objects.count(), UpdateFile.objects.count()) == (0, 0)
    assert not (stores["central"] / "DeviceUpdateStore").exists() or not any(
        path.is_file() for path in (stores["central"] / "DeviceUpdateStore").rglob("*")
    )


def test_temporary_files_no_running_import_owns_are_swept(
    stores: dict[str, Path], db: None
) -> None:
    leftover = stores["central"] / ".incoming" / "job-999" / "0123abcd"
    leftover.parent.mkdir(parents=True)
    leftover.write_bytes(b"left by a dead writer")
    old = (timezone.now() - 2 * HOUR).timestamp()
    os.utime(leftover, (old, old))
    assert central_store_sweep_orphans(older_than=HOUR) == [".incoming/job-999/0123abcd"]
    assert not leftover.exists()


def test_beat_recovers_every_minute_and_sweeps_the_store_apart(
    stores: dict[str, Path], db: None, settings: Any
) -> None:
    schedule = settings.CELERY_BEAT_SCHEDULE
    assert schedule["imports-recover"] == {
        "task": "portal.tasks.imports_recover_task",
        "schedule": 60,
    }
    assert schedule["central-store-sweep"]["task"] == "portal.tasks.central_store_sweep_task"
    assert imports_recover_task() == {"failed": 0, "requeued": 0}
    assert central_store_sweep_task() == 0
