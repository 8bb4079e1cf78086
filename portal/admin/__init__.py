"""The control panel: one module of admin pages per subdomain, all registered on import."""

from portal.admin import audit, log_config, publishers, rules, testdevices, topology

__all__ = ["audit", "log_config", "publishers", "rules", "testdevices", "topology"]
