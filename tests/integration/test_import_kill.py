"""`kill -9` of the worker running an import: the job is failed with its reason once its
lease runs out (minutes, not the task's time limit), its staging and temporary files are
gone, nothing sits under a final name in the central store that was not verified, and
the same package imports at once."""

from __future__ import annotations

import datetime as dt
import hashlib
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from django.conf import settings

from deviceupdate_devtools import builder
from portal.choices import ImportStatus
from portal.models import DeviceUpdateRule, ImportJob, Pool, Site, UpdateFile, UpdateVersion
from portal.services.audit import Actor
from portal.services.imports import (
    imports_recover,
    job_staging_dir,
    package_import_start,
    storage_name,
)
from portal.services.publishers import publisher_add
from tests.conftest import wait_until

pytestmark = pytest.mark.django_db(transaction=True)

MIB = 1024 * 1024
HOUR = dt.timedelta(hours=1)
SECOND = dt.timedelta(seconds=1)
VERSION = "9.9.3.1"


def _digests(files: dict[str, bytes]) -> dict[str, str]:
    return {name: hashlib.sha256(data).hexdigest() for name, data in files.items()}


def _stored(folder: Path) -> dict[str, str]:
    """What the central store holds under final names in the folder, by SHA-256."""
    if not folder.is_dir():
        return {}
    return {
        path.name: hashlib.sha256(path.read_bytes()).hexdigest()
        for path in folder.iterdir()
        if path.is_file()
    }


def _import(package: Path, pool: Pool) -> ImportJob:
    with package.open("rb") as source:
        return package_import_start(
            source=source, filename=package.name, pools=[pool], actor=Actor.system("tests")
        )


def test_a_killed_import_fails_within_its_lease_and_the_package_imports_again(
    tmp_path: Path, start_worker: Callable[..., subprocess.Popen[bytes]]
) -> None:
    site = Site.objects.create(name="Kill")
    pool = Pool.objects.create(
        site=site, fqdn="pool-kill.example.org", internal_web_fqdn="pool-kill.example.org"
    )
    ca = builder.make_test_ca()
    publisher_add(pem=ca.certificate_pem.decode(), actor=Actor.system("tests"))
    update = builder.build_update(
        signer=builder.make_publisher(ca),
        version=VERSION,
        images={"CPE.nbt": 64 * 1024, "CPE2.nbt": 3 * MIB},
    )
    package = builder.build_package([update], path=tmp_path / "UCUpdates.cab")
    expected = _digests(update.files)
    central = settings.CENTRAL_STORE_DIR
    final_folder = central / storage_name(update.folder, "x").rsplit("/", 1)[0]
    reached = tmp_path / "reached"
    try:
        worker = start_worker(
            queues=["imports"],
            broker_url=settings.CELERY_BROKER_URL,
            app="tests.integration.paused_import_worker",
            IMPORT_PAUSE_ON="CPE2.nbt",
            IMPORT_PAUSE_REACHED=str(reached),
            DEVICEUPDATE_IMPORT_LEASE_RENEW_SECONDS="1",
            DEVICEUPDATE_IMPORT_LEASE_SECONDS="3",
        )
        job = _import(package, pool)
        wait_until(reached.exists, "the worker to halt while copying CPE2.nbt")

        # Mid-import: CPE2.nbt is a partial file under a temporary name of this job only.
        temporary = Path(reached.read_text())
        assert temporary.parent == central / ".incoming" / f"job-{job.pk}"
        assert temporary.stat().st_size == MIB
        assert "CPE2.nbt" not in _stored(final_folder)
        first_lease = ImportJob.objects.get(pk=job.pk).lease_expires_at
        assert first_lease is not None
        wait_until(
            lambda: ImportJob.objects.get(pk=job.pk).lease_expires_at != first_lease,
            "the running worker to renew its lease",
        )
        live = ImportJob.objects.get(pk=job.pk)
        assert live.status == ImportStatus.RUNNING
        assert live.lease_expires_at is not None
        # A live worker's job is left alone by the recovery.
        assert imports_recover(stale_after=HOUR, now=live.lease_expires_at - SECOND) == (0, 0)

        worker.kill()  # SIGKILL: no finally, no handler runs in the worker
        worker.wait()
        dead = ImportJob.objects.get(pk=job.pk)
        assert dead.status == ImportStatus.RUNNING
        lease = dead.lease_expires_at
        assert lease is not None
        # The lease is at most DEVICEUPDATE_IMPORT_LEASE_SECONDS past its last renewal.
        assert imports_recover(stale_after=HOUR, now=lease - SECOND) == (0, 0)

        assert imports_recover(stale_after=HOUR, now=lease + SECOND) == (1, 0)

        dead.refresh_from_db()
        assert (dead.status, dead.step, dead.error) == (
            ImportStatus.FAILED,
            "refused",
            f"the worker stopped during the import (its lease ran out at "
            f"{lease:%Y-%m-%d %H:%M:%S} UTC); nothing was applied, import it again",
        )
        assert not job_staging_dir(job.pk).exists()
        assert not (central / ".incoming" / f"job-{job.pk}").exists()
        # Under final names only whole, verified copies (stored before the halt).
        assert _stored(final_folder) == {
            name: expected[name] for name in ("CPE.cat", "CPE.nbt", "CPE.xml")
        }
        assert (UpdateVersion.objects.count(), DeviceUpdateRule.objects.count()) == (0, 0)
        assert imports_recover(stale_after=HOUR, now=lease + HOUR) == (0, 0)  # once

        start_worker(queues=["imports"], broker_url=settings.CELERY_BROKER_URL)
        again = _import(package, pool)
        wait_until(
            lambda: ImportJob.objects.get(pk=again.pk).status in ImportStatus.finished(),
            "the import to finish",
        )
        again.refresh_from_db()
        assert (again.status, again.error) == (ImportStatus.SUCCEEDED, "")
        assert _stored(final_folder) == expected
        assert dict(UpdateFile.objects.values_list("name", "sha256")) == expected
        assert list(DeviceUpdateRule.objects.values_list("pending_version", flat=True)) == [VERSION]
        assert not (central / ".incoming" / f"job-{again.pk}").exists()
    finally:
        shutil.rmtree(final_folder, ignore_errors=True)
