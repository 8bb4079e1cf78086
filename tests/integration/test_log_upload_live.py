"""Log uploads on a live gunicorn with four single-thread worker processes, on the
test database: uploads racing from different processes never pass the quota together,
and the loader lists what the workers stored within a second or two, also what they
stored just before a graceful stop."""

from __future__ import annotations

import http.client
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from django.conf import settings
from pytest_django.fixtures import Settings

from phones.models import DeviceLog, LogStoreUsage
from portal.services.audit import Actor
from portal.services.log_config import log_config_set
from tests.conftest import PROJECT_DIR, database_url_for_subprocess, free_port, wait_until

pytestmark = pytest.mark.django_db(transaction=True)
CONFIG = PROJECT_DIR / "deploy" / "gunicorn.conf.py"


def post(port: int, query: str, body: bytes) -> int:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        connection.request(
            "POST",
            f"/RequestHandler/Files?{query}",
            body=body,
            headers={"Content-Type": "application/octet-stream"},
        )
        return connection.getresponse().status
    finally:
        connection.close()


def answers(port: int) -> bool:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
    try:
        connection.request("GET", "/healthz")
        return connection.getresponse().status in (200, 503)
    except OSError:
        return False
    finally:
        # A slow start times out after connecting: the socket must not be left to the GC
        # (its ResourceWarning is an error here).
        connection.close()


Gunicorn = tuple[int, "subprocess.Popen[bytes]"]


@pytest.fixture
def start_gunicorn(tmp_path: Path, settings: Settings) -> Iterator[Callable[[], Gunicorn]]:
    """Start the production gunicorn configuration with four one-thread workers, and the
    loader, on the test database and a private log store; the test stops gunicorn
    gracefully (SIGTERM)."""
    settings.DEVICE_LOG_DIR = tmp_path / "logs"
    started: list[subprocess.Popen[bytes]] = []
    log_path = tmp_path / "gunicorn.log"

    def start() -> Gunicorn:
        port = free_port()
        env = dict(os.environ)
        env.update(
            DATABASE_URL=database_url_for_subprocess(),
            DEVICEUPDATE_DATA_DIR=str(settings.DATA_DIR),
            DEVICEUPDATE_LOG_STORE_DIR=str(settings.DEVICE_LOG_DIR),
            DEVICEUPDATE_SERVER_FQDN=settings.SERVER_FQDN,
            DEVICEUPDATE_SPOOL_DIR=str(settings.PHONE_SPOOL_DIR),
        )
        with log_path.open("wb") as log:
            process = subprocess.Popen(
                [
                    sys.executable, "-m", "gunicorn", "--config", str(CONFIG), "--workers", "4",
                    "--threads", "1", "--bind", f"127.0.0.1:{port}",
                    "deviceupdate.wsgi:application",
                ],
                cwd=PROJECT_DIR,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )  # fmt: skip
            started.append(process)
            started.append(
                subprocess.Popen(
                    [sys.executable, "manage.py", "phone_record_loader", "--poll", "0.2"],
                    cwd=PROJECT_DIR,
                    env=env,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )  # fmt: skip
            )
        wait_until(lambda: answers(port), "gunicorn to answer")
        return port, process

    yield start
    for process in started:
        if process.poll() is None:
            process.kill()
            process.wait()
    if log_path.exists():
        print(log_path.read_text(errors="replace")[-4000:])  # shown when the test failed


def test_racing_uploads_from_four_processes_stay_within_the_quota_and_are_listed(
    start_gunicorn: Callable[[], Gunicorn],
) -> None:
    log_config_set(scope="global", values={"log_store_quota": 450}, actor=Actor.system("t"))
    port, process = start_gunicorn()

    def one(index: int) -> int:
        return post(port, f"type=DiagLog&name=log{index}.txt&mac=0004F2{index:06X}", b"z" * 100)

    with ThreadPoolExecutor(max_workers=16) as pool:
        statuses = sorted(pool.map(one, range(16)))
    assert statuses == [201] * 4 + [507] * 12
    stored = sorted(p.name for p in Path(settings.DEVICE_LOG_DIR, "Client").rglob("*.txt"))
    assert len(stored) == 4
    assert Path(settings.DEVICE_LOG_DIR, ".usage").read_text() == f"{400:020d} {4:012d}\n"
    wait_until(lambda: DeviceLog.objects.count() == 4, "the four logs to be listed", seconds=15)
    assert sorted(DeviceLog.objects.values_list("name", flat=True)) == stored
    usage = LogStoreUsage.objects.get(server=settings.SERVER_FQDN)
    assert (usage.total_bytes, usage.files) == (400, 4)

    # Replacing a stored log with a smaller one fits; the graceful stop right after it
    # loses nothing (the record was in the spool before the answer).
    name = stored[0]
    index = int(name.removeprefix("log").removesuffix(".txt"))
    assert post(port, f"type=DiagLog&name={name}&mac=0004F2{index:06X}", b"y" * 10) == 201
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=30) == 0
    wait_until(lambda: DeviceLog.objects.get(name=name).size == 10, "the new log listed")
    usage.refresh_from_db()
    assert (usage.total_bytes, usage.files) == (310, 4)
