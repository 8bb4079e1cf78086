"""The project's Celery app for a worker that halts mid-import at a known point: while
copying the file IMPORT_PAUSE_ON into the central store it writes the first MiB to the
temporary name, creates IMPORT_PAUSE_REACHED and waits for ever (until the test kills
it). Started with ``start_worker(app="tests.integration.paused_import_worker")``."""

from __future__ import annotations

import os
import threading
from pathlib import Path

from deviceupdate.celery import app
from portal.services import central_store

__all__ = ["app"]

_PAUSE_ON = os.environ["IMPORT_PAUSE_ON"]
_REACHED = Path(os.environ["IMPORT_PAUSE_REACHED"])
_original_copy = central_store._copy


def _copy_then_halt(source: Path, target: Path) -> tuple[int, str]:
    if source.name != _PAUSE_ON:
        return _original_copy(source, target)
    with open(source, "rb") as reader, open(target, "xb") as out:
        out.write(reader.read(1024 * 1024))
        out.flush()
        os.fsync(out.fileno())
    _REACHED.write_text(str(target))
    threading.Event().wait()  # the test's SIGKILL ends the process here
    raise AssertionError("unreachable")


central_store._copy = _copy_then_halt
