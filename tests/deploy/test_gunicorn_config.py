"""A graceful gunicorn stop writes out the request audit the worker still holds."""

from __future__ import annotations

import runpy
from pathlib import Path

import pytest
from django.test import Client
from pytest_django.fixtures import Settings

from phones.models import RequestAudit
from phones.recorder import recorder

CONFIG = Path(__file__).resolve().parents[2] / "deploy" / "gunicorn.conf.py"


@pytest.mark.django_db
def test_worker_exit_flushes_the_buffered_audit(client: Client, settings: Settings) -> None:
    settings.PHONE_AUDIT_FLUSH_THREAD = False
    client.post("/RequestHandler/ucdevice.upx", data=b"<broken", content_type="text/xml")
    assert (recorder.pending(), RequestAudit.objects.count()) == (1, 0)
    config = runpy.run_path(str(CONFIG))
    config["worker_exit"](None, None)
    assert (recorder.pending(), RequestAudit.objects.count()) == (0, 1)
    assert (config["workers"], config["threads"]) == (2, 4)
