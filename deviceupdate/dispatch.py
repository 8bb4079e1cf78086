"""Queueing a Celery task by its name: how services start work on workers without
importing the task modules (the only import direction is tasks -> services).

The queue is never chosen here: ``deviceupdate.celery_routes`` routes by task name
(per-server tasks to ``server.<fqdn>``, imports to ``imports``). Arguments are keyword
primitives (IDs, names, numbers), serialised as JSON.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any, TypeAlias

from celery import Task
from django.db import transaction

from deviceupdate.celery import app

TaskArgument: TypeAlias = str | int | bool | None


def registered_task(task_name: str) -> Task[Any, Any]:
    """The task registered as ``task_name`` (``<module>.<function>``); an error if none."""
    # A web process has not necessarily imported the task modules (the worker's
    # autodiscovery does not run there): importing the module registers its tasks.
    module = task_name.rpartition(".")[0]
    if module:
        import_module(module)
    return app.tasks[task_name]


def enqueue(task_name: str, /, **kwargs: TaskArgument) -> None:
    """Queue the task once the current transaction commits (at once outside one), so a
    worker never sees rows that were rolled back or are not committed yet."""
    task = registered_task(task_name)  # a wrong name fails here, inside the transaction
    transaction.on_commit(lambda: task.delay(**kwargs))


def enqueue_now(task_name: str, /, **kwargs: TaskArgument) -> None:
    """Queue the task at once, even inside a transaction: only for work whose rows are
    already committed (a recovery job sending again what was lost)."""
    registered_task(task_name).delay(**kwargs)
