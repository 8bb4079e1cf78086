"""The shipped nginx configuration, run by Debian's real nginx in front of a live server:
images straight from the store, ranges, refusals, the download cap, the proxy."""

from __future__ import annotations

import hashlib
import http.client
import os
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from pytest_django.fixtures import Settings
from pytest_django.live_server_helper import LiveServer

from deviceupdate.nginx import render_nginx_config
from tests.conftest import free_port

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
