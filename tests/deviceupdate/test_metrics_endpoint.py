"""``/metrics``: who may read it (configured networks or the bearer token; everyone else
a bare 403), its settings, and its answer when the multiprocess folder is missing."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest
from django.test import Client
from prometheus_client.parser import text_string_to_metric_families
from pytest_django.fixtures import Settings

from deviceupdate.env import ConfigError, Env
from tests.deviceupdate.test_startup import run_manage

pytestmark = pytest.mark.django_db

TOKEN = "k" * 40
FORBIDDEN = (403, b"403 Forbidden\n")


def scrape(client: Client, **headers: str) -> tuple[int, bytes]:
    response = client.get("/metrics", **headers)  # type: ignore[arg-type]
    return response.status_code, response.content


def families(body: bytes) -> set[str]:
    return {family.name for family in text_string_to_metric_families(body.decode())}


@pytest.fixture(autouse=True)
def networks(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)
    settings.METRICS_ALLOWED_NETWORKS = (ipaddress.ip_network("127.0.0.0/8"),)
    settings.METRICS_TOKEN = TOKEN


def test_an_allowed_network_reads_the_metrics_in_prometheus_format(client: Client) -> None:
    response = client.get("/metrics")

    assert response.status_code == 200
    assert response["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
    assert {
        "deviceupdate_update_checks",
        "deviceupdate_phone_errors",
        "deviceupdate_phone_request_duration_seconds",
    } <= families(response.content)


def test_the_token_opens_it_from_any_address(client: Client) -> None:
    status, body = scrape(client, REMOTE_ADDR="192.0.2.7", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    assert status == 200
    assert "deviceupdate_update_checks" in families(body)


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param({}, id="no token"),
        pytest.param({"HTTP_AUTHORIZATION": f"Bearer {TOKEN}x"}, id="wrong token"),
        pytest.param({"HTTP_AUTHORIZATION": "Bearer "}, id="empty token"),
        pytest.param({"HTTP_AUTHORIZATION": f"Basic {TOKEN}"}, id="not a bearer"),
        # A proxy on loopback says the client is outside: the client counts, not the proxy.
        pytest.param(
            {"REMOTE_ADDR": "127.0.0.1", "HTTP_X_FORWARDED_FOR": "192.0.2.7"}, id="proxied"
        ),
    ],
)
def test_anyone_else_gets_403_and_no_data(client: Client, headers: dict[str, str]) -> None:
    assert scrape(client, **{"REMOTE_ADDR": "192.0.2.7", **headers}) == FORBIDDEN


def test_without_a_token_setting_no_token_opens_it(client: Client, settings: Settings) -> None:
    settings.METRICS_TOKEN = None
    assert scrape(client, REMOTE_ADDR="192.0.2.7", HTTP_AUTHORIZATION="Bearer None") == FORBIDDEN


def test_no_network_means_the_token_only(client: Client, settings: Settings) -> None:
    settings.METRICS_ALLOWED_NETWORKS = ()
    assert scrape(client) == FORBIDDEN
    assert scrape(client, HTTP_AUTHORIZATION=f"Bearer {TOKEN}")[0] == 200


def test_only_get_and_head(client: Client) -> None:
    assert client.post("/metrics").status_code == 405
    assert client.head("/metrics").status_code == 200


def test_a_missing_multiprocess_folder_is_a_503_with_one_line(
    client: Client, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path / "missing"))
    assert scrape(client) == (503, b"503 metrics unavailable\n")


def test_multiprocess_mode_sums_the_workers_files(
    client: Client, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Two workers' files for the same counter: the scrape shows their sum."""
    from prometheus_client.mmap_dict import MmapedDict, mmap_key

    key = mmap_key(
        "deviceupdate_update_checks",
        "deviceupdate_update_checks_total",
        ["channel", "outcome"],
        ["internal", "offered"],
        "",
    )
    for pid, value in ((101, 3.0), (102, 4.0)):
        values = MmapedDict(str(tmp_path / f"counter_{pid}.db"))
        values.write_value(key, value, 0.0)
        values.close()
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))

    status, body = scrape(client)

    samples = [
        (sample.name, sample.labels, sample.value)
        for family in text_string_to_metric_families(body.decode())
        for sample in family.samples
        if family.name == "deviceupdate_update_checks"
    ]
    assert (status, samples) == (
        200,
        [("deviceupdate_update_checks_total", {"channel": "internal", "outcome": "offered"}, 7.0)],
    )


def test_networks_are_read_strictly() -> None:
    env = Env({"A": "10.0.0.0/8, ::1", "B": "none", "C": "10.0.0.1/8", "D": "example.org", "E": ""})
    assert env.networks("A", []) == (
        ipaddress.ip_network("10.0.0.0/8"),
        ipaddress.ip_network("::1/128"),
    )
    assert env.networks("B", ["127.0.0.1"]) == ()
    assert env.networks("E", ["127.0.0.0/8"]) == (ipaddress.ip_network("127.0.0.0/8"),)
    with pytest.raises(ConfigError) as host_bits:
        env.networks("C", [])
    assert str(host_bits.value) == (
        "configuration error: C: expected CIDRs or none: 10.0.0.1/8 has host bits set"
    )
    with pytest.raises(ConfigError) as name:
        env.networks("D", [])
    assert str(name.value) == (
        "configuration error: D: expected CIDRs or none: "
        "'example.org' does not appear to be an IPv4 or IPv6 network"
    )


@pytest.mark.parametrize(
    ("env", "message"),
    [
        (
            {"DEVICEUPDATE_METRICS_TOKEN": "short"},
            "configuration error: DEVICEUPDATE_METRICS_TOKEN: must be at least 32 characters",
        ),
        (
            {"DEVICEUPDATE_METRICS_ALLOWED_CIDRS": "10.0.0.0/33"},
            "configuration error: DEVICEUPDATE_METRICS_ALLOWED_CIDRS: expected CIDRs or none: "
            "'10.0.0.0/33' does not appear to be an IPv4 or IPv6 network",
        ),
    ],
)
def test_a_bad_metrics_setting_stops_start_up_with_one_line(
    tmp_path: Path, env: dict[str, str], message: str
) -> None:
    result = run_manage(tmp_path, "check", **env)
    assert (result.returncode, result.stderr, result.stdout) == (2, message + "\n", "")
