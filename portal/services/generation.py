"""The decision generation: a token every change that alters what phones are offered
or may upload (rules, test devices, replicated copies, topology, log settings)
replaces after commit. Each web process keeps its decision table in memory and
rebuilds it when the token moves."""

from __future__ import annotations

import time
import uuid

from django.core.cache import cache
from django.db import transaction

GENERATION_KEY = "deviceupdate:decision-generation"


def decision_generation_bump() -> None:
    """After the current transaction commits, give the generation a new value.

    A fresh unique token rather than a counter: nothing can ever bring back a value a
    process already saw, even if the cache lost the key in between.
    """
    transaction.on_commit(
        lambda: cache.set(GENERATION_KEY, f"{time.time_ns()}-{uuid.uuid4().hex}", timeout=None)
    )


def decision_generation_current() -> str:
    value = cache.get(GENERATION_KEY)
    return str(value) if value is not None else "initial"
