"""`import_device_update --wait` with a real worker process on the configured broker."""

from __future__ import annotations

import io
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import call_command

from deviceupdate_devtools.demo import demo_package_make
from portal.choices import ImportStatus
from portal.models import DeviceUpdateRule, ImportJob, Pool, Site, UpdateFile
from portal.services.audit import Actor

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_real_worker_imports_the_demo_package(
    tmp_path: Path, start_worker: Callable[..., subprocess.Popen[bytes]]
) -> None:
    # Transactional tests flush the database: build the topology this test needs.
    site = Site.objects.create(name="Integration")
    pool = Pool.objects.create(
        site=site, fqdn="pool-import.example.org", internal_web_fqdn="pool-import.example.org"
    )
    demo = demo_package_make(
        directory=tmp_path / "demo", version="9.9.1.1", actor=Actor.system("tests")
    )
    start_worker(queues=["imports"], broker_url=settings.CELERY_BROKER_URL)
    out = io.StringIO()
    try:
        call_command(
            "import_device_update", str(demo.path), "--pool", pool.fqdn, "--wait",
            "--timeout", "120", stdout=out,
        )  # fmt: skip
        job = ImportJob.objects.get()
        assert (job.status, job.error) == (ImportStatus.SUCCEEDED, "")
        assert sorted(DeviceUpdateRule.objects.values_list("model", "pending_version")) == [
            ("6725ip", "9.9.1.1"),
            ("CX600", "9.9.1.1"),
            ("CX700", "9.9.1.1"),
        ]
        assert UpdateFile.objects.count() == 9
        lines = out.getvalue().splitlines()
        assert lines[0] == (
            f"import #{job.pk} succeeded: {demo.path.name} sha256 {job.package_sha256}"
        )
        assert len(lines) == 4
    finally:
        store = settings.CENTRAL_STORE_DIR / "DeviceUpdateStore" / "UCPhone"
        for folder in store.glob("*/*/Rev-1/ENU/9.9.1.1"):
            shutil.rmtree(folder)
