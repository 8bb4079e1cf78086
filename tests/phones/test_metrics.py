"""The phone path's counters: every answer counted once, under its fixed-word labels.

The counters are this process's (no multiprocess folder in the tests) and cumulative
across tests, so each test asserts the exact change it caused.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path

import pytest
from django.test import Client
from prometheus_client import REGISTRY
from pytest_django.fixtures import Settings

from phones import decision
from phones.metrics import DEFERRAL_REASONS
from portal.models import DeviceUpdateRule
from tests.phones.test_decision_rollouts import (
    SUNDAY_1AM_AUCKLAND,
    auckland_sunday_window,
    set_offer_cap,
)
from tests.phones.test_update_check import NOTHING, A, check, request_xml

pytestmark = pytest.mark.django_db

Labels = dict[str, str]
Reading = Callable[[], dict[tuple[str, tuple[tuple[str, str], ...]], float]]


def samples(*names: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of the named series now, by (name, labels)."""
    found = {}
    for metric in REGISTRY.collect():
        for sample in metric.samples:
            if sample.name in names:
                found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def changes(before: dict[tuple[str, tuple[tuple[str, str], ...]], float], *names: str) -> dict:
    """What moved since ``before``: {(name, labels): increase}."""
    after = samples(*names)
    return {
        (name, dict(labels).get("channel", ""), *sorted(v for k, v in labels if k != "channel")): (
            value - before.get((name, labels), 0.0)
        )
        for (name, labels), value in after.items()
        if value != before.get((name, labels), 0.0)
    }


CHECKS = "deviceupdate_update_checks_total"
OFFERS = "deviceupdate_offers_total"
DEFERRALS = "deviceupdate_deferrals_total"
ERRORS = "deviceupdate_phone_errors_total"
LATENCY = "deviceupdate_phone_request_duration_seconds_count"
ALL = (CHECKS, OFFERS, DEFERRALS, ERRORS, LATENCY)


@pytest.fixture(autouse=True)
def private_data_dir(settings: Settings, tmp_path: Path) -> None:
    settings.DATA_DIR = tmp_path  # the offer cap's counter file


def test_each_answer_kind_is_counted_once(client: Client, rule: DeviceUpdateRule) -> None:
    before = samples(*ALL)

    offered = check(client, request_xml(mac="00-04-F2-00-00-01"))
    up_to_date = check(client, request_xml(mac="00-04-F2-00-00-02", version=A))
    no_rule = check(client, request_xml(mac="00-04-F2-00-00-03").replace(b"CX600", b"CX700"))
    refused = check(client, b"<broken")

    assert [offered[1] != NOTHING, up_to_date, no_rule[1], refused[0]] == [
        True, (200, NOTHING), NOTHING, 400,
    ]  # fmt: skip
    assert changes(before, *ALL) == {
        (CHECKS, "internal", "offered"): 1.0,
        (CHECKS, "internal", "up_to_date"): 1.0,
        (CHECKS, "internal", "no_rule"): 1.0,
        (CHECKS, "internal", "refused"): 1.0,
        (OFFERS, "internal"): 1.0,
        (ERRORS, "", "InvalidRequest"): 1.0,
        (LATENCY, "", "update_check"): 4.0,
    }


def test_deferrals_are_counted_by_reason(
    client: Client, rule: DeviceUpdateRule, monkeypatch: pytest.MonkeyPatch
) -> None:
    set_offer_cap(1)
    auckland_sunday_window(rule.pool.site)
    monkeypatch.setattr(decision, "now", lambda: SUNDAY_1AM_AUCKLAND)  # the window is open
    before = samples(*ALL)
    first = check(client, request_xml(mac="00-04-F2-00-00-01"))
    capped = check(client, request_xml(mac="00-04-F2-00-00-02"))
    monkeypatch.setattr(decision, "now", lambda: SUNDAY_1AM_AUCKLAND - dt.timedelta(hours=1))
    closed = check(client, request_xml(mac="00-04-F2-00-00-03"))

    assert [first[1] != NOTHING, capped, closed] == [True, (200, NOTHING), (200, NOTHING)]
    assert changes(before, *ALL) == {
        (CHECKS, "internal", "offered"): 1.0,
        (CHECKS, "internal", "deferred"): 2.0,
        (OFFERS, "internal"): 1.0,
        (DEFERRALS, "", "offer_cap"): 1.0,
        (DEFERRALS, "", "maintenance_window"): 1.0,
        (LATENCY, "", "update_check"): 3.0,
    }
    assert set(DEFERRAL_REASONS.values()) == {"offer_cap", "maintenance_window"}


def test_an_external_refusal_counts_as_refused_with_its_code(client: Client) -> None:
    before = samples(*ALL)

    response = client.post(
        "/RequestHandlerExt/ucdevice.upx", data=request_xml(), content_type="text/xml"
    )

    assert response.status_code == 403
    assert changes(before, *ALL) == {
        (CHECKS, "external", "refused"): 1.0,
        (ERRORS, "", "NoSignedInUser"): 1.0,
        (LATENCY, "", "update_check"): 1.0,
    }


STORED = "deviceupdate_log_uploads_total"
REFUSED = "deviceupdate_log_upload_refusals_total"


def test_log_uploads_are_counted_stored_or_refused_by_code(
    client: Client, settings: Settings, tmp_path: Path
) -> None:
    settings.DEVICE_LOG_DIR = tmp_path / "logs"
    names = (STORED, REFUSED, ERRORS, LATENCY)
    before = samples(*names)

    def upload(query: str) -> int:
        return client.post(
            f"/RequestHandler/Files?{query}", data=b"log", content_type="application/octet-stream"
        ).status_code

    statuses = [
        upload("type=DiagLog&name=a.txt&mac=0004F2112233"),
        upload("type=Nope&name=a.txt&mac=0004F2112233"),
        upload("type=DiagLog&name=../a.txt&mac=0004F2112233"),
    ]

    assert statuses == [201, 415, 400]
    assert changes(before, *names) == {
        (STORED, "internal"): 1.0,
        (REFUSED, "internal", "UnsupportedLogType"): 1.0,
        (REFUSED, "internal", "InvalidRequest"): 1.0,
        (ERRORS, "", "UnsupportedLogType"): 1.0,
        (ERRORS, "", "InvalidRequest"): 1.0,
        (LATENCY, "", "log_upload"): 3.0,
    }


DOWNLOADS = "deviceupdate_downloads_total"


def test_downloads_are_counted_by_status(
    client: Client, settings: Settings, tmp_path: Path
) -> None:
    settings.SERVER_STORE_DIR = tmp_path
    (tmp_path / "CPE.nbt").write_bytes(b"x" * 10)
    names = (DOWNLOADS, ERRORS, LATENCY)
    before = samples(*names)

    whole = client.get("/DeviceUpdateFiles_Int/CPE.nbt")
    body = b"".join(whole.streaming_content)  # type: ignore[attr-defined]
    whole.close()
    part = client.get("/DeviceUpdateFiles_Int/CPE.nbt", HTTP_RANGE="bytes=0-3")
    part_body = b"".join(part.streaming_content)  # type: ignore[attr-defined]
    part.close()
    missing = client.get("/DeviceUpdateFiles_Int/none.nbt")

    assert (body, part_body, missing.status_code) == (b"x" * 10, b"xxxx", 404)
    assert changes(before, *names) == {
        (DOWNLOADS, "", "200"): 1.0,
        (DOWNLOADS, "", "206"): 1.0,
        (DOWNLOADS, "", "404"): 1.0,
        (ERRORS, "", "NotFound"): 1.0,
        (LATENCY, "", "download"): 3.0,
    }


def test_a_check_that_fails_midway_counts_once_as_refused(
    client: Client, rule: DeviceUpdateRule, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(offered: object) -> str:
        raise RuntimeError("render failed")

    monkeypatch.setattr("phones.views.render_response", broken)
    before = samples(*ALL)

    status, _ = check(client, request_xml())

    assert status == 400
    assert changes(before, *ALL) == {
        (CHECKS, "internal", "refused"): 1.0,
        (ERRORS, "", "InvalidRequest"): 1.0,
        (LATENCY, "", "update_check"): 1.0,
    }
