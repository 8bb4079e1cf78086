"""deploy/prometheus against Debian's Prometheus: promtool accepts the scrape
configuration and the alert rules (and the rules' own unit tests pass), and a real
Prometheus on loopback scrapes a live gunicorn (deploy/gunicorn.conf.py, two worker
processes, multiprocess mode, the bearer token) and answers exact sums over the workers
through its HTTP API."""

from __future__ import annotations

import http.client
import json
import os
import shutil
import subprocess
import sys
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.conf import settings
from prometheus_client.mmap_dict import MmapedDict, mmap_key

from phones.services.fleet_metrics import fleet_metrics_compute
from portal.choices import ImportStatus
from portal.models import ImportJob
from tests.conftest import PROJECT_DIR, database_url_for_subprocess, free_port, wait_until
from tests.deploy.servers import stop, tool

RULES = PROJECT_DIR / "deploy" / "prometheus"
GUNICORN = PROJECT_DIR / "deploy" / "gunicorn.conf.py"
TOKEN = "metrics-token-" + "m" * 32
CHECK = (
    b'<?xml version="1.0" encoding="utf-8"?>\n<Request><DeviceType>UCPhone</DeviceType>'
    b"<MACAddress>00-04-F2-11-22-33</MACAddress><Vendor>Polycom</Vendor><Model>CX600</Model>"
    b"<Revision>Rev-1</Revision><Locale>ENU</Locale><Modules/></Request>"
)


def promtool(*args: str, cwd: Path) -> str:
    result = subprocess.run(
        [tool("promtool"), *args], cwd=cwd, capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout + result.stderr


def test_promtool_accepts_the_configuration_and_the_rules_and_their_tests(
    tmp_path: Path,
) -> None:
    for name in ("prometheus.yml", "alerts.yml", "alerts.test.yml"):
        shutil.copy(RULES / name, tmp_path / name)
    (tmp_path / "deviceupdate-metrics.token").write_text(TOKEN + "\n")

    config = promtool("check", "config", "prometheus.yml", cwd=tmp_path)
    rules = promtool("check", "rules", "alerts.yml", cwd=tmp_path)
    tests = promtool("test", "rules", "alerts.test.yml", cwd=tmp_path)

    assert "prometheus.yml is valid prometheus config file syntax" in config
    assert "SUCCESS: 6 rules found" in rules
    assert "SUCCESS" in tests


def request(
    port: int, method: str, path: str, body: bytes = b"", **headers: str
) -> tuple[int, bytes]:
    """One request on its own connection (so the two workers race to accept each)."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        connection.request(method, path, body=body or None, headers=headers)
        response = connection.getresponse()
        return response.status, response.read()
    except OSError:
        return 0, b""
    finally:
        connection.close()


@pytest.fixture
def gunicorn(tmp_path: Path) -> Iterator[tuple[int, Path]]:
    """gunicorn with the production configuration (two workers) on the test database,
    its multiprocess folder holding a stale file of a previous run; metrics by token only."""
    folder = tmp_path / "prometheus-multiproc"
    folder.mkdir()
    stale = MmapedDict(str(folder / "counter_1.db"))
    stale.write_value(
        mmap_key(
            "deviceupdate_update_checks", "deviceupdate_update_checks_total",
            ["channel", "outcome"], ["internal", "no_rule"], "",
        ),
        1000.0,
        0.0,
    )  # fmt: skip
    stale.close()
    port = free_port()
    env = dict(os.environ)
    env.update(
        DATABASE_URL=database_url_for_subprocess(),
        DEVICEUPDATE_DATA_DIR=str(settings.DATA_DIR),
        DEVICEUPDATE_SERVER_FQDN=settings.SERVER_FQDN,
        DEVICEUPDATE_AUDIT_FLUSH_THREAD="false",
        DEVICEUPDATE_METRICS_TOKEN=TOKEN,
        DEVICEUPDATE_METRICS_ALLOWED_CIDRS="none",
        PROMETHEUS_MULTIPROC_DIR=str(folder),
    )
    log_path = tmp_path / "gunicorn.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [
                sys.executable, "-m", "gunicorn", "--config", str(GUNICORN),
                "--bind", f"127.0.0.1:{port}", "deviceupdate.wsgi:application",
            ],
            cwd=PROJECT_DIR, env=env, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        wait_until(lambda: request(port, "GET", "/healthz")[0] in (200, 503), "gunicorn")
        yield port, folder
    finally:
        stop(process)
        print(log_path.read_text(errors="replace")[-4000:])  # shown when the test failed


@pytest.fixture
def prometheus(tmp_path: Path, gunicorn: tuple[int, Path]) -> Iterator[int]:
    """Debian's Prometheus on loopback scraping the gunicorn every second, with the
    alert rules loaded."""
    folder = tmp_path / "prometheus"
    folder.mkdir()
    shutil.copy(RULES / "alerts.yml", folder / "alerts.yml")
    (folder / "token").write_text(TOKEN + "\n")
    (folder / "prometheus.yml").write_text(
        json.dumps(
            {
                "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
                "rule_files": ["alerts.yml"],
                "scrape_configs": [
                    {
                        "job_name": "deviceupdate",
                        "authorization": {"type": "Bearer", "credentials_file": "token"},
                        "static_configs": [{"targets": [f"127.0.0.1:{gunicorn[0]}"]}],
                    }
                ],
            }
        )
    )
    port = free_port()
    process = subprocess.Popen(
        [
            tool("prometheus"), f"--config.file={folder / 'prometheus.yml'}",
            f"--storage.tsdb.path={folder / 'data'}", f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        wait_until(lambda: request(port, "GET", "/-/ready")[0] == 200, "prometheus to be ready")
        yield port
    finally:
        stop(process)


def query(port: int, expression: str) -> dict[str, float]:
    """The instant vector ``expression`` as {labels as text: value}."""
    status, body = request(
        port, "GET", "/api/v1/query?" + urllib.parse.urlencode({"query": expression})
    )
    assert status == 200, body
    answer = json.loads(body)
    return {
        ",".join(f"{k}={v}" for k, v in sorted(item["metric"].items())): float(item["value"][1])
        for item in answer["data"]["result"]
    }


@pytest.mark.django_db(transaction=True)
def test_prometheus_scrapes_the_sums_over_both_workers(
    gunicorn: tuple[int, Path], prometheus: int
) -> None:
    port, folder = gunicorn
    ImportJob.objects.create(
        actor_name="t", status=ImportStatus.QUEUED, package_name="p.cab", package_size=1,
        package_sha256="0" * 64,
    )  # fmt: skip
    fleet_metrics_compute()  # what beat does; the gunicorn shares this cache

    # Checks until both workers have answered some (each then has its own counter file).
    sent = 0

    def both_workers_counted() -> bool:
        nonlocal sent
        status, _ = request(port, "POST", "/RequestHandler/ucdevice.upx", CHECK, **{
            "Content-Type": "text/xml"
        })  # fmt: skip
        assert status == 200
        sent += 1
        return len(list(folder.glob("counter_*.db"))) == 2 and sent >= 10

    wait_until(both_workers_counted, "both workers to answer update checks")
    refused = request(port, "POST", "/RequestHandler/ucdevice.upx", b"<broken", **{
        "Content-Type": "text/xml"
    })  # fmt: skip
    without_token = request(port, "GET", "/metrics")
    with_token = request(port, "GET", "/metrics", Authorization=f"Bearer {TOKEN}")

    assert (refused[0], without_token, with_token[0]) == (400, (403, b"403 Forbidden\n"), 200)
    expected = {
        "channel=internal,outcome=no_rule": float(sent),
        "channel=internal,outcome=refused": 1.0,
    }

    def scraped() -> bool:
        return (
            query(prometheus, "sum by (channel, outcome) (deviceupdate_update_checks_total)")
            == expected
        )

    wait_until(scraped, f"Prometheus to scrape {sent} checks summed over both workers")
    assert query(prometheus, "sum by (code) (deviceupdate_phone_errors_total)") == {
        "code=InvalidRequest": 1.0
    }
    assert query(
        prometheus,
        'sum(deviceupdate_phone_request_duration_seconds_count{endpoint="update_check"})',
    ) == {"": float(sent + 1)}
    assert query(prometheus, "sum by (status) (deviceupdate_imports)") == {
        "status=queued": 1.0,
        "status=running": 0.0,
    }
    assert query(prometheus, "sum by (instance) (up)") == {f"instance=127.0.0.1:{port}": 1.0}
