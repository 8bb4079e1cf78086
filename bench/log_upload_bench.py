"""Benchmark: device log uploads (100 KB files) per second and MB/s, as a ratio to a
minimal Django view that receives and discards the same bodies, on the same gunicorn
configuration in the same run (target >= 0.7).

Every upload names a different file (a fleet uploading its logs), so each one is
streamed to disk, counted against the quota, moved into the log store and listed. The
same run also measures the store floor (bench/baseline_urls.py, ``/floor/``): a view that
only streams each body into a new file beside its final name and renames it, the least
any log store does. Service / floor is what the service adds; floor / discarding view
is what the machine's file system costs. The three are measured in turn, round after
round, after an unmeasured warm-up of each, and the medians are reported.

    apt-get install wrk
    .venv/bin/python bench/log_upload_bench.py [--size-kb 100] [--duration 5] [--rounds 7]
        [--connections 64] [--database-url postgres://...] [--tmp-dir /dev/shm]
"""

from __future__ import annotations

import argparse
import hashlib
import secrets
import shutil
import statistics
import subprocess
import tempfile
from pathlib import Path

from update_check_bench import (
    PROJECT,
    PYTHON,
    bench_env,
    free_port,
    run_wrk,
    start_gunicorn,
    wait_ready,
)


def wrk_script(data_dir: Path, size_kb: int, run: str, prefix: str = "") -> Path:
    """wrk posts the same body to a new file name each time (``run`` keeps the names of
    every run apart), from ten thousand phones; ``prefix`` goes before the path."""
    body = data_dir / "body.bin"
    body.write_bytes(hashlib.shake_256(b"log").digest(size_kb * 1024))
    script = data_dir / f"uploads-{run}.lua"
    script.write_text(
        f"""
local f = io.open("{body}", "rb")
local body = f:read("*all")
f:close()
local counter = 0
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/octet-stream"
request = function()
  counter = counter + 1
  local phone = counter % 10000
  local path = string.format(
    "{prefix}/RequestHandler/Files?type=DiagLog&name={run}-%d.txt&mac=0004F2%06X", counter, phone)
  return wrk.format(nil, path, nil, body)
end
"""
    )
    return script


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-kb", type=int, default=100)
    parser.add_argument("--duration", type=int, default=5, help="seconds per wrk run")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument(
        "--warmup", type=int, default=5, help="seconds of unmeasured load on each server first"
    )
    # With 16 keep-alive connections whole rounds came out at 0.2 or 1.0, most likely
    # from how the connections landed on the two workers; 64 spread more evenly.
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument(
        "--database-url",
        help="run both servers on this database (e.g. an empty PostgreSQL one) instead of "
        "SQLite in the private data directory",
    )
    parser.add_argument(
        "--tmp-dir",
        help="make the private data directory (database, log store) here, e.g. /dev/shm "
        "to take the disk out of the measurement",
    )
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("needs wrk (apt-get install wrk)")
    with tempfile.TemporaryDirectory(prefix="log-upload-bench-", dir=args.tmp_dir) as tmp:
        data_dir = Path(tmp)
        (data_dir / "secret").write_text(secrets.token_urlsafe(64))
        extra = {"DATABASE_URL": args.database_url} if args.database_url else {}
        subprocess.run(
            [PYTHON, "manage.py", "migrate", "--verbosity", "0"],
            cwd=PROJECT, env={**bench_env(data_dir), **extra}, check=True,
        )  # fmt: skip
        service_port, baseline_port = free_port(), free_port()
        service = start_gunicorn(data_dir, service_port, baseline=False, extra_env=extra)
        baseline = start_gunicorn(data_dir, baseline_port, baseline=True, extra_env=extra)

        def load(port: int, run: str, seconds: int, prefix: str = "") -> dict[str, float]:
            script = str(wrk_script(data_dir, args.size_kb, run, prefix))
            return run_wrk(port, script, seconds=seconds, connections=args.connections)

        try:
            wait_ready(service_port, service)
            wait_ready(baseline_port, baseline)
            # The first writes of a fresh process and data directory are slower than the
            # steady state a fleet sees; neither side is measured until both are warm.
            load(baseline_port, "warm-base", args.warmup)
            load(baseline_port, "warm-floor", args.warmup, prefix="/floor")
            load(service_port, "warm", args.warmup)
            ratios, floor_ratios, rounds = [], [], []
            for index in range(args.rounds):
                base = load(baseline_port, f"base{index}", args.duration)
                floor = load(baseline_port, f"floor{index}", args.duration, prefix="/floor")
                ours = load(service_port, f"r{index}", args.duration)
                ratios.append(ours["rps"] / base["rps"])
                floor_ratios.append((ours["rps"] / floor["rps"], floor["rps"] / base["rps"]))
                rounds.append((base, ours))
            stored = sum(1 for p in (data_dir / "DeviceUpdateLogs" / "Client").rglob("*.txt"))
            median = statistics.median(ratios)
            base, ours = rounds[ratios.index(median)] if median in ratios else rounds[-1]
            megabytes = args.size_kb / 1024
            print(f"rounds: {[round(r, 3) for r in ratios]}; files stored: {stored}")
            over_floor = statistics.median(a for a, _ in floor_ratios)
            floor_cost = statistics.median(b for _, b in floor_ratios)
            by_round = [(round(a, 2), round(b, 2)) for a, b in floor_ratios]
            print(
                f"service / store floor: {over_floor:.2f}, store floor / discarding view: "
                f"{floor_cost:.2f} (by round: {by_round})"
            )
            print(
                f"log uploads of {args.size_kb} KB / discarding view: {median:.2f} (target >= "
                f"0.7); {ours['rps']:.0f} uploads/s = {ours['rps'] * megabytes:.1f} MB/s vs "
                f"{base['rps']:.0f}/s = {base['rps'] * megabytes:.1f} MB/s; p50 "
                f"{ours['p50_ms']:.1f} vs {base['p50_ms']:.1f} ms, p99 {ours['p99_ms']:.1f} vs "
                f"{base['p99_ms']:.1f} ms; errors {ours['errors']:.0f} vs {base['errors']:.0f}"
            )
        finally:
            for process in (service, baseline):
                process.terminate()
                process.wait(timeout=30)


if __name__ == "__main__":
    main()
