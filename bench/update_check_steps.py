"""Benchmark: what each step of an update check costs, per check, in one process.

The throughput benchmark (bench/update_check_bench.py) says how far the update check is
from an empty Django view; this one says where the difference goes. In a private data
directory populated as that benchmark does (smaller inventory), one process times, over
the same mix of request bodies:

- a whole request through Django's WSGI handler and middleware: the empty view of
  bench/baseline_urls.py (the baseline), a bare DRF ``APIView`` answering the same, and
  the update check itself;
- each step of the update check on its own: the parse, the decision (warm table), the
  recorder's ``record`` (the spool line built and appended), the rendering; and the
  loader's batch (``spool_load_once``, per record: paid by the loader process, not the
  web process, but on the same machine).

Every figure is reported in microseconds and as a ratio to the baseline request measured
in the same run (the machines are shared and noisy; absolute times are not stable).

    .venv/bin/python bench/update_check_steps.py [--devices 20000] [--rules 200] [--loops 5]
"""

from __future__ import annotations

import argparse
import io
import json
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from update_check_bench import PYTHON, bench_env, populate  # noqa: E402


def _environ(body: bytes) -> dict[str, Any]:
    return {
        "REQUEST_METHOD": "POST",
        "PATH_INFO": "/RequestHandler/ucdevice.upx",
        "SCRIPT_NAME": "",
        "QUERY_STRING": "",
        "CONTENT_TYPE": "text/xml; charset=utf-8",
        "CONTENT_LENGTH": str(len(body)),
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "8000",
        "REMOTE_ADDR": "10.1.2.3",
        "HTTP_HOST": "127.0.0.1",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(body),
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": True,
        "wsgi.multiprocess": True,
        "wsgi.run_once": False,
    }


def _start_response(status: str, headers: list[tuple[str, str]], *exc_info: Any) -> Any:
    return None


def _per_call(loops: int, items: list[Any], call: Callable[[Any], object]) -> float:
    """Median over ``loops`` passes of the mean time of one call, in microseconds."""
    for item in items[:200]:  # warm up
        call(item)
    passes = []
    for _ in range(loops):
        started = time.perf_counter()
        for item in items:
            call(item)
        passes.append((time.perf_counter() - started) / len(items) * 1e6)
    return statistics.median(passes)


def measure(data_dir: Path, loops: int) -> dict[str, float]:
    """Child mode, after ``populate``: every figure in microseconds per check."""
    from django.core.handlers.wsgi import WSGIHandler
    from django.test.utils import override_settings
    from django.utils import timezone

    from phones.choices import Channel
    from phones.decision import offer_for_request
    from phones.protocol import parse_update_check, render_response
    from phones.recorder import recorder
    from phones.services.records import CheckRecord
    from phones.services.spool_lines import spool_line
    from phones.services.spool_loader import spool_load_once

    bodies = [body.encode() for body in json.loads((data_dir / "bodies.json").read_text())]
    handler = WSGIHandler()

    def request(body: bytes) -> None:
        response = handler(_environ(body), _start_response)
        if response.status_code != 200:
            raise RuntimeError(f"status {response.status_code}")
        b"".join(response)
        response.close()

    figures: dict[str, float] = {}
    with override_settings(ROOT_URLCONF="bench.baseline_urls"):
        figures["request: empty Django view (baseline)"] = _per_call(loops, bodies, request)
    with override_settings(ROOT_URLCONF="bench_steps_urls"):
        figures["request: bare DRF APIView"] = _per_call(loops, bodies, request)
    figures["request: update check"] = _per_call(loops, bodies, request)
    spool_load_once()

    checks = [parse_update_check(body) for body in bodies]
    decisions = [offer_for_request(check=check) for check in checks]
    figures["step: parse"] = _per_call(loops, bodies, parse_update_check)
    figures["step: decision"] = _per_call(
        loops, checks, lambda check: offer_for_request(check=check)
    )
    figures["step: render"] = _per_call(loops, decisions, lambda d: render_response(d.offered))

    def record(pair: tuple[Any, Any]) -> None:
        check, decision = pair
        recorder.record(
            CheckRecord(
                created_at=timezone.now(),
                channel=Channel.INTERNAL,
                client_address="10.1.2.3",
                check=check,
                decision=decision,
                user="",
                outcome=decision.outcome,
                status=200,
                message="",
            )
        )

    pairs = list(zip(checks, decisions, strict=True))
    spool_load_once()
    figures["step: spool line built"] = _per_call(
        loops,
        pairs,
        lambda pair: spool_line(
            CheckRecord(
                created_at=timezone.now(), channel=Channel.INTERNAL, client_address="10.1.2.3",
                check=pair[0], decision=pair[1], user="", outcome=pair[1].outcome, status=200,
            ),
            "fe.example.org",
        ),
    )  # fmt: skip
    flushes = []
    records = []
    for _ in range(loops):
        started = time.perf_counter()
        for pair in pairs:
            record(pair)
        records.append((time.perf_counter() - started) / len(pairs) * 1e6)
        started = time.perf_counter()
        spool_load_once()
        flushes.append((time.perf_counter() - started) / len(pairs) * 1e6)
    figures["step: recorder.record (line built and appended)"] = statistics.median(records)
    figures["loader: one batch, per record (the loader process)"] = statistics.median(flushes)
    return figures


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        data_dir = Path(sys.argv[2])
        populated = populate(data_dir, int(sys.argv[3]), int(sys.argv[4]))
        bodies = _bodies_from_lua(Path(populated["lua"]))
        (data_dir / "bodies.json").write_text(json.dumps(bodies))
        print(json.dumps(measure(data_dir, int(sys.argv[5]))))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, default=20_000)
    parser.add_argument("--rules", type=int, default=200)
    parser.add_argument("--loops", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="update-check-steps-") as tmp:
        data_dir = Path(tmp)
        (data_dir / "secret").write_text(secrets.token_urlsafe(64))
        env = bench_env(data_dir)
        (data_dir / "py" / "bench_steps_urls.py").write_text(_BARE_DRF_URLS)
        completed = subprocess.run(
            [PYTHON, __file__, "--child", str(data_dir), str(args.devices), str(args.rules),
             str(args.loops)],
            check=False, capture_output=True, text=True, env=env,
        )  # fmt: skip
    if completed.returncode:
        raise SystemExit(f"the measuring process failed:\n{completed.stderr[-3000:]}")
    figures = json.loads(completed.stdout.strip().splitlines()[-1])
    baseline = figures["request: empty Django view (baseline)"]
    width = max(len(name) for name in figures)
    for name, micros in figures.items():
        print(f"{name:<{width}}  {micros:8.1f} us  {micros / baseline:5.2f}x the baseline request")
    check = figures["request: update check"]
    print(f"update check / empty view, throughput in one thread: {baseline / check:.3f}")


def _bodies_from_lua(lua: Path) -> list[str]:
    text = lua.read_text()
    return [part.split("]==]", 1)[0] for part in text.split("[==[")[1:]]


# A DRF view with no authentication, permission or throttle and nothing else to do:
# what DRF's standard dispatch costs by itself.
_BARE_DRF_URLS = """
from django.http import HttpResponse
from django.urls import re_path
from rest_framework.permissions import AllowAny
from rest_framework.views import APIView


class Bare(APIView):
    authentication_classes = []
    permission_classes = [AllowAny]
    throttle_classes = []

    def post(self, request):
        request._request.body
        return HttpResponse(b"", content_type="text/xml; charset=utf-8")


urlpatterns = [re_path(r"^", Bare.as_view())]
"""


if __name__ == "__main__":
    main()
