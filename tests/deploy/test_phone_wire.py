"""What a phone's request meets on the wire, straight to gunicorn (the production
configuration) and through the shipped nginx in front of it: chunked bodies read whole
within the same limits, and every refusal on the phones' paths in the protocol's XML
(or a download's plain status), never an HTML page, never a traceback in the log."""

from __future__ import annotations

import hashlib
import http.client
import os
import shutil
import subprocess
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path

import pytest

from tests.conftest import PROJECT_DIR, free_port, missing_service, wait_until

CONFIG = PROJECT_DIR / "deploy" / "gunicorn.conf.py"
FOLDER = "UCPhone/Polycom/CX600/Rev-1/ENU/4.0.7577.4387/CPE"
IMAGE = hashlib.shake_256(b"wire image").digest(100_000)
MAX_LOG = 1_024_000  # MaxLogFileSize's default
STORED = (
    b'<?xml version="1.0" encoding="utf-8"?>\n'
    b"<LogUploadResponse><Status>Stored</Status></LogUploadResponse>"
)
NOTHING = b'<?xml version="1.0" encoding="utf-8"?>\n<Response><NumOfFiles>0</NumOfFiles></Response>'
CHECK = (
    b'<?xml version="1.0" encoding="utf-8"?>\n<Request><DeviceType>UCPhone</DeviceType>'
    b"<MACAddress>00-04-F2-11-22-33</MACAddress><Vendor>Polycom</Vendor><Model>CX600</Model>"
    b"<Revision>Rev-1</Revision><Locale>ENU</Locale></Request>"
)


def error(code: str, message: str) -> bytes:
    return (
        f'<?xml version="1.0" encoding="utf-8"?>\n'
        f"<Error><Code>{code}</Code><Message>{message}</Message></Error>"
    ).encode()


def _environ(data_dir: Path) -> dict[str, str]:
    environ = {
        key: value
        for key, value in os.environ.items()
        if key not in {"DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL", "DJANGO_SETTINGS_MODULE"}
    }
    environ.update(
        DEVICEUPDATE_DATA_DIR=str(data_dir),
        DEVICEUPDATE_SERVER_FQDN="fe1.example.com",
        ALLOWED_HOSTS="127.0.0.1,pool01.example.org",
        DEBUG="false",
    )
    return environ


def _answers(address: tuple[str, int]) -> bool:
    connection = http.client.HTTPConnection(*address, timeout=2)
    try:
        connection.request("GET", "/healthz")
        return connection.getresponse().status in (200, 503)
    except OSError:
        return False
    finally:
        connection.close()


Wire = dict[str, tuple[str, int]]


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data directory with a migrated SQLite database and a store of its own."""
    path = tmp_path_factory.mktemp("wire") / "var"
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--verbosity", "0"],
        cwd=PROJECT_DIR, env=_environ(path), capture_output=True, timeout=300, check=True,
    )  # fmt: skip
    store = path / "servers" / "fe1.example.com" / "DeviceUpdateStore" / FOLDER
    store.mkdir(parents=True)
    (store / "CPE.nbt").write_bytes(IMAGE)
    return path


@pytest.fixture(scope="module")
def wire(data_dir: Path) -> Iterator[Wire]:
    """gunicorn (the production configuration) and nginx (the shipped configuration)
    in front of it; both stopped after the module's tests."""
    nginx_binary = shutil.which("nginx")
    if nginx_binary is None:
        missing_service("needs the Debian tool 'nginx' (apt-get install)")
    assert nginx_binary is not None
    env = _environ(data_dir)
    app = ("127.0.0.1", free_port())
    log_path = data_dir / "gunicorn.log"
    with log_path.open("wb") as log:
        gunicorn = subprocess.Popen(
            [
                sys.executable, "-m", "gunicorn", "--config", str(CONFIG), "--workers", "1",
                "--bind", f"{app[0]}:{app[1]}", "deviceupdate.wsgi:application",
            ],
            cwd=PROJECT_DIR, env=env, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
    prefix = data_dir / "nginx"
    prefix.mkdir()
    front = ("127.0.0.1", free_port())
    rendered = subprocess.run(
        [sys.executable, "manage.py", "nginx_config", "--listen", f"{front[0]}:{front[1]}",
         "--server-name", "pool01.example.org", "--upstream", f"{app[0]}:{app[1]}"],
        cwd=PROJECT_DIR, env=env, capture_output=True, text=True, timeout=120, check=True,
    )  # fmt: skip
    (prefix / "server.conf").write_text(rendered.stdout)
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
    nginx = subprocess.Popen(
        [nginx_binary, "-c", str(prefix / "nginx.conf"), "-p", str(prefix), "-g", "daemon off;"],
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_until(lambda: _answers(app), "gunicorn to answer")
        wait_until(lambda: _answers(front), "nginx to answer")
        yield {"gunicorn": app, "nginx": front}
    finally:
        for process in (nginx, gunicorn):
            process.terminate()
        for process in (nginx, gunicorn):
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        print(log_path.read_text(errors="replace")[-4000:])  # shown when a test failed


def send(
    address: tuple[str, int],
    method: str,
    path: str,
    body: bytes | Iterable[bytes] | None = None,
    **headers: str,
) -> tuple[int, dict[str, str], bytes]:
    """One request; an iterable body goes out chunked (Transfer-Encoding: chunked)."""
    connection = http.client.HTTPConnection(*address, timeout=60)
    try:
        chunked = body is not None and not isinstance(body, bytes)
        connection.request(method, path, body=body, headers=headers, encode_chunked=chunked)
        response = connection.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        connection.close()


def chunks(data: bytes, size: int = 100_000) -> Iterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


def stored_logs(data_dir: Path) -> dict[str, bytes]:
    client = data_dir / "DeviceUpdateLogs" / "Client"
    return {
        str(path.relative_to(client)): path.read_bytes()
        for path in (client.rglob("*") if client.exists() else [])
        if path.is_file() and not path.name.startswith(".")
    }


@pytest.mark.parametrize("via", ["gunicorn", "nginx"])
def test_a_chunked_log_upload_is_read_whole_within_max_log_file_size(
    wire: Wire, data_dir: Path, via: str
) -> None:
    name = f"chunked-{via}.txt"
    log = hashlib.shake_256(name.encode()).hexdigest(150_000).encode()  # 300,000 bytes
    url = f"/RequestHandler/Files?type=DiagLog&name={name}&mac=0004F2112233"
    status, _headers, body = send(
        wire[via], "POST", url, chunks(log), **{"Content-Type": "application/octet-stream"}
    )
    assert (status, body) == (201, STORED)
    assert stored_logs(data_dir)[f"DiagLog/0004F2112233/{name}"] == log

    # Past MaxLogFileSize (2,000,000 bytes: nginx's 2m lets it through to the service).
    before = stored_logs(data_dir)
    big = f"/RequestHandler/Files?type=DiagLog&name=big-{via}.txt&mac=0004F2112233"
    status, headers, body = send(
        wire[via], "POST", big, chunks(b"x" * 2_000_000),
        **{"Content-Type": "application/octet-stream"},
    )  # fmt: skip
    assert (status, headers["Content-Type"], body) == (
        413,
        "text/xml; charset=utf-8",
        error("TooLarge", f"the file is larger than {MAX_LOG} bytes"),
    )
    assert stored_logs(data_dir) == before


@pytest.mark.parametrize("via", ["gunicorn", "nginx"])
def test_a_chunked_update_check_is_read_whole(wire: Wire, via: str) -> None:
    status, headers, body = send(
        wire[via], "POST", "/RequestHandler/ucdevice.upx", chunks(CHECK, 50),
        **{"Content-Type": "text/xml"},
    )  # fmt: skip
    assert (status, headers["Content-Type"], body) == (200, "text/xml; charset=utf-8", NOTHING)
    # Past the check's 64 KiB: the protocol's TooLarge, as with a Content-Length.
    padded = CHECK.replace(b"</Request>", b"<Pad>" + b"x" * 70_000 + b"</Pad></Request>")
    status, _headers, body = send(
        wire[via], "POST", "/RequestHandler/ucdevice.upx", chunks(padded, 8192),
        **{"Content-Type": "text/xml"},
    )  # fmt: skip
    assert (status, body) == (413, error("TooLarge", "the request is larger than 65536 bytes"))


@pytest.mark.parametrize("via", ["gunicorn", "nginx"])
def test_a_large_external_upload_without_credentials_gets_its_401_challenge(
    wire: Wire, data_dir: Path, via: str
) -> None:
    """The phone retries with credentials only if the 401 reaches it: the refused body
    is read to its end, so nginx (still sending it) passes the 401 on, not a 502."""
    before = stored_logs(data_dir)
    url = "/RequestHandlerExt/Files?type=DiagLog&name=ext.txt&mac=0004F2112233&user=sip:a@b.c"
    status, headers, body = send(
        wire[via], "POST", url, b"x" * 1_500_000, **{"Content-Type": "application/octet-stream"}
    )
    assert (status, headers["WWW-Authenticate"], body) == (
        401,
        'Basic realm="Device Update"',
        error("AnonymousNotSupported", "credentials are required"),
    )
    assert stored_logs(data_dir) == before


def test_past_nginx_body_limit_a_phone_gets_the_xml_error(wire: Wire, data_dir: Path) -> None:
    before = stored_logs(data_dir)
    url = "/RequestHandler/Files?type=DiagLog&name=huge.txt&mac=0004F2112233"
    status, headers, body = send(
        wire["nginx"], "POST", url, b"x" * 3_000_000,
        **{"Content-Type": "application/octet-stream"},
    )  # fmt: skip
    assert (status, headers["Content-Type"], body) == (
        413,
        "text/xml; charset=utf-8",
        error("TooLarge", "the request is too large"),
    )
    assert stored_logs(data_dir) == before


def test_an_over_long_url_is_the_xml_error_both_ways(wire: Wire) -> None:
    path = "/RequestHandler/ucdevice.upx?" + "a" * 5000
    status, headers, body = send(wire["gunicorn"], "POST", path, CHECK)
    assert (status, headers["Content-Type"]) == (414, "text/xml; charset=utf-8")
    assert body == error("InvalidRequest", "Request Line is too large (5043 &gt; 4094)")
    path = "/RequestHandler/ucdevice.upx?" + "a" * 10_000
    status, headers, body = send(wire["nginx"], "POST", path, CHECK)
    assert (status, headers["Content-Type"]) == (414, "text/xml; charset=utf-8")
    assert body == error(
        "InvalidRequest", "the request line, its headers or its body framing are not valid"
    )


@pytest.mark.parametrize("via", ["gunicorn", "nginx"])
def test_an_unknown_host_is_the_xml_error(wire: Wire, via: str) -> None:
    status, headers, body = send(
        wire[via], "POST", "/RequestHandler/ucdevice.upx", CHECK,
        **{"Host": "evil.example", "Content-Type": "text/xml"},
    )  # fmt: skip
    assert (status, headers["Content-Type"], body) == (
        400,
        "text/xml; charset=utf-8",
        error("InvalidRequest", "this server does not answer that Host"),
    )


def test_a_post_to_a_download_path_is_a_plain_405_or_nginx_404(wire: Wire) -> None:
    path = f"/DeviceUpdateFiles_Int/{FOLDER}/CPE.nbt"
    status, headers, body = send(wire["gunicorn"], "POST", path, b"x")
    assert (status, headers.get("Allow"), body) == (405, "GET, HEAD", b"")
    # nginx serves downloads itself: anything but GET/HEAD is its XML NotFound.
    status, _headers, body = send(wire["nginx"], "POST", path, b"x")
    assert (status, body) == (404, error("NotFound", "no such file on this server"))


@pytest.mark.parametrize(
    ("range_header", "status", "length"),
    [
        ("bytes=" + "9" * 5000 + "-", 416, None),
        ("bytes=0-" + "9" * 5000, 206, len(IMAGE)),
        ("bytes=-" + "9" * 5000, 206, len(IMAGE)),
    ],
    ids=["start past any file", "end past any file", "suffix longer than any file"],
)
def test_a_range_of_thousands_of_digits_is_answered_straight_from_gunicorn(
    wire: Wire, range_header: str, status: int, length: int | None
) -> None:
    path = f"/DeviceUpdateFiles_Int/{FOLDER}/CPE.nbt"
    got, headers, body = send(wire["gunicorn"], "GET", path, Range=range_header)
    assert (got, body[:300]) == (status, body[:300] if got == status else b"")
    if length is None:
        assert (headers["Content-Range"], body) == (f"bytes */{len(IMAGE)}", b"")
    else:
        assert (headers["Content-Range"], body) == (f"bytes 0-{length - 1}/{len(IMAGE)}", IMAGE)


def test_no_refusal_left_a_traceback_in_the_log(wire: Wire, data_dir: Path) -> None:
    # Last in the module: gunicorn logs each refusal before it answers it.
    log = (data_dir / "gunicorn.log").read_text(errors="replace")
    assert "Traceback" not in log
    assert "Invalid request from ip=127.0.0.1: Request Line is too large" in log
