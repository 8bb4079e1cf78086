"""Every benchmark of bench/ runs, at a tiny size, as the README's performance table
runs it: ``python bench/<name>.py`` from the project folder, in a process of its own,
with nothing of the test session's environment (database, broker, data directory) and
nothing of an earlier run. Each test asserts only that the benchmark exited 0 and
printed its ratio line: the figures themselves are measured by running the benchmarks
at their full size, never judged here (no timing thresholds in tests).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
from django.conf import settings

PROJECT_DIR = Path(__file__).resolve().parents[2]
# A few hundred phones, a few MB, one round of a second or so: seconds each.
TINY_CHECKS = ["--devices", "300", "--rules", "10", "--duration", "1", "--connections", "4"]


def run_bench(script: str, *arguments: str) -> str:
    """Run ``bench/<script>`` as the README does; its output, or the test fails with it."""
    env = {
        name: value
        for name, value in os.environ.items()
        if name not in ("DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL", "DJANGO_SETTINGS_MODULE")
        and not name.startswith("DEVICEUPDATE_")
    }
    completed = subprocess.run(
        [sys.executable, f"bench/{script}", *arguments],
        cwd=PROJECT_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    output = completed.stdout + completed.stderr
    assert completed.returncode == 0, f"bench/{script} exited {completed.returncode}:\n{output}"
    return completed.stdout


# (script, tiny arguments, Debian tools it needs, the start of its ratio line)
BENCHMARKS = [
    pytest.param(
        "import_bench.py",
        ["--mb", "4", "--rounds", "1"],
        ["cabextract", "sha256sum"],
        r"import / floor \(cabextract \+ sha256sum\), [\d.]+ MB: [\d.]+x \(target <= 2x\)",
        id="import",
    ),
    pytest.param(
        "download_bench.py",
        ["--mb", "4", "--count", "4", "--parallel", "2", "--rounds", "1"],
        ["nginx", "curl"],
        r"download throughput, project nginx / static nginx \(4 x 4 MB, 2 parallel\): [\d.]+ ",
        id="download",
    ),
    pytest.param(
        "fanout_bench.py",
        ["--mb", "4", "--servers", "2", "--rounds", "1"],
        [],
        r"fan-out of 4 MB to 2 servers / one copy to one server: [\d.]+x \(target <= 1.5x; "
        r"local central store\)",
        id="fanout",
    ),
    pytest.param(
        "fanout_bench.py",
        ["--mb", "4", "--servers", "2", "--rounds", "1", "--s3"],
        [],
        r"fan-out of 4 MB to 2 servers / one copy to one server: [\d.]+x \(target <= 1.5x; "
        r"S3 central store \(SeaweedFS\)\)",
        id="fanout-s3",
    ),
    pytest.param(
        "update_check_bench.py",
        [*TINY_CHECKS, "--rounds", "1", "--warmup", "1"]
        + ["--storm-phones", "40", "--storm-seconds", "2"],
        ["wrk"],
        r"update checks / empty Django view \(.*\): [\d.]+ \(target >= 0.8\);[\s\S]*"
        r"^boot storm: \d+ of 40 phones checked",
        id="update-check",
    ),
    pytest.param(
        "update_check_bench.py",
        [*TINY_CHECKS, "--rounds", "1", "--warmup", "1", "--skip-storm"],
        ["wrk"],
        r"update checks / empty Django view \(.*\): [\d.]+ \(target >= 0.8\);",
        id="update-check-skip-storm",
    ),
    pytest.param(
        "update_check_steps.py",
        ["--devices", "300", "--rules", "10", "--loops", "1"],
        [],
        r"update check / empty view, throughput in one thread: [\d.]+$",
        id="update-check-steps",
    ),
    pytest.param(
        "metrics_bench.py",
        ["--loops", "1", "--workers", "2"],
        [],
        r"metrics of one update check / empty Django view request: [\d.]+$",
        id="metrics",
    ),
    pytest.param(
        "checks_during_downloads_bench.py",
        [*TINY_CHECKS, "--rounds", "1", "--warmup", "1"] + ["--downloads", "2", "--image-mb", "4"],
        ["wrk", "nginx", "curl"],
        r"update checks with 2 downloads in flight / with none \(.*\): [\d.]+ \(target >= 0.5\)",
        id="checks-during-downloads",
    ),
    pytest.param(
        "log_upload_bench.py",
        ["--size-kb", "10", "--duration", "1", "--rounds", "1", "--warmup", "1"]
        + ["--connections", "4", "--tmp-dir", "{tmp}"],
        ["wrk"],
        r"log uploads of 10 KB / discarding view: [\d.]+ \(target >= 0.7\)",
        id="log-upload",
    ),
    pytest.param(
        "directory_signin_bench.py",
        ["--rounds", "1"],
        ["slapd"],
        r"cached / uncached directory sign-in: [\d.]+$",
        id="directory-signin",
    ),
]


@pytest.mark.parametrize(("script", "arguments", "tools", "ratio_line"), BENCHMARKS)
def test_benchmark_runs_at_a_tiny_size(
    debian_tool: Callable[[str], str],
    tmp_path: Path,
    script: str,
    arguments: list[str],
    tools: list[str],
    ratio_line: str,
) -> None:
    for tool in tools:
        debian_tool(tool)
    output = run_bench(script, *(item.format(tmp=tmp_path) for item in arguments))
    assert re.search(f"^{ratio_line}", output, re.MULTILINE), output


def _postgres_url(name: str) -> str:
    database = settings.DATABASES["default"]
    user = quote(database.get("USER") or "postgres", safe="")
    password = f":{quote(database['PASSWORD'], safe='')}" if database.get("PASSWORD") else ""
    host = database.get("HOST") or "127.0.0.1"
    return f"postgres://{user}{password}@{host}:{database.get('PORT') or 5432}/{name}"


@pytest.fixture
def dashboard_database(postgres: None) -> Iterator[str]:
    """A PostgreSQL database of this test's own, beside the configured one: absent before
    the benchmark (it creates it) and dropped after it."""
    import psycopg

    name = f"{settings.DATABASES['default']['NAME']}_dashboard_smoke"
    with psycopg.connect(_postgres_url("postgres"), autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    yield _postgres_url(name)
    with psycopg.connect(_postgres_url("postgres"), autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_dashboard_benchmark_runs_at_a_tiny_size_on_postgresql(dashboard_database: str) -> None:
    output = run_bench(
        "dashboard_bench.py", "--phones", "300", "--rounds", "1", "--database-url",
        dashboard_database,
    )  # fmt: skip
    assert re.search(r"^created database \w+_dashboard_smoke$", output, re.MULTILINE), output
    assert re.search(
        r"^  rollout dashboard: \d+ ms, [\d.]+x the changelist", output, re.MULTILINE
    ), output


@pytest.fixture
def update_check_database(postgres: None) -> Iterator[str]:
    """A PostgreSQL database name of this test's own, absent (the benchmark creates and
    drops it)."""
    import psycopg

    name = f"{settings.DATABASES['default']['NAME']}_update_check_smoke"
    with psycopg.connect(_postgres_url("postgres"), autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    yield _postgres_url(name)
    with psycopg.connect(_postgres_url("postgres"), autocommit=True) as connection:
        exists = connection.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name])
        assert exists.fetchone() is None  # the benchmark dropped it
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_update_check_benchmark_runs_at_a_tiny_size_on_postgresql(
    debian_tool: Callable[[str], str], update_check_database: str
) -> None:
    debian_tool("wrk")
    output = run_bench(
        "update_check_bench.py", *TINY_CHECKS, "--rounds", "1", "--warmup", "1",
        "--skip-storm", "--database-url", update_check_database,
    )  # fmt: skip
    assert re.search(
        r"^update checks / empty Django view \(gunicorn 2 workers x 4 threads, PostgreSQL, "
        r"the loader running, .*\): [\d.]+ \(target >= 0.8\);",
        output,
        re.MULTILINE,
    ), output
    assert re.search(r"^loader lag at the end of the rounds: [\d,]+ checks waiting", output, re.M)
