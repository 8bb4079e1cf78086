"""Two servers of one pool on this machine, each with its own store and its own worker
process on its own queue: an import reaches both verified; a server whose worker was
down catches up; anti-entropy repairs a corrupt copy; a copy that fails verification
is never served."""

from __future__ import annotations

import hashlib
import secrets
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from django.test import Client
from pytest_django.fixtures import Settings

from deviceupdate_devtools.demo import demo_package_make
from portal.choices import ReplicaState
from portal.models import Pool, Server, ServerFile, Site, UpdateFile
from portal.services.audit import Actor
from portal.services.imports import package_import_run, package_import_start
from portal.services.replication import server_verified_folders
from portal.tasks import server_check_store_task
from tests.conftest import wait_until

pytestmark = pytest.mark.django_db(transaction=True)

StartWorker = Callable[..., subprocess.Popen[bytes]]


def verified(server: Server) -> int:
    return ServerFile.objects.filter(server=server, state=ReplicaState.VERIFIED).count()


def test_an_import_reaches_every_server_of_the_pool_verified(
    tmp_path: Path, start_worker: StartWorker, settings: Settings
) -> None:
    tag = secrets.token_hex(4)
    site = Site.objects.create(name=f"Fanout {tag}")
    pool = Pool.objects.create(
        site=site, fqdn=f"pool-{tag}.example.org", internal_web_fqdn=f"pool-{tag}.example.org"
    )
    first = Server.objects.create(pool=pool, fqdn=f"fe-a-{tag}.example.org")
    second = Server.objects.create(pool=pool, fqdn=f"fe-b-{tag}.example.org")
    stores = {first.pk: tmp_path / "fe-a", second.pk: tmp_path / "fe-b"}
    version = f"7.7.{int(tag[:4], 16)}.1"

    def worker(server: Server) -> subprocess.Popen[bytes]:
        return start_worker(
            queues=[server.queue],
            broker_url=settings.CELERY_BROKER_URL,
            DEVICEUPDATE_SERVER_FQDN=server.fqdn,
            DEVICEUPDATE_SERVER_STORE_DIR=str(stores[server.pk]),
        )

    try:
        worker(first)  # the second server's worker is down during the import
        demo = demo_package_make(
            directory=tmp_path / "demo", version=version, actor=Actor.system("tests")
        )
        with demo.path.open("rb") as source:
            job = package_import_start(
                source=source, filename=demo.path.name, pools=[pool], actor=Actor.system("t")
            )
        job = package_import_run(job_id=job.pk)  # type: ignore[assignment]
        assert (job.status, job.replication) == ("succeeded", "queued to 2 server(s)")
        files = UpdateFile.objects.filter(version__version=version)
        assert files.count() == 9

        wait_until(lambda: verified(first) == 9, "the first server's copies")
        for row in files:
            copy = stores[first.pk] / row.version.folder / row.name
            assert hashlib.sha256(copy.read_bytes()).hexdigest() == row.sha256
        assert verified(second) == 0
        assert ServerFile.objects.filter(server=second, state=ReplicaState.PENDING).count() == 9

        worker(second)  # back up: its queue kept the messages
        wait_until(lambda: verified(second) == 9, "the second server to catch up")
        assert len(server_verified_folders(server=second)) == 3

        # A copy corrupted on disk (same size) is found and repaired by anti-entropy.
        image = files.get(name="CPE.nbt", version__model="CX600")
        corrupt = stores[second.pk] / image.version.folder / image.name
        good = corrupt.read_bytes()
        corrupt.write_bytes(bytes(len(good)))
        server_check_store_task.delay(server_fqdn=second.fqdn, full=True)
        wait_until(lambda: corrupt.is_file() and corrupt.read_bytes() == good, "the repaired copy")
        wait_until(lambda: verified(second) == 9, "the repaired copy to be verified")

        # The central copy goes bad and the first server loses its copy: the new copy
        # fails verification, is never put in place, and is not served.
        lost = stores[first.pk] / image.version.folder / image.name
        lost.unlink()
        (settings.CENTRAL_STORE_DIR / image.storage_name).write_bytes(bytes(image.size))
        server_check_store_task.delay(server_fqdn=first.fqdn, full=False)
        wait_until(
            lambda: ServerFile.objects.get(server=first, file=image).state == ReplicaState.FAILED,
            "the failed verification",
        )
        assert not lost.exists()
        assert image.version.folder not in server_verified_folders(server=first)
        settings.SERVER_STORE_DIR = stores[first.pk]
        response = Client().get(f"/DeviceUpdateFiles_Int/{image.version.folder}/CPE.nbt")
        assert response.status_code == 404
    finally:
        store = settings.CENTRAL_STORE_DIR / "DeviceUpdateStore" / "UCPhone"
        for folder in store.glob(f"*/*/Rev-1/ENU/{version}"):
            shutil.rmtree(folder)
