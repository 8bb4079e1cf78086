"""Benchmark: image download throughput through the project's nginx configuration, as a
ratio to nginx serving the same file as plain static content, in the same run.

Both nginx instances run on this machine with the same worker count; curl fetches the
file `--count` times with `--parallel` connections from each, alternately, for
`--rounds` rounds. Reports the median ratio (target >= 0.95).

    .venv/bin/python bench/download_bench.py [--mb 64] [--count 32] [--parallel 8] [--rounds 5]
"""

from __future__ import annotations

import argparse
import hashlib
import io
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PROJECT = Path(__file__).resolve().parent.parent
FOLDER = "UCPhone/Polycom/CX600/Rev-1/ENU/4.0.7577.4387/CPE"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def project_server_block(work: Path, store: Path, port: int) -> str:
    """The project's server block, rendered by ``manage.py nginx_config`` (which creates
    the download log's folder, as nginx needs) with a private data directory in ``work``:
    nothing of an earlier run or of the clone's own ``var/`` is read or written."""
    os.environ.update(
        DJANGO_SETTINGS_MODULE="deviceupdate.settings",
        DEVICEUPDATE_DATA_DIR=str(work / "data"),
        DEVICEUPDATE_SERVER_STORE_DIR=str(store),
        DEVICEUPDATE_MAX_DOWNLOADS="1000",
    )
    sys.path.insert(0, str(PROJECT))
    import django

    django.setup()
    from django.core.management import call_command

    rendered = io.StringIO()
    # The upstream is never reached: downloads never go to the application.
    call_command(
        "nginx_config",
        listen=f"127.0.0.1:{port}",
        server_name="bench",
        upstream="127.0.0.1:9",
        stdout=rendered,
    )
    return rendered.getvalue()


def static_server_block(store: Path, port: int) -> str:
    return f"""
server {{
    listen 127.0.0.1:{port};
    location / {{ root {store}; sendfile on; tcp_nopush on; }}
}}
"""


def start_nginx(prefix: Path, server_block: str) -> subprocess.Popen[bytes]:
    """A private nginx (one worker, its own prefix) around one server block."""
    prefix.mkdir(parents=True)
    (prefix / "server.conf").write_text(server_block)
    (prefix / "nginx.conf").write_text(
        f"""
user root;
worker_processes 1;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    client_body_temp_path {prefix}/body;
    proxy_temp_path {prefix}/proxy;
    fastcgi_temp_path {prefix}/fastcgi;
    uwsgi_temp_path {prefix}/uwsgi;
    scgi_temp_path {prefix}/scgi;
    include {prefix}/server.conf;
}}
"""
    )
    return subprocess.Popen(
        ["nginx", "-c", str(prefix / "nginx.conf"), "-p", str(prefix), "-g", "daemon off;"]
    )


def wait_for(port: int) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"nginx on port {port} did not start")


def fetch(url: str, count: int, parallel: int) -> float:
    started = time.perf_counter()
    subprocess.run(
        [
            "curl",
            "--silent",
            "--no-progress-meter",
            "--fail",
            "--parallel",
            "--parallel-max",
            str(parallel),
        ]
        + [item for _ in range(count) for item in (url, "-o", "/dev/null")],
        check=True,
    )
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=int, default=64)
    parser.add_argument("--count", type=int, default=32)
    parser.add_argument("--parallel", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    if shutil.which("nginx") is None:
        raise SystemExit("needs Debian's nginx (apt-get install nginx)")
    with tempfile.TemporaryDirectory(prefix="download-bench-") as tmp:
        work = Path(tmp)
        store = work / "store"
        (store / FOLDER).mkdir(parents=True)
        (store / FOLDER / "CPE.nbt").write_bytes(
            hashlib.shake_256(b"bench").digest(args.mb * 1024 * 1024)
        )
        ours_port, static_port = free_port(), free_port()
        ours = start_nginx(work / "ours", project_server_block(work, store, ours_port))
        static = start_nginx(work / "static", static_server_block(store, static_port))
        try:
            wait_for(ours_port)
            wait_for(static_port)
            ours_url = f"http://127.0.0.1:{ours_port}/DeviceUpdateFiles_Int/{FOLDER}/CPE.nbt"
            static_url = f"http://127.0.0.1:{static_port}/{FOLDER}/CPE.nbt"
            fetch(ours_url, 2, 2)
            fetch(static_url, 2, 2)  # warm the page cache and both servers
            ratios = []
            for _ in range(args.rounds):
                static_seconds = fetch(static_url, args.count, args.parallel)
                ours_seconds = fetch(ours_url, args.count, args.parallel)
                ratios.append(static_seconds / ours_seconds)
            total_mb = args.mb * args.count
            print(f"rounds: {[round(r, 3) for r in ratios]}")
            print(
                f"download throughput, project nginx / static nginx ({args.count} x "
                f"{args.mb} MB, {args.parallel} parallel): {statistics.median(ratios):.3f} "
                f"(target >= 0.95; static ~{total_mb / static_seconds:.0f} MB/s last round)"
            )
        finally:
            for process in (ours, static):
                process.terminate()
                process.wait(timeout=20)


if __name__ == "__main__":
    main()
