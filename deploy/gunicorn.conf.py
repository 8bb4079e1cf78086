"""gunicorn settings shared by `make run` and production (`gunicorn -c deploy/gunicorn.conf.py`)."""

from __future__ import annotations

from typing import Any

# Phones keep connections short; threads let one worker answer while another waits on I/O.
workers = 2
threads = 4
graceful_timeout = 20
accesslog = "-"


def on_starting(server: Any) -> None:
    """gunicorn's own refusals (a URL past its limit) answer the phones' XML, not HTML."""
    from deviceupdate.gunicorn_errors import install

    install()
