"""The embedded broker: kombu's filesystem transport, needing no server.

Producer and consumers share one folder under the data directory; fan-out (used by
Celery's remote control) goes through the control folder.
"""

from __future__ import annotations

from pathlib import Path


def filesystem_transport_options(broker_dir: Path) -> dict[str, str | bool]:
    """Transport options for ``filesystem://``; creates the folders."""
    folders = {name: broker_dir / name for name in ("queue", "processed", "control")}
    for folder in folders.values():
        folder.mkdir(parents=True, exist_ok=True)
    return {
        "data_folder_in": str(folders["queue"]),
        "data_folder_out": str(folders["queue"]),
        "processed_folder": str(folders["processed"]),
        "control_folder": str(folders["control"]),
        "store_processed": False,
    }
