"""deploy/gunicorn.conf.py's metrics folder: under the data directory unless named, and
a worker's live gauges dropped when it exits (its counters stay in the sums)."""

from __future__ import annotations

import runpy
from pathlib import Path
from types import SimpleNamespace

import pytest

CONFIG = Path(__file__).resolve().parents[2] / "deploy" / "gunicorn.conf.py"


def test_the_folder_is_in_the_data_directory_unless_named(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    config = runpy.run_path(str(CONFIG))
    monkeypatch.setenv("DEVICEUPDATE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)
    assert config["metrics_dir"]() == tmp_path / "data" / "prometheus"
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path / "elsewhere"))
    assert config["metrics_dir"]() == tmp_path / "elsewhere"


def test_child_exit_drops_the_dead_workers_live_gauges_only(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    for name in ("gauge_livesum_4242.db", "gauge_livesum_4343.db", "counter_4242.db"):
        (tmp_path / name).write_bytes(b"")
    config = runpy.run_path(str(CONFIG))

    config["child_exit"](None, SimpleNamespace(pid=4242))

    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "counter_4242.db",
        "gauge_livesum_4343.db",
    ]
