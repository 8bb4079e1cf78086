"""The control panel: one module of admin pages per subdomain, all registered on import."""

from portal.admin import (
    audit,
    fleet,
    imports,
    lockouts,
    log_config,
    publishers,
    replication,
    rollouts,
    rules,
    testdevices,
    topology,
    webhooks,
)

__all__ = [
    "audit",
    "fleet",
    "imports",
    "lockouts",
    "log_config",
    "publishers",
    "replication",
    "rollouts",
    "rules",
    "testdevices",
    "topology",
    "webhooks",
]
