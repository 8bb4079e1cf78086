"""No answered update check is lost to a killed process: a live gunicorn (four one-thread
workers) appends every check to its spool before answering, and a separate loader
process writes the spool to the test database.

Under a burst of checks one web worker is killed (``kill -9``), the loader is killed
mid-batch and restarted, the database is held locked for a while: after the loader
catches up the request audit holds exactly one row for every check answered 200, and
the inventory holds the last state of every phone.

A running loader follows the log settings without a restart: a MaxLogCacheLimit lowered
below what waits makes it write at its next poll.
"""

from __future__ import annotations

import http.client
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import psycopg
import pytest
from django.conf import settings
from django.contrib.auth.models import User
from pytest_django.fixtures import Settings

from phones.models import Device, RequestAudit
from phones.recorder import SPOOL_SUFFIX
from phones.services.spool_loader import spool_pending, spool_pending_records
from portal.models import AuditEntry
from portal.services.audit import Actor
from portal.services.log_config import log_config_set
from tests.conftest import PROJECT_DIR, database_url_for_subprocess, free_port, wait_until

pytestmark = pytest.mark.django_db(transaction=True)
CONFIG = PROJECT_DIR / "deploy" / "gunicorn.conf.py"
PHONES, CHECKS = 12, 40  # each phone checks CHECKS times in turn, with a new version
# The loader of the loss tests writes every 0.1 s whatever the log settings say.
FAST = ("--interval", "0.1", "--poll", "0.1")


def mac(phone: int) -> str:
    return f"0004F2{phone:06X}"


def version(check: int) -> str:
    return f"4.0.7577.{1000 + check}"


def body(phone: int, check: int) -> bytes:
    return (
        '<?xml version="1.0" encoding="utf-8"?>\n<Request><DeviceType>UCPhone</DeviceType>'
        f"<MACAddress>{mac(phone)}</MACAddress><SerialNumber></SerialNumber>"
        "<Vendor>Polycom</Vendor><Model>CX600</Model><Revision>Rev-1</Revision>"
        "<Locale>ENU</Locale><Modules><Module><UpdateType>CPE</UpdateType>"
        f"<FileName>CPE.nbt</FileName><Version>{version(check)}</Version>"
        "<TimeStamp>2026-10-01T08:00:00Z</TimeStamp></Module></Modules></Request>"
    ).encode()


def post_check(port: int, payload: bytes) -> int:
    """The status of one update check; 0 when the connection broke (a killed worker)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request(
            "POST", "/RequestHandler/ucdevice.upx", body=payload,
            headers={"Content-Type": "text/xml"},
        )  # fmt: skip
        response = conn.getresponse()
        response.read()
        return response.status
    except (OSError, http.client.HTTPException):
        return 0
    finally:
        conn.close()


def answers(port: int) -> bool:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
    try:
        conn.request("GET", "/healthz")
        return conn.getresponse().status in (200, 503)
    except OSError:
        return False
    finally:
        conn.close()


def children(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(part) for part in path.read_text().split()] if path.exists() else []


class Live:
    """The gunicorn and the loader processes of one test, on the test database."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.port = free_port()
        self.env = dict(os.environ)
        self.env.update(
            DATABASE_URL=database_url_for_subprocess(),
            DEVICEUPDATE_DATA_DIR=str(settings.DATA_DIR),
            DEVICEUPDATE_LOG_STORE_DIR=str(folder / "logs"),
            DEVICEUPDATE_SERVER_FQDN=settings.SERVER_FQDN,
            DEVICEUPDATE_SPOOL_DIR=str(settings.PHONE_SPOOL_DIR),
        )
        self.processes: list[subprocess.Popen[bytes]] = []
        self.logs: list[Path] = []

    def _start(self, name: str, command: list[str]) -> subprocess.Popen[bytes]:
        log_path = self.folder / f"{name}-{len(self.logs)}.log"
        self.logs.append(log_path)
        with log_path.open("wb") as log:
            process = subprocess.Popen(
                command, cwd=PROJECT_DIR, env=self.env, stdout=log, stderr=subprocess.STDOUT
            )
        self.processes.append(process)
        return process

    def web(self) -> subprocess.Popen[bytes]:
        process = self._start(
            "gunicorn",
            [
                sys.executable, "-m", "gunicorn", "--config", str(CONFIG), "--workers", "4",
                "--threads", "1", "--bind", f"127.0.0.1:{self.port}",
                "deviceupdate.wsgi:application",
            ],
        )  # fmt: skip
        wait_until(lambda: answers(self.port), "gunicorn to answer")
        return process

    def loader(self, options: tuple[str, ...] = FAST) -> subprocess.Popen[bytes]:
        """A loader with these options (none: as deployed, timed by the log settings)."""
        return self._start("loader", [sys.executable, "manage.py", "phone_record_loader", *options])

    def said(self, process: subprocess.Popen[bytes]) -> str:
        """What a process has written to its log so far."""
        return self.logs[self.processes.index(process)].read_text(errors="replace")

    def stop(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.kill()
                process.wait()
        for log_path in self.logs:  # shown when the test failed
            print(log_path.name, log_path.read_text(errors="replace")[-3000:])


@pytest.fixture
def live(tmp_path: Path, settings: Settings) -> Iterator[Live]:
    settings.DEVICE_LOG_DIR = tmp_path / "logs"
    running = Live(tmp_path)
    yield running
    running.stop()


def burst(port: int, during: Callable[[], None]) -> dict[str, list[int]]:
    """Every phone checks CHECKS times in turn (PHONES phones at once) while ``during``
    runs once a third of the checks are answered: each phone's statuses in order."""
    statuses: dict[str, list[int]] = {mac(phone): [] for phone in range(PHONES)}
    answered = threading.Semaphore(0)

    def phone(index: int) -> None:
        for check in range(CHECKS):
            statuses[mac(index)].append(post_check(port, body(index, check)))
            answered.release()

    with ThreadPoolExecutor(max_workers=PHONES) as pool:
        futures = [pool.submit(phone, index) for index in range(PHONES)]
        for _ in range(PHONES * CHECKS // 3):
            assert answered.acquire(timeout=60)
        during()
        for future in futures:
            future.result(timeout=120)
    return statuses


def assert_nothing_lost(statuses: dict[str, list[int]]) -> None:
    """Exactly one audit row per check answered 200 (a check whose connection broke may
    have one too, never two), and each phone's inventory row is its last check's."""
    wait_until(_loaded_all, "the loader to catch up", seconds=120)
    rows = Counter(
        (row["mac"], row["request_modules"][0]["version"])
        for row in RequestAudit.objects.filter(mac__in=statuses).values("mac", "request_modules")
    )
    answered = {
        (phone, version(check))
        for phone, codes in statuses.items()
        for check, code in enumerate(codes)
        if code == 200
    }
    broken = {
        (phone, version(check))
        for phone, codes in statuses.items()
        for check, code in enumerate(codes)
        if code != 200
    }
    assert set(rows.values()) == {1}
    assert answered <= set(rows)
    assert set(rows) - answered <= broken
    assert len(answered) >= PHONES * CHECKS - 4  # at most the killed worker's check failed
    last = {phone: max(v for p, v in rows if p == phone) for phone in statuses}
    inventory = dict(Device.objects.filter(mac__in=statuses).values_list("mac", "installed"))
    assert inventory == {phone: {"CPE": last[phone]} for phone in statuses}


def _loaded_all() -> bool:
    """Every spool line written (its position saved with its rows)."""
    return spool_pending_records() == 0


def test_a_killed_web_worker_loses_no_answered_check(live: Live) -> None:
    web = live.web()
    live.loader()
    victims: list[int] = []

    def kill_a_worker() -> None:
        victims.append(children(web.pid)[0])
        os.kill(victims[0], signal.SIGKILL)

    statuses = burst(live.port, kill_a_worker)
    assert_nothing_lost(statuses)
    # The killed worker's file was finished (nobody holds its lock) and deleted.
    wait_until(
        lambda: (
            not any(
                name.endswith(f"-{victims[0]}{SPOOL_SUFFIX}")
                for name in os.listdir(settings.PHONE_SPOOL_DIR)
            )
        ),
        "the killed worker's spool file to be deleted",
    )


def test_a_loader_killed_mid_batch_and_restarted_writes_each_check_once(live: Live) -> None:
    live.web()
    loaders = [live.loader()]
    # The loader is up once it has written a first check (another phone's).
    assert post_check(live.port, body(PHONES, 0)) == 200
    wait_until(lambda: RequestAudit.objects.count() == 1, "the loader to start writing")

    def kill_loaders() -> None:
        # Killed as soon as it has written something (it writes every 0.1 s while the
        # checks come), five times, each time restarted.
        for _ in range(5):
            before = RequestAudit.objects.count()
            wait_until(
                lambda: RequestAudit.objects.count() > before or _loaded_all(),  # noqa: B023
                "the loader to write",
            )
            if _loaded_all():
                break
            os.kill(loaders[-1].pid, signal.SIGKILL)
            loaders[-1].wait()
            loaders.append(live.loader())

    statuses = burst(live.port, kill_loaders)
    assert len(loaders) > 1  # killed at least once while it wrote
    assert_nothing_lost(statuses)


@contextmanager
def database_locked() -> Iterator[None]:
    """The database refuses the loader's writes: the tables locked by another session."""
    database = settings.DATABASES["default"]
    if database["ENGINE"].endswith("sqlite3"):
        locker = sqlite3.connect(database["NAME"], isolation_level=None, timeout=30)
        locker.execute("BEGIN IMMEDIATE")  # no other writer until it ends
        try:
            yield
        finally:
            locker.execute("ROLLBACK")
            locker.close()
    else:
        with psycopg.connect(database_url_for_subprocess()) as pg_locker:
            pg_locker.execute("LOCK TABLE phones_requestaudit, phones_device IN EXCLUSIVE MODE")
            yield
            pg_locker.rollback()


def test_the_spool_grows_while_the_database_is_unavailable_and_nothing_is_lost(
    live: Live,
) -> None:
    live.web()
    live.loader()
    with database_locked():
        statuses = burst(live.port, lambda: None)
        # Every check was answered although nothing could be written.
        assert sum(code == 200 for codes in statuses.values() for code in codes) == PHONES * CHECKS
        assert RequestAudit.objects.count() == 0
    assert_nothing_lost(statuses)


def test_a_running_loader_follows_a_lowered_cache_limit_without_a_restart(live: Live) -> None:
    """The loader as deployed (no ``--interval``: LogFlushInterval, 5 minutes; a look at
    the spool every second) holds the checks while MaxLogCacheLimit is large; the limit
    lowered below what waits, through the service of the Log settings page and of
    ``device_update_config set``, makes it write them without a restart."""
    actor = Actor.of_user(User.objects.create_user(username="ada"))
    log_config_set(scope="global", values={"max_log_cache_limit": 1_000_000}, actor=actor)
    live.web()
    loader = live.loader(options=())
    wait_until(
        lambda: (
            "writing the spool at least every 300 s (LogFlushInterval), sooner when 1000000 "
            "bytes wait" in live.said(loader)
        ),
        "the loader to start with the log settings in force",
    )
    few = 5
    assert [post_check(live.port, body(phone, 0)) for phone in range(few)] == [200] * few
    waiting = spool_pending().bytes
    assert (spool_pending_records(), RequestAudit.objects.count()) == (few, 0)
    # The negative check: three of the loader's polls (one a second), any of which would
    # have written the checks had it not held them for LogFlushInterval.
    time.sleep(3)
    assert (spool_pending_records(), RequestAudit.objects.count()) == (few, 0)

    log_config_set(scope="global", values={"max_log_cache_limit": waiting // 2}, actor=actor)
    wait_until(_loaded_all, "the running loader to write at the lowered limit", seconds=15)
    assert Counter(RequestAudit.objects.values_list("mac", flat=True)) == {
        mac(phone): 1 for phone in range(few)
    }
    assert dict(Device.objects.values_list("mac", "installed")) == {
        mac(phone): {"CPE": version(0)} for phone in range(few)
    }
    assert f"every 300 s (LogFlushInterval), sooner when {waiting // 2} bytes" in live.said(loader)
    assert list(
        AuditEntry.objects.filter(action="portal.log_config.changed").values_list(
            "actor_name", "changes"
        )
    ) == [("ada", {"max_log_cache_limit": [1_000_000, waiting // 2]})]
