"""Celery routing: which queue each task goes to, decided here and never at call sites."""

from __future__ import annotations

from typing import Any

from deviceupdate.topology_names import server_queue_name

# Tasks that must run on one particular server (they touch that server's own store or
# prove that server's worker is alive). Each takes a ``server_fqdn`` keyword argument.
PER_SERVER_TASKS = frozenset(
    {
        "portal.tasks.server_heartbeat_task",
        "portal.tasks.server_replicate_task",
        "portal.tasks.server_check_store_task",
        "portal.tasks.server_remove_unused_task",
        "phones.tasks.server_logs_retention_task",
        "phones.tasks.server_logs_clear_task",
        "phones.tasks.server_download_log_read_task",
    }
)
IMPORT_TASKS = frozenset({"portal.tasks.package_import_task"})


def route_task(name: str, args: Any, kwargs: Any, options: Any, task: Any = None, **kw: Any) -> Any:
    """Route per-server tasks to ``server.<fqdn>``, imports to ``imports``, the rest by default."""
    if name in PER_SERVER_TASKS:
        return {"queue": server_queue_name(kwargs["server_fqdn"])}
    if name in IMPORT_TASKS:
        return {"queue": "imports"}
    return None
