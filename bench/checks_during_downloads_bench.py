"""Benchmark: update checks per second while 32 image downloads are in flight, as a
ratio to the same checks with no download, in the same run.

The service runs as in production on this machine: the project's nginx configuration
(deviceupdate.nginx.render_nginx_config) sends images straight from the store and
proxies update checks to gunicorn (2 workers, 4 threads), with the inventory and rules
of bench/update_check_bench.py (100,000 phones, 200 rules). ``wrk`` posts the same
request mix through nginx for ``--duration`` seconds, alternately with no download and
with ``--downloads`` curl transfers of a 256 MB image in flight (each limited to
``--rate``, as phones on a LAN; restarted when one ends). Reports the median ratio
(target >= 0.5) and what the downloads moved meanwhile.

    apt-get install wrk nginx curl
    .venv/bin/python bench/checks_during_downloads_bench.py [--devices 100000]
        [--downloads 32] [--rate 4M] [--duration 15] [--rounds 3] [--image-mb 256]
        [--warmup 3]
"""

from __future__ import annotations

import argparse
import io
import json
import os
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import update_check_bench as checks  # noqa: E402  (the same data, servers and client)
from download_bench import start_nginx  # noqa: E402  (the same private nginx)

IMAGE_MB = 256
IMAGE_PATH = f"UCPhone/Polycom/CX600/Rev-1/ENU/{checks.APPROVED}/CPE/Big.nbt"


def nginx_server_block(data_dir: Path, port: int, upstream_port: int) -> str:
    """The project's configuration, rendered with the bench's settings by ``manage.py
    nginx_config`` (which creates the download log's folder, as nginx needs)."""
    os.environ.update(checks.bench_env(data_dir))
    checks._django()
    from django.core.management import call_command

    rendered = io.StringIO()
    call_command(
        "nginx_config",
        listen=f"127.0.0.1:{port}",
        server_name="bench",
        upstream=f"127.0.0.1:{upstream_port}",
        stdout=rendered,
    )
    return rendered.getvalue()


class Downloads:
    """``count`` downloads kept in flight until stopped; each transfer stops after 5 s
    (counting what it moved) and starts again at once."""

    def __init__(self, url: str, count: int, rate: str) -> None:
        self.url, self.rate = url, rate
        self.bytes = 0
        self.failures = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._processes: list[subprocess.Popen[str]] = []
        self._threads = [threading.Thread(target=self._run, daemon=True) for _ in range(count)]

    def __enter__(self) -> Downloads:
        for thread in self._threads:
            thread.start()
        time.sleep(1.0)  # every transfer under way before the checks start
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        with self._lock:
            for process in self._processes:
                if process.poll() is None:
                    process.terminate()
        for thread in self._threads:
            thread.join(timeout=30)

    def _run(self) -> None:
        while not self._stop.is_set():
            process = subprocess.Popen(
                [
                    "curl", "--silent", "--output", "/dev/null", "--limit-rate", self.rate,
                    "--max-time", "5", "--write-out", "%{http_code} %{size_download}", self.url,
                ],
                stdout=subprocess.PIPE, text=True,
            )  # fmt: skip
            with self._lock:
                self._processes.append(process)
            out, _ = process.communicate()
            code, _, size = out.partition(" ")
            with self._lock:
                self._processes.remove(process)
                if self._stop.is_set():
                    return  # terminated by the bench, not a failure
                self.bytes += int(size or 0)
                if code != "200":
                    self.failures += 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, default=100_000)
    parser.add_argument("--rules", type=int, default=200)
    parser.add_argument("--downloads", type=int, default=32)
    parser.add_argument("--rate", default="4M", help="per download (curl --limit-rate)")
    parser.add_argument("--duration", type=int, default=15, help="seconds per wrk run")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--image-mb", type=int, default=IMAGE_MB, help="size of the image")
    parser.add_argument("--warmup", type=int, default=3, help="seconds of unmeasured checks first")
    args = parser.parse_args()
    for tool in ("wrk", "nginx", "curl"):
        if shutil.which(tool) is None:
            raise SystemExit(f"needs {tool} (apt-get install {tool})")
    with tempfile.TemporaryDirectory(prefix="checks-downloads-bench-") as tmp:
        data_dir = Path(tmp)
        (data_dir / "secret").write_text(secrets.token_urlsafe(64))
        populated = json.loads(
            subprocess.run(
                [sys.executable, checks.__file__, "--child", str(data_dir), str(args.devices),
                 str(args.rules)],
                check=True, capture_output=True, text=True, env=checks.bench_env(data_dir),
            ).stdout.strip().splitlines()[-1]
        )  # fmt: skip
        print(f"populated: {populated}", flush=True)
        app_port, nginx_port = checks.free_port(), checks.free_port()
        server_block = nginx_server_block(data_dir, nginx_port, app_port)
        from django.conf import settings

        image = settings.SERVER_STORE_DIR / IMAGE_PATH
        with image.open("wb") as out:
            for _ in range(args.image_mb // 16):
                out.write(os.urandom(16 * 1024 * 1024))
            out.write(os.urandom(args.image_mb % 16 * 1024 * 1024))
        service = checks.start_gunicorn(data_dir, app_port, baseline=False)
        nginx = start_nginx(data_dir / "nginx", server_block)
        try:
            checks.wait_ready(app_port, service)
            checks.wait_ready(nginx_port, service)
            lua = populated["lua"]
            url = f"http://127.0.0.1:{nginx_port}/DeviceUpdateFiles_Int/{IMAGE_PATH}"
            checks.run_wrk(nginx_port, lua, seconds=args.warmup, connections=args.connections)
            rounds: list[dict[str, Any]] = []
            for _ in range(args.rounds):
                quiet = checks.run_wrk(
                    nginx_port, lua, seconds=args.duration, connections=args.connections
                )
                with Downloads(url, args.downloads, args.rate) as downloads:
                    started, before = time.monotonic(), downloads.bytes
                    busy = checks.run_wrk(
                        nginx_port, lua, seconds=args.duration, connections=args.connections
                    )
                    elapsed = time.monotonic() - started
                    moved = downloads.bytes - before
                rounds.append(
                    {
                        "none": quiet,
                        "downloading": busy,
                        "ratio": busy["rps"] / quiet["rps"],
                        "download_mb_per_s": round(moved / elapsed / 1e6, 1),
                        "download_failures": downloads.failures,
                    }
                )
                print(json.dumps(rounds[-1]), flush=True)
        finally:
            for process in (nginx, service):
                process.terminate()
                process.wait(timeout=30)
        ratio = statistics.median(r["ratio"] for r in rounds)
        middle = sorted(rounds, key=lambda r: r["ratio"])[len(rounds) // 2]
        print(
            f"update checks with {args.downloads} downloads in flight / with none (nginx -> "
            f"gunicorn 2x4, {args.devices:,} devices): {ratio:.3f} (target >= 0.5); median "
            f"round: {middle['downloading']['rps']:.0f} vs {middle['none']['rps']:.0f} req/s, "
            f"p99 {middle['downloading']['p99_ms']:.1f} ms vs {middle['none']['p99_ms']:.1f} ms"
            f"; downloads in progress moved ~{middle['download_mb_per_s']} MB/s "
            f"(completed transfers only), failures "
            f"{sum(r['download_failures'] for r in rounds)}"
        )


if __name__ == "__main__":
    main()
