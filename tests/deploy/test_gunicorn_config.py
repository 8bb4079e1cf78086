"""A gunicorn worker holds no phone record in memory: each is in the spool before the
answer, so no stop, graceful or not, has anything to write out."""

from __future__ import annotations

import runpy
from pathlib import Path

import pytest
from django.test import Client
from pytest_django.fixtures import Settings

from phones.models import RequestAudit
from phones.services.spool_loader import spool_pending_records

CONFIG = Path(__file__).resolve().parents[2] / "deploy" / "gunicorn.conf.py"


@pytest.mark.django_db
def test_a_worker_holds_nothing_to_write_at_exit(client: Client, settings: Settings) -> None:
    client.post("/RequestHandler/ucdevice.upx", data=b"<broken", content_type="text/xml")
    assert (spool_pending_records(), RequestAudit.objects.count()) == (1, 0)
    config = runpy.run_path(str(CONFIG))
    assert "worker_exit" not in config
    assert (config["workers"], config["threads"]) == (2, 4)
