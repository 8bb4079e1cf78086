"""gunicorn settings shared by `make run` and production (`gunicorn -c deploy/gunicorn.conf.py`)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

# Phones keep connections short; threads let one worker answer while another waits on I/O.
workers = 2
threads = 4
graceful_timeout = 20
accesslog = "-"


def metrics_dir() -> Path:
    """prometheus-client's multiprocess folder: $PROMETHEUS_MULTIPROC_DIR if set, else
    ``prometheus`` in the data directory (read as the settings read it)."""
    from deviceupdate.env import Env

    env = Env()
    base = Path(__file__).resolve().parent.parent
    data_dir = env.path("DEVICEUPDATE_DATA_DIR", Path("var"), base=base)
    return env.path("PROMETHEUS_MULTIPROC_DIR", data_dir / "prometheus", base=base)


def on_starting(server: Any) -> None:
    """gunicorn's own refusals (a URL past its limit) answer the phones' XML, not HTML;
    the metrics folder starts empty (a previous run's counters are not this run's) and
    is named to the workers before any of them imports prometheus-client."""
    from deviceupdate.gunicorn_errors import install

    install()
    folder = metrics_dir()
    folder.mkdir(parents=True, exist_ok=True)
    for stale in folder.glob("*.db"):
        stale.unlink()
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(folder)


def child_exit(server: Any, worker: Any) -> None:
    """A worker gone: its live gauges are dropped (its counters stay in the sums)."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)
