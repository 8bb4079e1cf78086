"""Benchmark: what the metrics cost the phone path, and what a scrape costs.

In one process in prometheus-client's multiprocess mode (as under gunicorn), with the
production settings of a private data directory, it times per call:

- the baseline: a whole request through Django's WSGI handler to the empty view of
  bench/baseline_urls.py (what an update check is measured against elsewhere);
- the metrics work of one update check: its answer counted (one offered check: the
  check, its offer) and its duration observed in the histogram;
- one scrape of ``/metrics``'s body: every worker's files read and summed (``--workers``
  files, as many workers have served), the fleet snapshot read from the cache, the text
  rendered.

Every figure is in microseconds and as a ratio to the baseline request of the same run
(the machines are shared and noisy; absolute times are not stable).

    .venv/bin/python bench/metrics_bench.py [--loops 5] [--workers 4]
"""

from __future__ import annotations

import argparse
import json
import secrets
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from update_check_bench import PYTHON, bench_env  # noqa: E402
from update_check_steps import _environ, _per_call, _start_response  # noqa: E402


def measure(folder: Path, loops: int, workers: int) -> dict[str, float]:
    """Child mode (multiprocess folder set): every figure in microseconds per call."""
    import django

    django.setup()
    from django.core.handlers.wsgi import WSGIHandler
    from django.test.utils import override_settings
    from prometheus_client import generate_latest

    from deviceupdate.metrics import metrics_registry
    from phones.choices import Channel, Outcome
    from phones.decision import Decision, ModuleDecision
    from phones.metrics import REQUEST_DURATION, update_check_counted
    from phones.services.fleet_metrics import fleet_metrics_compute

    handler = WSGIHandler()
    body = b"<Request/>"

    def request(_: object) -> None:
        response = handler(_environ(body), _start_response)
        if response.status_code != 200:
            raise RuntimeError(f"status {response.status_code}")
        b"".join(response)
        response.close()

    module = ModuleDecision("CPE", "1.0", "rule", "2.0", Outcome.OFFERED, "offered")
    offered: Any = [object()]  # only its length is counted
    decision = Decision(server_known=True, test_device=False, offered=offered, modules=[module])
    timer = REQUEST_DURATION.labels("update_check")

    def count(_: object) -> None:
        with timer.time():
            update_check_counted(Channel.INTERNAL, decision)

    items = list(range(2000))
    figures: dict[str, float] = {}
    with override_settings(ROOT_URLCONF="bench.baseline_urls"):
        figures["request: empty Django view (baseline)"] = _per_call(loops, items, request)
    figures["metrics of one update check"] = _per_call(loops, items, count)

    # The other workers' files: copies of this one's, as if each had served the same.
    own = next(folder.glob("counter_*.db"))
    for number in range(1, workers):
        for path in folder.glob("*_*.db"):
            if path.name.endswith(own.name.split("_")[-1]):
                kind = path.name.rsplit("_", 1)[0]
                shutil.copy(path, folder / f"{kind}_{900000 + number}.db")
    fleet_metrics_compute()
    figures[f"scrape of {workers} workers' files"] = _per_call(
        loops, items[:50], lambda _: generate_latest(metrics_registry())
    )
    return figures


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        print(json.dumps(measure(Path(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]))))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--loops", type=int, default=5)
    parser.add_argument("--workers", type=int, default=4)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="metrics-bench-") as tmp:
        data_dir = Path(tmp)
        (data_dir / "secret").write_text(secrets.token_urlsafe(64))
        env = bench_env(data_dir)
        folder = data_dir / "prometheus"
        folder.mkdir()
        env["PROMETHEUS_MULTIPROC_DIR"] = str(folder)
        migrate = subprocess.run(
            [PYTHON, "manage.py", "migrate", "--verbosity", "0"],
            cwd=Path(__file__).resolve().parent.parent, env=env, capture_output=True, text=True,
            check=False,
        )  # fmt: skip
        if migrate.returncode:
            raise SystemExit(f"migrate failed:\n{migrate.stderr[-3000:]}")
        completed = subprocess.run(
            [PYTHON, __file__, "--child", str(folder), str(args.loops), str(args.workers)],
            check=False, capture_output=True, text=True, env=env,
        )  # fmt: skip
    if completed.returncode:
        raise SystemExit(f"the measuring process failed:\n{completed.stderr[-3000:]}")
    figures = json.loads(completed.stdout.strip().splitlines()[-1])
    baseline = figures["request: empty Django view (baseline)"]
    width = max(len(name) for name in figures)
    for name, micros in figures.items():
        print(f"{name:<{width}}  {micros:8.1f} us  {micros / baseline:6.3f}x the baseline request")
    cost = figures["metrics of one update check"]
    print(f"metrics of one update check / empty Django view request: {cost / baseline:.3f}")


if __name__ == "__main__":
    main()
