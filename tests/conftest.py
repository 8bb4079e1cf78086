"""Shared test fixtures: service gating, users per role, real worker processes."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from django.conf import settings
from django.contrib.auth.models import Group, User

from portal.roles import ADMINISTRATORS, HELPDESK

PROJECT_DIR = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def _private_spool(settings: Any, tmp_path: Path) -> None:
    """Each test's phone records go to its own spool folder; tests write them to the
    database by hand (``spool_load_once()``, the loader's one batch)."""
    settings.PHONE_SPOOL_DIR = tmp_path / "spool"


def wait_until(condition: Callable[[], bool], what: str, *, seconds: float = 90) -> None:
    """Poll until ``condition`` holds; fail naming ``what`` at the deadline."""
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {seconds} s waiting for {what}")
        time.sleep(0.1)


def free_port() -> int:
    """A TCP port on 127.0.0.1 nothing listens on (for a server a test starts)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def services_required() -> bool:
    """In CI (DEVICEUPDATE_TEST_SERVICES=required) a missing service fails the test."""
    return os.environ.get("DEVICEUPDATE_TEST_SERVICES", "") == "required"


def missing_service(reason: str) -> None:
    if services_required():
        pytest.fail(f"required service missing: {reason}")
    pytest.skip(reason)


@pytest.fixture
def postgres() -> None:
    """The test runs on PostgreSQL (DATABASE_URL set to a postgres:// URL)."""
    if settings.DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql":
        missing_service("needs PostgreSQL: set DATABASE_URL=postgres://...")


@pytest.fixture
def redis_url() -> str:
    """A reachable Redis server (REDIS_URL)."""
    url = os.environ.get("REDIS_URL", "")
    if not url:
        missing_service("needs Redis: set REDIS_URL=redis://...")
    import redis

    try:
        redis.Redis.from_url(url, socket_connect_timeout=2).ping()
    except redis.RedisError as error:
        missing_service(f"Redis at {url} does not answer: {error}")
    return url


@pytest.fixture
def debian_tool() -> Callable[[str], str]:
    """Path of a Debian tool the test needs (skips, or fails in CI, when missing)."""

    def find(name: str) -> str:
        path = shutil.which(name)
        if path is None:
            missing_service(f"needs the Debian tool {name!r} (apt-get install)")
        assert path is not None
        return path

    return find


def _make_user(username: str, group: str | None, *, is_staff: bool = True) -> User:
    user = User.objects.create_user(username=username, password="correct horse battery")
    user.is_staff = is_staff
    user.save()
    if group is not None:
        user.groups.add(Group.objects.get(name=group))
    return user


@pytest.fixture
def administrator(db: None) -> User:
    return _make_user("ada", ADMINISTRATORS)


@pytest.fixture
def helpdesk(db: None) -> User:
    return _make_user("hal", HELPDESK)


def database_url_for_subprocess() -> str:
    """A URL for the database the tests use, for worker processes they start."""
    database = settings.DATABASES["default"]
    if database["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{database['NAME']}"
    user = database.get("USER") or ""
    password = f":{database['PASSWORD']}" if database.get("PASSWORD") else ""
    credentials = f"{user}{password}@" if user else ""
    return (
        f"postgres://{credentials}{database.get('HOST') or '127.0.0.1'}:"
        f"{database.get('PORT') or 5432}/{database['NAME']}"
    )


@pytest.fixture
def start_worker(tmp_path: Path) -> Iterator[Callable[..., subprocess.Popen[bytes]]]:
    """Start real `celery worker` processes; they are stopped (SIGTERM) after the test.

    ``app`` is the Celery app module: a test may name one that wraps the project's.
    """
    processes: list[subprocess.Popen[bytes]] = []
    logs: list[Path] = []

    def start(
        *, queues: list[str], broker_url: str, app: str = "deviceupdate", **extra_env: str
    ) -> subprocess.Popen[bytes]:
        env = dict(os.environ)
        env.update(
            DATABASE_URL=database_url_for_subprocess(),
            CELERY_BROKER_URL=broker_url,
            DEVICEUPDATE_DATA_DIR=str(settings.DATA_DIR),
            **extra_env,
        )
        log_path = tmp_path / f"worker-{uuid.uuid4().hex[:8]}.log"
        logs.append(log_path)
        with log_path.open("wb") as log:  # the child keeps its own copy of the file
            process = subprocess.Popen(
                [
                    sys.executable, "-m", "celery", "-A", app, "worker",
                    "--pool", "solo", "--loglevel", "INFO", "--without-gossip",
                    "--without-mingle", "--queues", ",".join(queues),
                ],
                cwd=PROJECT_DIR,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )  # fmt: skip
        processes.append(process)
        return process

    yield start
    for process in processes:
        process.terminate()
    for process in processes:
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    for log_path in logs:
        # Shown by pytest only when the test failed: what the worker said.
        print(f"--- {log_path.name}\n{log_path.read_text(errors='replace')[-4000:]}")


@pytest.fixture
def rollout_mail_at_once() -> Iterator[None]:
    """The rollout e-mail task, queued after the commit, runs at once in this process
    (no worker), so a test sees the e-mail the worker would send."""
    from portal.tasks import rollout_notify_task

    def run(**kwargs: Any) -> None:
        rollout_notify_task(**kwargs)

    with mock.patch.object(rollout_notify_task, "delay", side_effect=run):
        yield
