"""The shipped nginx configuration, run by Debian's real nginx in front of a live server:
images straight from the store, ranges, refusals, the download cap, the proxy, and the
download log the worker reads into DownloadEvent rows."""

from __future__ import annotations

import hashlib
import http.client
import io
import json
import os
import socket
import struct
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from django.core.management import call_command
from pytest_django.fixtures import Settings
from pytest_django.live_server_helper import LiveServer

from deviceupdate.nginx import render_nginx_config
from phones.models import DownloadEvent
from phones.tasks import server_download_log_read_task
from portal.models import Pool, Server, Site
from tests.conftest import free_port
from tests.phones.conftest import stored_version

FOLDER = "UCPhone/Polycom/CX600/Rev-1/ENU/4.0.7577.4387/CPE"
DATA = hashlib.shake_256(b"nginx image").digest(8 * 1024 * 1024)
NOT_FOUND = (
    b'<?xml version="1.0" encoding="utf-8"?>\n'
    b"<Error><Code>NotFound</Code><Message>no such file on this server</Message></Error>"
)


@pytest.fixture
def store(settings: Settings, tmp_path: Path) -> Path:
    store = tmp_path / "store"
    (store / FOLDER).mkdir(parents=True)
    (store / FOLDER / "CPE.nbt").write_bytes(DATA)
    (store / FOLDER / ".CPE.nbt.99.part").write_bytes(b"half a copy")
    (tmp_path / "secret.txt").write_text("outside the store")
    os.symlink(tmp_path / "secret.txt", store / FOLDER / "link.nbt")
    os.symlink(tmp_path, store / "UCPhone" / "escape")
    settings.SERVER_STORE_DIR = store
    settings.DOWNLOAD_MAX_CONCURRENT = 1
    settings.DOWNLOAD_RETRY_AFTER = 17
    return store


@pytest.fixture(autouse=True)
def download_log(settings: Settings, tmp_path: Path) -> Path:
    """The download log nginx writes, private to the test (autouse: before nginx starts,
    which needs its directory)."""
    (tmp_path / "downloads").mkdir()
    settings.DOWNLOAD_ACCESS_LOG = tmp_path / "downloads" / "downloads.log"
    return settings.DOWNLOAD_ACCESS_LOG


@pytest.fixture
def nginx(
    store: Path,
    tmp_path: Path,
    live_server: LiveServer,
    debian_tool: Callable[[str], str],
) -> Iterator[tuple[str, int]]:
    binary = debian_tool("nginx")
    port = free_port()
    prefix = tmp_path / "nginx"
    prefix.mkdir()
    upstream = live_server.url.removeprefix("http://")
    (prefix / "server.conf").write_text(
        render_nginx_config(
            listen=f"127.0.0.1:{port}", server_name="pool01.example.org", upstream=upstream
        )
    )
    (prefix / "nginx.conf").write_text(
        f"""
user root;
worker_processes 1;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log;
events {{ worker_connections 64; }}
http {{
    access_log {prefix}/access.log;
    client_body_temp_path {prefix}/body;
    proxy_temp_path {prefix}/proxy;
    fastcgi_temp_path {prefix}/fastcgi;
    uwsgi_temp_path {prefix}/uwsgi;
    scgi_temp_path {prefix}/scgi;
    include {prefix}/server.conf;
}}
"""
    )
    process = subprocess.Popen(
        [binary, "-c", str(prefix / "nginx.conf"), "-p", str(prefix), "-g", "daemon off;"],
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 20
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                _, err = process.communicate()
                pytest.fail(f"nginx did not start: {err.decode(errors='replace')}")
            time.sleep(0.05)
    yield ("127.0.0.1", port)
    process.terminate()
    process.wait(timeout=20)
    assert process.stderr is not None
    process.stderr.close()


def get(
    address: tuple[str, int], path: str, method: str = "GET", **headers: str
) -> tuple[int, dict[str, str], bytes]:
    connection = http.client.HTTPConnection(*address, timeout=30)
    try:
        # http.client sends the path exactly as given: no client-side normalisation.
        connection.request(method, path, headers=headers)
        response = connection.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        connection.close()


pytestmark = [pytest.mark.django_db(transaction=True)]


def test_nginx_sends_whole_files_and_ranges_from_the_store(nginx: tuple[str, int]) -> None:
    status, headers, body = get(nginx, f"/DeviceUpdateFiles_Int/{FOLDER}/CPE.nbt")
    assert (status, headers["Content-Length"], headers["Content-Type"]) == (
        200,
        str(len(DATA)),
        "application/octet-stream",
    )
    assert body == DATA
    assert headers["ETag"]
    assert headers["Last-Modified"]
    status, headers, body = get(
        nginx, f"/DeviceUpdateFiles_Ext/{FOLDER}/CPE.nbt", Range="bytes=1000-1999"
    )
    assert (status, headers["Content-Range"], body) == (
        206,
        f"bytes 1000-1999/{len(DATA)}",
        DATA[1000:2000],
    )
    status, headers, body = get(nginx, f"/DeviceUpdateFiles_Int/{FOLDER}/CPE.nbt", "HEAD")
    assert (status, headers["Content-Length"], body) == (200, str(len(DATA)), b"")


@pytest.mark.parametrize(
    "path",
    [
        f"{FOLDER}/missing.nbt",
        f"{FOLDER}/../../../../../../../../secret.txt",
        f"{FOLDER}/%2e%2e/%2e%2e/%2e%2e/%2e%2e/%2e%2e/%2e%2e/%2e%2e/%2e%2e/secret.txt",
        "..%2f..%2f..%2fetc%2fpasswd",
        f"{FOLDER}/link.nbt",
        "UCPhone/escape/secret.txt",
        f"{FOLDER}/.CPE.nbt.99.part",
    ],
)
def test_nginx_refuses_everything_outside_the_store_with_404(
    nginx: tuple[str, int], path: str
) -> None:
    status, _headers, body = get(nginx, f"/DeviceUpdateFiles_Int/{path}")
    assert (status, body) == (404, NOT_FOUND)


def test_beyond_the_cap_nginx_answers_503_with_retry_after(nginx: tuple[str, int]) -> None:
    # Hold one download open without reading it: the socket buffers fill, nginx keeps
    # the connection, and the cap (1) is reached.
    slow = socket.create_connection(nginx)
    slow.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    slow.sendall(
        f"GET /DeviceUpdateFiles_Int/{FOLDER}/CPE.nbt HTTP/1.1\r\nHost: x\r\n\r\n".encode()
    )
    assert slow.recv(12) == b"HTTP/1.1 200"
    try:
        status, headers, body = get(nginx, f"/DeviceUpdateFiles_Int/{FOLDER}/CPE.nbt")
        assert (status, headers["Retry-After"]) == (503, "17")
        assert b"<Code>Busy</Code>" in body
    finally:
        slow.close()


def test_everything_else_goes_to_the_application(nginx: tuple[str, int]) -> None:
    status, headers, body = get(nginx, "/healthz")
    assert (status, headers["Content-Type"]) == (200, "application/json")
    assert b'"status": "ok"' in body
    status, _headers, _body = get(nginx, "/admin/login/")
    assert status == 200


def test_the_worker_turns_a_whole_download_nginx_logged_into_one_event(
    nginx: tuple[str, int], download_log: Path, settings: Settings
) -> None:
    site = Site.objects.create(name="Downloads")
    pool = Pool.objects.create(site=site, fqdn="pool01.example.org")
    server = Server.objects.create(pool=pool, fqdn="fe01.example.org")
    settings.SERVER_FQDN = server.fqdn
    stored_version("4.0.7577.4387", verified_on=server)  # FOLDER, its image CPE.nbt
    url = f"/DeviceUpdateFiles_Int/{FOLDER}/CPE.nbt"
    # From 127.0.0.1, a trusted proxy's address: its X-Forwarded-For is still not the
    # phone's address, as the update check (proxied with $remote_addr) never sees it.
    status, _headers, body = get(nginx, url, **{"X-Forwarded-For": "10.9.9.9"})
    assert (status, body == DATA) == (200, True)
    assert get(nginx, url, Range="bytes=0-99")[0] == 206
    assert get(nginx, url, "HEAD")[0] == 200
    # One worker process: once this answer is here, the requests before it are logged.
    assert get(nginx, f"/DeviceUpdateFiles_Int/{FOLDER}/missing.nbt")[0] == 404

    result = server_download_log_read_task(server_fqdn=server.fqdn)

    assert result == {
        "lines": 3,  # the 404 ended in the error location, logged elsewhere
        "recorded": 1,
        "ignored": 2,
        "malformed": 0,
        "offset": download_log.stat().st_size,
        "more": 0,
        "busy": 0,
    }
    assert list(
        DownloadEvent.objects.values_list("server", "client_address", "folder", "file_name")
    ) == [(server.fqdn, "127.0.0.1", FOLDER, "CPE.nbt")]
    again = server_download_log_read_task(server_fqdn=server.fqdn)
    assert again is not None
    assert (again["lines"], again["recorded"]) == (0, 0)
    assert DownloadEvent.objects.count() == 1


def test_a_download_cut_short_is_logged_incomplete_and_recorded_as_nothing(
    nginx: tuple[str, int], download_log: Path, settings: Settings
) -> None:
    site = Site.objects.create(name="Downloads")
    pool = Pool.objects.create(site=site, fqdn="pool01.example.org")
    server = Server.objects.create(pool=pool, fqdn="fe01.example.org")
    settings.SERVER_FQDN = server.fqdn
    stored_version("4.0.7577.4387", verified_on=server)
    phone = socket.create_connection(nginx)
    phone.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    phone.sendall(
        f"GET /DeviceUpdateFiles_Int/{FOLDER}/CPE.nbt HTTP/1.1\r\nHost: x\r\n\r\n".encode()
    )
    assert phone.recv(12) == b"HTTP/1.1 200"
    # Hang up with a reset, as a phone that loses power: nginx's next write fails.
    phone.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    phone.close()
    deadline = time.monotonic() + 20
    while not download_log.exists() or not download_log.read_bytes().endswith(b"\n"):
        assert time.monotonic() < deadline, "nginx did not log the cut-short download"
        time.sleep(0.05)

    result = server_download_log_read_task(server_fqdn=server.fqdn)

    assert result is not None
    assert (result["lines"], result["recorded"], result["ignored"]) == (1, 0, 1)
    logged = json.loads(download_log.read_bytes())
    assert (logged["status"], logged["completion"]) == ("200", "")
    assert int(logged["body_bytes_sent"]) < len(DATA)
    assert DownloadEvent.objects.count() == 0


def test_nginx_config_creates_the_download_logs_directory_and_names_the_file(
    settings: Settings, tmp_path: Path
) -> None:
    settings.DOWNLOAD_ACCESS_LOG = tmp_path / "new" / "nginx" / "downloads.log"
    out = io.StringIO()
    call_command("nginx_config", stdout=out)
    assert (tmp_path / "new" / "nginx").is_dir()
    assert (
        out.getvalue().count(
            f"access_log {tmp_path}/new/nginx/downloads.log deviceupdate_downloads;"
        )
        == 1
    )


@pytest.mark.parametrize("name", ["$host.log", "down loads.log"])
def test_a_download_log_path_nginx_would_misread_is_refused(tmp_path: Path, name: str) -> None:
    with pytest.raises(ValueError, match="DOWNLOAD_LOG contains characters nginx would misread"):
        render_nginx_config(
            listen="80", server_name="pool01.example.org", upstream="127.0.0.1:8000",
            download_log=tmp_path / name,
        )  # fmt: skip
