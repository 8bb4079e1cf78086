"""Host names of pools and servers, and the Celery queue of each server.

Kept free of Django imports: settings use it before apps are loaded.
"""

from __future__ import annotations

import re

_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")


def normalise_fqdn(value: str, *, strict: bool = False) -> str:
    """Lower-case a host name and drop a trailing dot.

    With ``strict`` the name must be a valid DNS host name (letters, digits and
    hyphens in labels of at most 63 characters, 253 in all); ``ValueError`` otherwise.
    """
    name = value.strip().lower().rstrip(".")
    if strict:
        labels = name.split(".")
        if not name or len(name) > 253 or not all(_LABEL.match(label) for label in labels):
            raise ValueError(f"{value!r} is not a valid host name")
    return name


def server_queue_name(fqdn: str) -> str:
    """The Celery queue consumed only by the worker of server ``fqdn``."""
    return f"server.{normalise_fqdn(fqdn)}"
