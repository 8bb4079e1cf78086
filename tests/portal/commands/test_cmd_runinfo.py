"""`manage.py runinfo` (printed by `make run`): the mode, the URLs, and that this mode is
not for exposure without nginx in front."""

from __future__ import annotations

import io
import json

from django.core.management import call_command

EXPOSURE = (
    "for this machine only: not for phones or a network without nginx in front "
    "(manage.py nginx_config); slow clients hold up gunicorn on its own"
)


def test_runinfo_says_the_mode_is_not_for_exposure_without_nginx() -> None:
    out = io.StringIO()
    call_command("runinfo", "--base-url", "http://127.0.0.1:8080", stdout=out)
    lines = out.getvalue().splitlines()
    width = max(len(line.split("  ", 2)[1]) for line in lines)
    assert f"  {'exposure':<{width}}  {EXPOSURE}" in lines
    assert f"  {'health':<{width}}  http://127.0.0.1:8080/healthz" in lines


def test_runinfo_json_has_the_same_notice() -> None:
    out = io.StringIO()
    call_command("runinfo", "--json", stdout=out)
    assert json.loads(out.getvalue())["exposure"] == EXPOSURE
