"""Benchmark: update checks per second, as a ratio to an empty Django view, in one run.

A private data directory (SQLite, embedded defaults, production mode) holds 100,000
phones in the inventory, 200 device update rules with their verified copies, and 500
test devices. Two gunicorn servers run the same configuration (2 workers, 4 threads):
the service, and the same Django stack whose only view answers an empty 200
(bench/baseline_urls.py). ``wrk`` (one thread, keep-alive) posts a mix of update
checks to each, alternately, for ``--rounds`` rounds:

    70 % up to date, 20 % offered the approved version, 5 % no rule for their class,
    5 % test devices offered the pending version

(as in production the web processes append each check to their spool and the loader,
``manage.py phone_record_loader``, runs on the same machine throughout and writes the
database; its CPU counts: the machine is measured, not the web process alone). Reports
the median ratio (target >= 0.8) with p50/p99 latency, and the loader's lag when the
last round ends: the checks still waiting in the spool and how long until they are
written. Then a boot storm: 10,000 simulated phones
(``manage.py simulate_phones``, two processes, new connection per check) check within
60 s; 30 % of them are offered an update and download and verify it. Reports the
achieved rate and the errors (target: none).

    apt-get install wrk
    .venv/bin/python bench/update_check_bench.py [--devices 100000] [--rules 200]
        [--duration 15] [--connections 32] [--rounds 3] [--warmup 3] [--storm-phones 10000]
        [--storm-seconds 60] [--skip-storm] [--loader-interval 1]
        [--database-url postgres://postgres@127.0.0.1:5432/update_check_bench]

Without --database-url, SQLite in the private data directory. With it, PostgreSQL: the
database must not exist; the bench creates it and drops it when it ends.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import re
import secrets
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

PROJECT = Path(__file__).resolve().parent.parent
SERVER_FQDN = "fe-bench.example.org"
POOL_WEB_FQDN = "pool-bench.example.org"
APPROVED, OLD, PENDING = "4.0.7577.4387", "4.0.7577.4363", "4.0.7577.5000"
IMAGE_SIZE = 256 * 1024
BODIES = 2000
PYTHON = sys.executable


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


DATABASE_URL: str | None = None  # --database-url: PostgreSQL instead of SQLite


def bench_env(data_dir: Path, *, baseline: bool = False) -> dict[str, str]:
    """The environment of every process of the run: the private data directory, this
    server's name, production mode; no external database, broker or cache."""
    env = {
        name: value
        for name, value in os.environ.items()
        if name not in ("DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL")
        and not name.startswith("DEVICEUPDATE_")
    }
    settings_dir = data_dir / "py"
    settings_dir.mkdir(exist_ok=True)
    (settings_dir / "bench_baseline_settings.py").write_text(
        'from deviceupdate.settings import *  # noqa: F403\nROOT_URLCONF = "bench.baseline_urls"\n'
    )
    env.update(
        DEVICEUPDATE_DATA_DIR=str(data_dir),
        DEVICEUPDATE_SERVER_FQDN=SERVER_FQDN,
        DEVICEUPDATE_ENV="production",
        # Production start-up refuses to guess: the embedded parts are chosen explicitly.
        DATABASE_URL=DATABASE_URL or f"sqlite:///{data_dir / 'db.sqlite3'}",
        CELERY_BROKER_URL="filesystem://",
        DEVICEUPDATE_MAX_DOWNLOADS="1000",
        SECRET_KEY=(data_dir / "secret").read_text().strip(),
        ALLOWED_HOSTS="127.0.0.1,localhost",
        LOG_LEVEL="warning",
        PYTHONPATH=os.pathsep.join([str(PROJECT), str(settings_dir)]),
        DJANGO_SETTINGS_MODULE="bench_baseline_settings" if baseline else "deviceupdate.settings",
    )
    return env


def _django() -> None:
    sys.path.insert(0, str(PROJECT))
    import django

    django.setup()


def mac_of(index: int, brand: str) -> str:
    oui = "0004F2" if brand == "Polycom" else "00085D"
    return f"{oui}{index:06X}"


def populate(data_dir: Path, devices: int, rules: int) -> dict[str, Any]:
    """Migrate, then fill the inventory, the rules, their copies and test devices; write
    the request bodies for wrk. Runs in its own process (child mode)."""
    _django()
    import hashlib

    from django.conf import settings
    from django.core.management import call_command
    from django.utils import timezone

    from deviceupdate_devtools.demo import DEMO_UPDATES
    from phones.models import Device
    from portal.choices import ReplicaState, UpdateFileRole
    from portal.models import (
        DeviceUpdateRule,
        Pool,
        Server,
        ServerFile,
        TestDevice,
        UpdateFile,
        UpdateVersion,
    )

    call_command("migrate", verbosity=0)
    Pool.objects.update(internal_web_fqdn=POOL_WEB_FQDN)
    pool = Pool.objects.get()
    server = Server.objects.get(fqdn=SERVER_FQDN)
    now = timezone.now()
    classes = [(brand, model, rule_id) for brand, model, rule_id in DEMO_UPDATES] + [
        ("Polycom", f"CX{1000 + i}", uuid.uuid5(uuid.NAMESPACE_DNS, f"rule-{i}.bench"))
        for i in range(rules - len(DEMO_UPDATES))
    ]
    demo_models = {model for _, model, _ in DEMO_UPDATES}
    for number, (brand, model, rule_id) in enumerate(classes):
        with_pending = number % 4 == 0
        for version in (APPROVED, PENDING) if with_pending else (APPROVED,):
            folder = f"UCPhone/{brand}/{model}/Rev-1/ENU/{version}/CPE"
            stored = UpdateVersion.objects.create(
                device_type="UCPhone", brand=brand, model=model, revision="Rev-1",
                locale="ENU", version=version, update_type="CPE", folder=folder,
                rule_id=rule_id, signer="CN=Bench", catalog_digest="sha256",
            )  # fmt: skip
            image = hashlib.shake_256(folder.encode()).digest(IMAGE_SIZE)
            if model in demo_models:  # the boot storm downloads these for real
                (settings.SERVER_STORE_DIR / folder).mkdir(parents=True, exist_ok=True)
                (settings.SERVER_STORE_DIR / folder / "CPE.nbt").write_bytes(image)
            for name, role, size, digest in [
                ("CPE.nbt", UpdateFileRole.IMAGE, IMAGE_SIZE, hashlib.sha256(image).hexdigest()),
                ("CPE.cat", UpdateFileRole.CATALOG, 2000, "c" * 64),
            ]:
                row = UpdateFile.objects.create(
                    version=stored, name=name, role=role, size=size, sha256=digest,
                    storage_name=f"DeviceUpdateStore/{folder}/{name}",
                )  # fmt: skip
                ServerFile.objects.create(
                    server=server, file=row, state=ReplicaState.VERIFIED, verified_at=now
                )
        DeviceUpdateRule.objects.create(
            pool=pool, rule_id=rule_id, device_type="UCPhone", brand=brand, model=model,
            revision="Rev-1", locale="ENU", update_type="CPE", approved_version=APPROVED,
            pending_version=PENDING if with_pending else "", restore_version=OLD,
        )  # fmt: skip

    def device_class(index: int) -> tuple[str, str]:
        brand, model, _ = classes[index % len(classes)]
        return brand, model

    Device.objects.bulk_create(
        (
            Device(
                identity=f"MAC:{mac_of(i, device_class(i)[0])}",
                mac=mac_of(i, device_class(i)[0]),
                serial=f"BENCH{i:08d}",
                device_type="UCPhone",
                brand=device_class(i)[0],
                model=device_class(i)[1],
                revision="Rev-1",
                locale="ENU",
                installed={"CPE": APPROVED},
                targets={"CPE": APPROVED},
                state="up to date",
                first_seen=now,
                last_seen=now,
                last_channel="internal",
                last_server=SERVER_FQDN,
            )
            for i in range(1, devices + 1)
        ),
        batch_size=5000,
    )
    # Test devices: phones whose rule has a pending version (every fourth class).
    testers = [i for i in range(1, devices + 1) if (i % len(classes)) % 4 == 0][:500]
    TestDevice.objects.bulk_create(
        TestDevice(
            site=None,
            name=f"bench tester {i}",
            identifier_type="MACAddress",
            identifier=mac_of(i, device_class(i)[0]),
        )  # fmt: skip
        for i in testers
    )

    rng = random.Random(7)  # the same mix every run
    bodies = []
    for number in range(BODIES):
        kind = number % 20  # 14 up to date, 4 offered, 1 no rule, 1 test device
        index = rng.choice(testers) if kind == 19 else rng.randrange(1, devices + 1)
        brand, model = device_class(index)
        version = OLD if kind in (14, 15, 16, 17) else APPROVED
        if kind == 18:
            brand, model = "Polycom", f"UNKNOWN{number}"
        bodies.append(check_xml(mac_of(index, brand), brand, model, version))
    lua = data_dir / "checks.lua"
    lua.write_text(wrk_script(bodies))
    return {
        "lua": str(lua),
        "devices": Device.objects.count(),
        "rules": DeviceUpdateRule.objects.count(),
        "test_devices": TestDevice.objects.count(),
    }


def check_xml(mac: str, brand: str, model: str, version: str) -> str:
    return (
        '<?xml version="1.0" encoding="utf-8"?>\n<Request><DeviceType>UCPhone</DeviceType>'
        f"<MACAddress>{mac}</MACAddress><SerialNumber></SerialNumber><Vendor>{brand}</Vendor>"
        f"<Model>{model}</Model><Revision>Rev-1</Revision><Locale>ENU</Locale><Modules>"
        f"<Module><UpdateType>CPE</UpdateType><FileName>CPE.nbt</FileName>"
        f"<Version>{version}</Version><TimeStamp>2026-10-01T08:00:00Z</TimeStamp></Module>"
        "</Modules></Request>"
    )


def wrk_script(bodies: list[str]) -> str:
    """wrk posts the bodies in turn to the internal update check endpoint."""
    table = ",\n".join(f"[==[{body}]==]" for body in bodies)
    return f"""
local bodies = {{
{table}
}}
local count = #bodies
local i = 0
wrk.method = "POST"
wrk.headers["Content-Type"] = "text/xml; charset=utf-8"
request = function()
  i = i + 1
  return wrk.format(nil, "/RequestHandler/ucdevice.upx", nil, bodies[(i % count) + 1])
end
"""


def start_gunicorn(
    data_dir: Path, port: int, *, baseline: bool, extra_env: dict[str, str] | None = None
) -> subprocess.Popen[bytes]:
    name = "baseline" if baseline else "service"
    log = (data_dir / f"gunicorn-{name}.log").open("wb")
    env = {**bench_env(data_dir, baseline=baseline), **(extra_env or {})}
    return subprocess.Popen(
        [
            PYTHON, "-m", "gunicorn", "--bind", f"127.0.0.1:{port}", "--workers", "2",
            "--threads", "4", "--worker-class", "gthread", "--graceful-timeout", "20",
            # One listening socket per worker: the kernel spreads the connections, instead
            # of the first worker to wake taking all of wrk's keep-alive connections.
            "--reuse-port",
            "--log-level", "warning", "deviceupdate.wsgi:application",
        ],
        cwd=PROJECT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )  # fmt: skip


def wait_ready(port: int, process: subprocess.Popen[bytes]) -> None:
    import http.client

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"gunicorn on port {port} exited with {process.returncode}")
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            connection.request(
                "POST",
                "/RequestHandler/ucdevice.upx",
                body=check_xml("0004F2FFFFFE", "Polycom", "CX600", APPROVED),
                headers={"Content-Type": "text/xml"},
            )
            status = connection.getresponse().status
            connection.close()
            if status == 200:
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise SystemExit(f"gunicorn on port {port} did not answer within 60 s")


_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1000.0}


def _ms(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s)", text)
    if match is None:
        raise ValueError(f"unexpected wrk latency {text!r}")
    return float(match[1]) * _UNITS[match[2]]


def run_wrk(port: int, lua: str, *, seconds: int, connections: int) -> dict[str, float]:
    output = subprocess.run(
        [
            "wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", "--timeout", "10s",
            "-s", lua, f"http://127.0.0.1:{port}/",
        ],
        check=True, capture_output=True, text=True, timeout=seconds + 60,
    ).stdout  # fmt: skip
    rps = re.search(r"Requests/sec:\s+([\d.]+)", output)
    p50 = re.search(r"\s50%\s+(\S+)", output)
    p99 = re.search(r"\s99%\s+(\S+)", output)
    if rps is None or p50 is None or p99 is None:
        raise SystemExit(f"cannot read wrk's output:\n{output}")
    non_2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output)
    socket_errors = re.search(r"Socket errors: (.*)", output)
    errors = int(non_2xx[1]) if non_2xx else 0
    if socket_errors:
        errors += sum(int(n) for n in re.findall(r"\d+", socket_errors[1]))
    return {"rps": float(rps[1]), "p50_ms": _ms(p50[1]), "p99_ms": _ms(p99[1]), "errors": errors}


def boot_storm(data_dir: Path, port: int, phones: int, seconds: float) -> dict[str, Any]:
    """``phones`` phones check within ``seconds``: 70 % up to date, 30 % offered (they
    download and verify the image), from two simulator processes."""
    offered = phones * 3 // 10
    groups = [(1_000_000, phones - offered, APPROVED), (2_000_000, offered, OLD)]
    processes = [
        subprocess.Popen(
            [
                PYTHON,
                "manage.py",
                "simulate_phones",
                "--url",
                f"http://127.0.0.1:{port}",
                "--phones",
                str(count),
                "--first-index",
                str(first),
                "--firmware-version",
                version,
                "--rounds",
                "1",
                "--spread",
                str(seconds),
                "--concurrency",
                "64",
                "--round-timeout",
                str(seconds + 120),
                "--json",
            ],
            cwd=PROJECT,
            env=bench_env(data_dir),
            stdout=subprocess.PIPE,
            text=True,
        )  # fmt: skip
        for first, count, version in groups
    ]
    reports = []
    for process in processes:
        out, _ = process.communicate(timeout=seconds + 180)
        reports.append(json.loads(out[out.index("{") :]))
    rounds = [report["rounds"][0] for report in reports]
    checks = sum(r["checks"] for r in rounds)
    elapsed = max(r["seconds"] for r in rounds)
    return {
        "phones": phones,
        "checks": checks,
        "seconds": round(elapsed, 1),
        "checks_per_second": round(checks / elapsed, 1),
        "offers": sum(r["offers"] for r in rounds),
        "downloads_verified": sum(r["verified"] for r in rounds),
        "busy": sum(r["busy"] for r in rounds),
        "errors": sum(r["errors"] for r in rounds),
        "error_samples": [s for r in rounds for s in r["error_samples"]][:5],
        "latency_p50_ms": max(r["latency_p50_ms"] for r in rounds),
        "latency_p99_ms": max(r["latency_p99_ms"] for r in rounds),
    }


def start_loader(data_dir: Path, interval: float) -> subprocess.Popen[bytes]:
    """This server's loader, as supervisord starts it (writing at least every
    ``interval`` seconds, sooner when MaxLogCacheLimit bytes wait)."""
    log = (data_dir / "loader.log").open("wb")
    return subprocess.Popen(
        [PYTHON, "manage.py", "phone_record_loader", "--interval", str(interval)],
        cwd=PROJECT, env=bench_env(data_dir), stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip


def spool_waiting(data_dir: Path) -> int:
    """The records the spool holds that the loader has not written yet (its files past
    the positions the loader saved), read directly: no Django start-up in the way."""
    query = 'SELECT file, "offset", finished FROM phones_spoolposition WHERE server = '
    if DATABASE_URL:
        import psycopg

        with psycopg.connect(DATABASE_URL) as connection:
            rows = connection.execute(query + "%s", [SERVER_FQDN]).fetchall()
    else:
        import sqlite3

        with contextlib.closing(sqlite3.connect(data_dir / "db.sqlite3", timeout=30)) as db:
            rows = db.execute(query + "?", [SERVER_FQDN]).fetchall()
    saved = {name: (offset, bool(finished)) for name, offset, finished in rows}
    folder = data_dir / "servers" / SERVER_FQDN / "spool"
    waiting = 0
    for path in folder.glob("*.spool"):
        offset, finished = saved.get(path.name, (0, False))
        if finished:
            continue
        with contextlib.suppress(FileNotFoundError), path.open("rb") as handle:
            handle.seek(offset)
            waiting += handle.read().count(b"\n")
    return waiting


def loader_lag(data_dir: Path, loader: subprocess.Popen[bytes]) -> dict[str, Any]:
    """Right after the load: the records waiting, and the seconds until all are written."""
    started = time.monotonic()
    waiting = now = spool_waiting(data_dir)
    while now:
        if loader.poll() is not None:
            raise SystemExit(f"the loader exited with {loader.returncode}")
        if time.monotonic() - started > 600:
            raise SystemExit(f"the loader still has {now} records to write after 600 s")
        time.sleep(0.1)
        now = spool_waiting(data_dir)
    return {"waiting": waiting, "caught_up_seconds": round(time.monotonic() - started, 1)}


def create_database(url: str) -> None:
    """CREATE DATABASE for the run; refuses one that exists (the bench drops it after)."""
    import psycopg

    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    admin_url = parts._replace(path="/postgres").geturl()
    with psycopg.connect(admin_url, autocommit=True) as connection:
        if connection.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            raise SystemExit(f"the database {name!r} exists: give the bench a new name")
        connection.execute(f'CREATE DATABASE "{name}"')


def drop_database(url: str) -> None:
    import psycopg

    parts = urlsplit(url)
    admin_url = parts._replace(path="/postgres").geturl()
    with psycopg.connect(admin_url, autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{parts.path.lstrip("/")}" WITH (FORCE)')


def main() -> None:
    global DATABASE_URL
    DATABASE_URL = os.environ.get("BENCH_DATABASE_URL") or None
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        data_dir = Path(sys.argv[2])
        print(json.dumps(populate(data_dir, int(sys.argv[3]), int(sys.argv[4]))))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, default=100_000)
    parser.add_argument("--rules", type=int, default=200)
    parser.add_argument("--duration", type=int, default=15, help="seconds per wrk run")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--warmup", type=int, default=3, help="seconds of unmeasured load on each server first"
    )
    parser.add_argument("--storm-phones", type=int, default=10_000)
    parser.add_argument("--storm-seconds", type=float, default=60.0)
    parser.add_argument(
        "--service-env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="extra environment for the service's gunicorn only (experiments)",
    )
    parser.add_argument("--skip-storm", action="store_true")
    parser.add_argument(
        "--loader-interval", type=float, default=1.0,
        help="seconds between the loader's batches (LogFlushInterval; default 1)",
    )  # fmt: skip
    parser.add_argument(
        "--database-url", help="a PostgreSQL database the bench creates and drops (absent)"
    )
    args = parser.parse_args()
    if args.database_url:
        if urlsplit(args.database_url).scheme not in ("postgres", "postgresql"):
            raise SystemExit("--database-url takes a postgres:// URL")
        create_database(args.database_url)
        os.environ["BENCH_DATABASE_URL"] = DATABASE_URL = args.database_url
    try:
        run(args)
    finally:
        if args.database_url:
            drop_database(args.database_url)


def run(args: argparse.Namespace) -> None:
    extra_env = dict(item.split("=", 1) for item in args.service_env)
    if shutil.which("wrk") is None:
        raise SystemExit("needs wrk (apt-get install wrk)")
    with tempfile.TemporaryDirectory(prefix="update-check-bench-") as tmp:
        data_dir = Path(tmp)
        (data_dir / "secret").write_text(secrets.token_urlsafe(64))
        started = time.monotonic()
        populated = json.loads(
            subprocess.run(
                [PYTHON, __file__, "--child", str(data_dir), str(args.devices), str(args.rules)],
                check=True, capture_output=True, text=True, env=bench_env(data_dir),
            ).stdout.strip().splitlines()[-1]
        )  # fmt: skip
        print(f"populated in {time.monotonic() - started:.0f} s: {populated}", flush=True)
        service_port, baseline_port = free_port(), free_port()
        loader = start_loader(data_dir, args.loader_interval)
        service = start_gunicorn(data_dir, service_port, baseline=False, extra_env=extra_env)
        baseline = start_gunicorn(data_dir, baseline_port, baseline=True)
        try:
            wait_ready(service_port, service)
            wait_ready(baseline_port, baseline)
            lua = populated["lua"]
            for port in (baseline_port, service_port):  # warm both up
                run_wrk(port, lua, seconds=args.warmup, connections=args.connections)
            rounds: list[dict[str, Any]] = []
            for _ in range(args.rounds):
                base = run_wrk(
                    baseline_port, lua, seconds=args.duration, connections=args.connections
                )
                ours = run_wrk(
                    service_port, lua, seconds=args.duration, connections=args.connections
                )
                rounds.append(
                    {"baseline": base, "service": ours, "ratio": ours["rps"] / base["rps"]}
                )
                print(json.dumps(rounds[-1]), flush=True)
            lag = loader_lag(data_dir, loader)
            print(json.dumps({"loader_lag": lag}), flush=True)
            baseline.terminate()  # the storm has the machine to itself with the service
            baseline.wait(timeout=30)
            storm = (
                None
                if args.skip_storm
                else boot_storm(data_dir, service_port, args.storm_phones, args.storm_seconds)
            )
            storm_lag = None if args.skip_storm else loader_lag(data_dir, loader)
        finally:
            for process in (service, baseline, loader):
                if process.poll() is None:
                    process.terminate()
                    process.wait(timeout=30)
        ratio = statistics.median(r["ratio"] for r in rounds)
        last = sorted(rounds, key=lambda r: r["ratio"])[len(rounds) // 2]
        print(json.dumps({"rounds": rounds, "boot_storm": storm}, indent=2))
        database = "PostgreSQL" if DATABASE_URL else "SQLite"
        print(
            f"update checks / empty Django view (gunicorn 2 workers x 4 threads, {database}, "
            f"the loader running, {args.devices:,} devices, {args.rules} rules, "
            f"wrk -c{args.connections}): "
            f"{ratio:.3f} (target >= 0.8); median round: {last['service']['rps']:.0f} vs "
            f"{last['baseline']['rps']:.0f} req/s, p50 {last['service']['p50_ms']:.1f} ms vs "
            f"{last['baseline']['p50_ms']:.1f} ms, p99 {last['service']['p99_ms']:.1f} ms vs "
            f"{last['baseline']['p99_ms']:.1f} ms; errors "
            f"{sum(r['service']['errors'] + r['baseline']['errors'] for r in rounds)}"
        )
        caught_up = ratio * args.duration / (args.duration + lag["caught_up_seconds"])
        print(
            f"the same counting the loader's catch-up after the last round (as if it took "
            f"the round that long): {caught_up:.3f}"
        )
        print(
            f"loader lag at the end of the rounds: {lag['waiting']:,} checks waiting, all "
            f"written {lag['caught_up_seconds']} s later (loader interval {args.loader_interval} s)"
        )
        if storm is None:
            return
        print(
            f"boot storm: {storm['checks']:,} of {storm['phones']:,} phones checked in "
            f"{storm['seconds']} s ({storm['checks_per_second']}/s), {storm['offers']:,} offered "
            f"and {storm['downloads_verified']:,} images verified, {storm['errors']} errors "
            f"(target 0), p99 {storm['latency_p99_ms']} ms"
        )
        assert storm_lag is not None
        print(
            f"loader lag at the end of the storm: {storm_lag['waiting']:,} records waiting, "
            f"all written {storm_lag['caught_up_seconds']} s later"
        )


if __name__ == "__main__":
    main()
