"""Slow clients behind the shipped nginx: sixteen clients that send their bodies slowly
(more than gunicorn has threads), to the phone endpoint or to the control panel or the
API, cost the phones nothing, since nginx reads each body whole before gunicorn sees
it; only package uploads are passed on as they arrive."""

from __future__ import annotations

import http.client
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from pytest_django.fixtures import Settings

from deviceupdate.nginx import render_nginx_config
from tests.conftest import PROJECT_DIR, database_url_for_subprocess, free_port, wait_until

pytestmark = pytest.mark.django_db(transaction=True)

URL = "/RequestHandler/ucdevice.upx"
CHECK = (
    b'<?xml version="1.0" encoding="utf-8"?>\n<Request>'
    b"<DeviceType>UCPhone</DeviceType><MACAddress>00-04-F2-11-22-33</MACAddress>"
    b"<SerialNumber>CX6-0012345</SerialNumber><Vendor>Polycom</Vendor>"
    b"<Model>CX600</Model><Revision>Rev-1</Revision><Locale>ENU</Locale>"
    b"<Modules></Modules></Request>"
)
NOTHING = b'<?xml version="1.0" encoding="utf-8"?>\n<Response><NumOfFiles>0</NumOfFiles></Response>'
SLOW_CLIENTS = 16  # twice gunicorn's 2 workers x 4 threads (deploy/gunicorn.conf.py)


def _answers(port: int, path: str) -> bool:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
    try:
        connection.request("GET", path)
        return connection.getresponse().status < 500
    except OSError:
        return False
    finally:
        connection.close()


def _check(port: int) -> tuple[int, bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        connection.request("POST", URL, body=CHECK, headers={"Content-Type": "text/xml"})
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


@pytest.fixture
def gunicorn(tmp_path: Path, settings: Settings) -> Iterator[int]:
    """The production gunicorn configuration on the test database."""
    port = free_port()
    env = dict(
        os.environ,
        DATABASE_URL=database_url_for_subprocess(),
        DEVICEUPDATE_DATA_DIR=str(settings.DATA_DIR),
        DEVICEUPDATE_LOG_STORE_DIR=str(tmp_path / "logs"),
    )
    log_path = tmp_path / "gunicorn.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [
                sys.executable, "-m", "gunicorn", "--config",
                str(PROJECT_DIR / "deploy" / "gunicorn.conf.py"),
                "--bind", f"127.0.0.1:{port}", "deviceupdate.wsgi:application",
            ],
            cwd=PROJECT_DIR,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        wait_until(lambda: _answers(port, "/healthz"), "gunicorn to answer")
        yield port
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        print(log_path.read_text(errors="replace")[-4000:])  # shown when the test failed


Nginx = tuple[int, int]  # the service's port, the status port (stub_status)


@pytest.fixture
def nginx(
    gunicorn: int, tmp_path: Path, settings: Settings, debian_tool: Callable[[str], str]
) -> Iterator[Nginx]:
    """Debian's nginx with the configuration `manage.py nginx_config` renders, and a
    status page on a port of its own (the connections nginx is serving)."""
    binary = debian_tool("nginx")
    port = free_port()
    status_port = free_port()
    prefix = tmp_path / "nginx"
    prefix.mkdir()
    (tmp_path / "downloads").mkdir()
    (prefix / "server.conf").write_text(
        render_nginx_config(
            listen=f"127.0.0.1:{port}",
            server_name="pool01.example.org",
            upstream=f"127.0.0.1:{gunicorn}",
            store_dir=tmp_path / "store",
            download_log=tmp_path / "downloads" / "downloads.log",
        )
    )
    (prefix / "nginx.conf").write_text(
        f"""
user root;
worker_processes 1;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log;
events {{ worker_connections 256; }}
http {{
    access_log {prefix}/access.log;
    client_body_temp_path {prefix}/body;
    proxy_temp_path {prefix}/proxy;
    fastcgi_temp_path {prefix}/fastcgi;
    uwsgi_temp_path {prefix}/uwsgi;
    scgi_temp_path {prefix}/scgi;
    include {prefix}/server.conf;
    server {{
        listen 127.0.0.1:{status_port};
        location = /status {{ stub_status; }}
    }}
}}
"""
    )
    process = subprocess.Popen(
        [binary, "-c", str(prefix / "nginx.conf"), "-p", str(prefix), "-g", "daemon off;"],
        stderr=subprocess.PIPE,
    )
    try:
        wait_until(lambda: _answers(port, "/healthz"), "nginx to answer")
        yield port, status_port
    finally:
        process.terminate()
        process.wait(timeout=20)
        assert process.stderr is not None
        process.stderr.close()


def _location(text: str, opening: str) -> str:
    block = text[text.index(opening) :]
    return block[: block.index("}")]


def test_only_package_uploads_are_passed_on_unbuffered() -> None:
    text = render_nginx_config(
        listen="80", server_name="pool01.example.org", upstream="127.0.0.1:8000"
    )
    phones = _location(text, "location /RequestHandler {")
    for directive in (
        "client_max_body_size 2m;",
        "client_body_buffer_size 64k;",
        "client_body_timeout 30s;",
        "proxy_request_buffering on;",
    ):
        assert f"\n        {directive}\n" in phones
    panel = _location(text, "location / {")
    for directive in (
        "client_max_body_size 8m;",
        "client_body_timeout 30s;",
        "proxy_request_buffering on;",
    ):
        assert f"\n        {directive}\n" in panel
    uploads = _location(
        text, 'location ~ "^/(?:admin/portal/importjob/import/|api/v1/imports/)$" {'
    )
    assert "\n        proxy_request_buffering off;\n" in uploads
    assert text.count("proxy_request_buffering off;") == 1


def _requests_in_progress(status_port: int) -> int:
    """Requests nginx has read the head of and not finished ("Writing" of stub_status),
    less the status request itself."""
    connection = http.client.HTTPConnection("127.0.0.1", status_port, timeout=10)
    try:
        connection.request("GET", "/status")
        text = connection.getresponse().read().decode()
    finally:
        connection.close()
    return int(text.split("Writing:")[1].split()[0]) - 1


@pytest.mark.parametrize("slow_path", [URL, "/admin/login/", "/api/v1/rules/"])
def test_update_checks_are_answered_while_sixteen_slow_bodies_are_held_open(
    nginx: Nginx, slow_path: str
) -> None:
    port, status_port = nginx
    head = (
        f"POST {slow_path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: text/xml\r\n"
        f"Content-Length: {len(CHECK)}\r\n\r\n"
    ).encode()
    slow = [socket.create_connection(("127.0.0.1", port), timeout=30) for _ in range(SLOW_CLIENTS)]
    try:
        for connection in slow:
            connection.sendall(head + CHECK[:40])  # the rest of the body does not come yet
        wait_until(
            lambda: _requests_in_progress(status_port) == SLOW_CLIENTS,
            "nginx to hold the sixteen slow requests",
        )

        for _ in range(2 * SLOW_CLIENTS):
            assert _check(port) == (200, NOTHING)

        # All the while, every slow client was connected and unanswered: nothing to read,
        # no end of stream, and nginx still holds each of their requests.
        for connection in slow:
            connection.setblocking(False)
            with pytest.raises(BlockingIOError):
                connection.recv(1)
            connection.setblocking(True)
        assert _requests_in_progress(status_port) == SLOW_CLIENTS

        # Their bodies complete: each is answered (a check as any other; the control
        # panel's and the API's refuse an anonymous POST).
        for connection in slow:
            connection.sendall(CHECK[40:])
        expected = {URL: b"200", "/admin/login/": b"403", "/api/v1/rules/": b"403"}[slow_path]
        for connection in slow:
            reply = _read_response(connection)
            assert reply.split(b" ", 2)[:2] == [b"HTTP/1.1", expected]
            if slow_path == URL:
                assert reply.endswith(NOTHING)
    finally:
        for connection in slow:
            connection.close()


def _read_response(connection: socket.socket) -> bytes:
    """One whole HTTP response with a Content-Length from a raw socket."""
    data = b""
    deadline = time.monotonic() + 30
    while b"\r\n\r\n" not in data:
        assert time.monotonic() < deadline, "no response head"
        data += connection.recv(4096)
    head, _, body = data.partition(b"\r\n\r\n")
    length = next(
        int(line.split(b":", 1)[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length:")
    )
    while len(body) < length:
        assert time.monotonic() < deadline, "response body cut short"
        body += connection.recv(4096)
    return head + b"\r\n\r\n" + body
