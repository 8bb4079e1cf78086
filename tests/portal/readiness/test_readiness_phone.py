"""Check 4, a synthetic phone, through the project's nginx (HTTP, HTTPS and external
listeners with the test CA's certificate) in front of the live service."""

from __future__ import annotations

import hashlib
import io
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.core.management import call_command
from django.utils import timezone
from pytest_django.fixtures import Settings
from pytest_django.live_server_helper import LiveServer

from phones.decision import decision_tables
from portal.choices import ReplicaState, UpdateFileRole
from portal.models import (
    DeviceUpdateRule,
    Pool,
    Server,
    ServerFile,
    UpdateFile,
    UpdateVersion,
)
from portal.readiness.base import CheckResult, Status
from portal.readiness.phone import phone_checks
from tests.conftest import free_port
from tests.deploy.servers import Listeners, start_tls_nginx, stop
from tests.deploy.tls import Pki

pytestmark = pytest.mark.django_db(transaction=True)

FOLDER = "UCPhone/Polycom/CX600/Rev-1/ENU/4.0.7577.4387/CPE"
IMAGE = hashlib.shake_256(b"readiness image").digest(3 * 1024 * 1024 + 17)


@pytest.fixture
def approved(pool: Pool, settings: Settings, tmp_path: Path) -> UpdateFile:
    """4.0.7577.4387 approved in the pool, its image verified on this server's store."""
    settings.SERVER_STORE_DIR = tmp_path / "store"
    (settings.SERVER_STORE_DIR / FOLDER).mkdir(parents=True)
    (settings.SERVER_STORE_DIR / FOLDER / "CPE.nbt").write_bytes(IMAGE)
    classed = {
        "device_type": "UCPhone", "brand": "Polycom", "model": "CX600",
        "revision": "Rev-1", "locale": "ENU", "update_type": "CPE",
    }  # fmt: skip
    version = UpdateVersion.objects.create(
        **classed, version="4.0.7577.4387", folder=FOLDER,
        rule_id="2de8cbf6-8a1e-4bc0-9d9e-0b2b5a1c1f11", signer="CN=Test", catalog_digest="sha256",
    )  # fmt: skip
    image = UpdateFile.objects.create(
        version=version, name="CPE.nbt", role=UpdateFileRole.IMAGE, size=len(IMAGE),
        sha256=hashlib.sha256(IMAGE).hexdigest(),
        storage_name=f"DeviceUpdateStore/{FOLDER}/CPE.nbt",
    )  # fmt: skip
    ServerFile.objects.create(
        server=pool.servers.get(), file=image, state=ReplicaState.VERIFIED,
        verified_at=timezone.now(),
    )  # fmt: skip
    DeviceUpdateRule.objects.create(pool=pool, approved_version="4.0.7577.4387", **classed)
    return image


@pytest.fixture
def service(
    pool: Pool, approved: UpdateFile, live_server: LiveServer, pki: Pki, settings: Settings,
    tmp_path: Path,
) -> Iterator[Listeners]:  # fmt: skip
    """nginx's three listeners before the live service, named as DNS (dnsmasq) says."""
    settings.ALLOWED_HOSTS = [".example.org"]
    (tmp_path / "downloads").mkdir()
    settings.DOWNLOAD_ACCESS_LOG = tmp_path / "downloads" / "downloads.log"
    decision_tables.reset()
    listeners, process = start_tls_nginx(
        tmp_path / "nginx", pki, live_server.url.removeprefix("http://")
    )
    settings.READINESS_INTERNAL_HTTP_URL = f"http://pool01.example.org:{listeners.http}"
    settings.READINESS_INTERNAL_HTTPS_URL = f"https://pool01.example.org:{listeners.https}"
    settings.READINESS_EXTERNAL_HTTPS_URL = f"https://web.example.org:{listeners.external}"
    yield listeners
    stop(process)
    decision_tables.reset()


def test_the_synthetic_phone_is_answered_refused_outside_and_downloads_its_image(
    service: Listeners,
) -> None:
    http = f"http://pool01.example.org:{service.http}"
    https = f"https://pool01.example.org:{service.https}"
    external = f"https://web.example.org:{service.external}"
    assert phone_checks(domains=["example.org"], timeout=20) == [
        CheckResult(
            "phone", f"internal HTTP update check {http}", Status.PASS,
            "answered 200 with a <Response>",
        ),
        CheckResult(
            "phone", f"internal HTTPS update check {https}", Status.PASS,
            "answered 200 with a <Response>",
        ),
        CheckResult(
            "phone", f"external anonymous update check {external}", Status.PASS,
            "refused with 401 AnonymousNotSupported and a Basic challenge",
        ),
        CheckResult(
            "phone", f"ranged download {http}/DeviceUpdateFiles_Int/{FOLDER}/CPE.nbt",
            Status.PASS, f"206, {len(IMAGE)} bytes, SHA-256 matches",
        ),
    ]  # fmt: skip


def test_a_damaged_image_and_listeners_that_are_not_there_fail(
    service: Listeners, settings: Settings
) -> None:
    damaged = bytearray(IMAGE)
    damaged[1000] ^= 0xFF
    (settings.SERVER_STORE_DIR / FOLDER / "CPE.nbt").write_bytes(bytes(damaged))
    closed = free_port()
    settings.READINESS_INTERNAL_HTTPS_URL = f"https://pool01.example.org:{closed}"
    settings.READINESS_EXTERNAL_HTTPS_URL = f"https://web.example.org:{closed}"
    results = phone_checks(domains=["example.org"], timeout=20)
    assert [(r.status, r.subject.split(" http")[0]) for r in results] == [
        (Status.PASS, "internal HTTP update check"),
        (Status.FAIL, "internal HTTPS update check"),
        (Status.FAIL, "external anonymous update check"),
        (Status.FAIL, "ranged download"),
    ]
    assert results[1].detail.startswith(f"cannot connect to pool01.example.org:{closed}")
    digest = hashlib.sha256(damaged).hexdigest()
    assert results[3].detail == (
        f"{len(IMAGE)} bytes with SHA-256 {digest[:16]}..., expected {len(IMAGE)} bytes with "
        f"{hashlib.sha256(IMAGE).hexdigest()[:16]}..."
    )
    assert results[3].fix == (
        "re-sync this server's store (Servers > Re-sync) and check nginx's store path"
    )


def test_without_an_approved_image_the_download_is_a_warning(
    pool: Pool, settings: Settings
) -> None:
    closed = free_port()
    settings.READINESS_INTERNAL_HTTP_URL = f"http://pool01.example.org:{closed}"
    results = phone_checks(domains=["example.org"], timeout=5)
    assert results[-1] == CheckResult(
        "phone", "ranged download", Status.WARN,
        "no approved image verified on this pool to download",
        "import and approve a package, then run the check again",
    )  # fmt: skip


def test_a_deployment_with_everything_in_place_is_green(service: Listeners, pool: Pool) -> None:
    """Every check against real servers: dnsmasq, nginx with the test CA's certificate,
    chronyd named by the SRV record, the live service, a worker that answered. No
    directory is configured here (tests/directory/ checks it against slapd): its one
    line says so as a warning."""
    Server.objects.filter(pool=pool).update(worker_seen_at=timezone.now())
    out = io.StringIO()
    call_command("check_deployment", "--json", "--timeout", "20", stdout=out)
    report = json.loads(out.getvalue())
    assert [(r["check"], r["status"]) for r in report["results"]] == [
        ("dns", "PASS"),
        *[("certificates", "PASS")] * 8,
        ("time", "PASS"), ("time", "PASS"),
        *[("phone", "PASS")] * 4,
        ("pool", "PASS"), ("pool", "PASS"),
        ("directory", "WARN"),
    ]  # fmt: skip
    assert report["summary"] == {"PASS": 17, "WARN": 1, "FAIL": 0}


def test_a_check_that_runs_out_of_time_is_a_warning_not_a_failure(
    pool: Pool, settings: Settings
) -> None:
    closed = free_port()
    settings.READINESS_INTERNAL_HTTP_URL = f"http://pool01.example.org:{closed}"
    settings.READINESS_INTERNAL_HTTPS_URL = f"https://pool01.example.org:{closed}"
    settings.READINESS_EXTERNAL_HTTPS_URL = f"https://web.example.org:{closed}"
    results = phone_checks(domains=["example.org"], timeout=1e-9)
    assert [(r.status, r.detail, r.fix) for r in results[:3]] == [
        (
            Status.WARN, "the check ran out of its 1e-09 s",
            "run the check again, or give it more time (DEVICEUPDATE_CHECK_TIMEOUT_SECONDS)",
        )
    ] * 3  # fmt: skip
