"""The shipped nginx configuration, run by Debian's real nginx in front of a live server:
images straight from the store, ranges, refusals, the download cap, the proxy, and the
download log the worker reads into DownloadEvent rows."""

from __future__ import annotations

import hashlib
import http.client
import io
import json
import os
import re
import socket
import ssl
import struct
import subprocess
import sys
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from pytest_django.fixtures import Settings
from pytest_django.live_server_helper import LiveServer

from deviceupdate.nginx import TlsFiles, render_nginx_config
from phones.models import DownloadEvent
from phones.tasks import server_download_log_read_task
from portal.models import Pool, Server, Site
from tests.conftest import PROJECT_DIR, database_url_for_subprocess, free_port, wait_until
from tests.deploy.servers import Listeners, start_nginx, start_tls_nginx, stop, tool
from tests.deploy.tls import Pki
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
def nginx(store: Path, tmp_path: Path, live_server: LiveServer) -> Iterator[tuple[str, int]]:
    port = free_port()
    upstream = live_server.url.removeprefix("http://")
    config = render_nginx_config(
        listen=f"127.0.0.1:{port}", server_name="pool01.example.org", upstream=upstream
    )
    process = start_nginx(tmp_path / "nginx", config, [port])
    yield ("127.0.0.1", port)
    stop(process)


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


# --- HTTPS as phones use it -----------------------------------------------------------

UPDATE_CHECK = (
    b'<?xml version="1.0" encoding="utf-8"?><Request><DeviceType>UCPhone</DeviceType>'
    b"<MACAddress>00-04-F2-11-22-33</MACAddress><SerialNumber></SerialNumber>"
    b"<Vendor>Polycom</Vendor><Model>CX600</Model><Revision>Rev-1</Revision>"
    b"<Locale>ENU</Locale>%s<Modules><Module><UpdateType>CPE</UpdateType>"
    b"<FileName>CPE.nbt</FileName><Version>4.0.7577.4363</Version></Module></Modules></Request>"
)
XML = {"Content-Type": "text/xml"}
FORWARDED: dict[str, Any] = {"X-Forwarded-For": "203.0.113.9"}


@pytest.fixture
def nginx_tls(
    store: Path, tmp_path: Path, live_server: LiveServer, pki: Pki, settings: Settings
) -> Iterator[Listeners]:
    settings.ALLOWED_HOSTS = [".example.org", "127.0.0.1", "ucupdates-r2"]
    listeners, process = start_tls_nginx(
        tmp_path / "nginx", pki, live_server.url.removeprefix("http://")
    )
    yield listeners
    stop(process)


@pytest.fixture
def production_nginx(store: Path, tmp_path: Path, pki: Pki) -> Iterator[Listeners]:
    """nginx in front of a gunicorn started with DEVICEUPDATE_ENV=production, on the
    test database."""
    port = free_port()
    environment = {
        **os.environ,
        "DEVICEUPDATE_ENV": "production",
        "DEVICEUPDATE_DATA_DIR": str(tmp_path / "production"),
        "SECRET_KEY": "x" * 60,
        "ALLOWED_HOSTS": ".example.org",
        "DATABASE_URL": database_url_for_subprocess(),
        "CELERY_BROKER_URL": "filesystem://",
        "DEVICEUPDATE_AUDIT_FLUSH_THREAD": "false",
        "DEVICEUPDATE_SERVER_STORE_DIR": str(store),
    }
    log = (tmp_path / "gunicorn.log").open("wb")
    gunicorn = subprocess.Popen(
        [
            sys.executable, "-m", "gunicorn", "--bind", f"127.0.0.1:{port}", "--workers", "1",
            "deviceupdate.wsgi",
        ],
        cwd=PROJECT_DIR, env=environment, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip

    def answers() -> bool:
        assert gunicorn.poll() is None, (tmp_path / "gunicorn.log").read_text()
        try:
            return get(("127.0.0.1", port), "/healthz", Host="pool01.example.org")[0] == 200
        except OSError:
            return False

    wait_until(answers, "gunicorn to answer")
    listeners, process = start_tls_nginx(tmp_path / "nginx", pki, f"127.0.0.1:{port}")
    yield listeners
    stop(process)
    gunicorn.terminate()
    gunicorn.wait(timeout=30)
    log.close()


def tls_request(
    port: int, path: str, method: str = "GET", *, bundle: Path,
    host: str = "ucupdates-r2.example.org", body: bytes | None = None, **headers: str,
) -> tuple[int, dict[str, str], bytes]:  # fmt: skip
    """A request over TLS to 127.0.0.1:``port`` as a phone that trusts ``bundle`` and
    asked DNS for ``host``."""
    context = ssl.create_default_context(cafile=str(bundle))
    raw = socket.create_connection(("127.0.0.1", port), timeout=30)
    connection = http.client.HTTPConnection(host, port, timeout=30)
    connection.sock = context.wrap_socket(raw, server_hostname=host)
    try:
        connection.request(method, path, body=body, headers=headers)
        response = connection.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        connection.close()


def test_an_update_check_over_https_is_answered(nginx_tls: Listeners, pki: Pki) -> None:
    status, headers, body = tls_request(
        nginx_tls.https, "/RequestHandler/ucdevice.upx", "POST",
        bundle=pki.bundle, body=UPDATE_CHECK % b"", **XML,
    )  # fmt: skip
    assert (status, headers["Content-Type"]) == (200, "text/xml; charset=utf-8")
    assert b"<NumOfFiles>0</NumOfFiles>" in body


@pytest.mark.parametrize(("listener", "channel"), [("https", "Int"), ("external", "Ext")])
def test_a_ranged_https_download_sends_the_exact_bytes(
    nginx_tls: Listeners, pki: Pki, listener: str, channel: str
) -> None:
    status, headers, body = tls_request(
        getattr(nginx_tls, listener), f"/DeviceUpdateFiles_{channel}/{FOLDER}/CPE.nbt",
        bundle=pki.bundle, host="web.example.org", Range="bytes=4096-1052671",
    )  # fmt: skip
    assert (status, headers["Content-Range"], headers["Content-Length"]) == (
        206,
        f"bytes 4096-1052671/{len(DATA)}",
        "1048576",
    )
    assert hashlib.sha256(body).hexdigest() == hashlib.sha256(DATA[4096:1052672]).hexdigest()


def test_the_external_listener_refuses_anonymous_update_checks(
    nginx_tls: Listeners, pki: Pki
) -> None:
    def check(user: bytes) -> tuple[int, dict[str, str], bytes]:
        return tls_request(
            nginx_tls.external, "/RequestHandlerExt/ucdevice.upx", "POST",
            bundle=pki.bundle, host="web.example.org", body=UPDATE_CHECK % user, **XML,
        )  # fmt: skip

    status, _headers, body = check(b"")
    assert status == 403
    assert b"<Code>NoSignedInUser</Code>" in body
    status, headers, body = check(b"<UserID>sip:alice@example.org</UserID>")
    assert (status, headers["WWW-Authenticate"]) == (401, 'Basic realm="Device Update"')
    assert b"<Code>AnonymousNotSupported</Code>" in body


@pytest.mark.parametrize(
    "path",
    ["/RequestHandler/ucdevice.upx", f"/DeviceUpdateFiles_Int/{FOLDER}/CPE.nbt", "/admin/login/"],
)
def test_the_external_listener_publishes_nothing_but_the_external_paths(
    nginx_tls: Listeners, pki: Pki, path: str
) -> None:
    status, _headers, body = tls_request(
        nginx_tls.external, path, bundle=pki.bundle, host="web.example.org"
    )
    assert (status, body) == (404, NOT_FOUND)


def test_a_client_that_does_not_trust_the_certificate_fails(nginx_tls: Listeners, pki: Pki) -> None:
    for port in (nginx_tls.https, nginx_tls.external):
        with pytest.raises(ssl.SSLCertVerificationError, match="unable to get local issuer"):
            tls_request(port, "/healthz", bundle=pki.other_bundle)


def test_behind_the_trusted_proxy_the_phones_address_is_logged(
    nginx_tls: Listeners, pki: Pki, download_log: Path
) -> None:
    status, _headers, _body = tls_request(
        nginx_tls.external, f"/DeviceUpdateFiles_Ext/{FOLDER}/CPE.nbt", bundle=pki.bundle,
        host="web.example.org", Range="bytes=0-9", **FORWARDED,
    )  # fmt: skip
    assert status == 206
    # The same header on the internal listener is not believed.
    status, _headers, _body = tls_request(
        nginx_tls.https, f"/DeviceUpdateFiles_Int/{FOLDER}/CPE.nbt", bundle=pki.bundle,
        Range="bytes=0-9", **FORWARDED,
    )  # fmt: skip
    assert status == 206
    wait_until(lambda: download_log.read_bytes().count(b"\n") == 2, "two logged downloads")
    logged = [json.loads(line) for line in download_log.read_text().splitlines()]
    assert [line["remote_addr"] for line in logged] == ["203.0.113.9", "127.0.0.1"]


def test_production_https_settings_leave_the_phones_plain_http_path_alone(
    production_nginx: Listeners, pki: Pki
) -> None:
    address = ("127.0.0.1", production_nginx.http)
    connection = http.client.HTTPConnection(*address, timeout=30)
    connection.request(
        "POST", "/RequestHandler/ucdevice.upx", body=UPDATE_CHECK % b"",
        headers={"Host": "pool01.example.org", **XML},
    )  # fmt: skip
    response = connection.getresponse()
    assert (response.status, b"<NumOfFiles>0</NumOfFiles>" in response.read()) == (200, True)
    connection.close()
    assert (
        get(address, f"/DeviceUpdateFiles_Int/{FOLDER}/CPE.nbt", Host="pool01.example.org")[0]
        == 200
    )
    assert get(address, "/healthz", Host="pool01.example.org")[0] == 200
    for path in ("/admin/login/", "/api/v1/rules/"):
        status, headers, _body = get(address, path, Host="pool01.example.org")
        assert (status, headers["Location"]) == (301, f"https://pool01.example.org{path}")
    status, headers, _body = tls_request(production_nginx.https, "/admin/login/", bundle=pki.bundle)
    assert status == 200
    assert "; Secure" in headers["Set-Cookie"]
    assert headers["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains"


def test_production_defaults_are_https_only(tmp_path: Path) -> None:
    environment = {
        **os.environ,
        "DEVICEUPDATE_ENV": "production",
        "DEVICEUPDATE_DATA_DIR": str(tmp_path),
        "SECRET_KEY": "x" * 60,
        "ALLOWED_HOSTS": "pool01.example.org",
        "DATABASE_URL": f"sqlite:///{tmp_path}/db.sqlite3",
        "CELERY_BROKER_URL": "filesystem://",
    }
    script = (
        "import django, json; django.setup(); from django.conf import settings as s; "
        "print(json.dumps([s.SECURE_SSL_REDIRECT, s.SESSION_COOKIE_SECURE, "
        "s.CSRF_COOKIE_SECURE, s.SECURE_PROXY_SSL_HEADER, s.SECURE_REDIRECT_EXEMPT]))"
    )
    environment["DJANGO_SETTINGS_MODULE"] = "deviceupdate.settings"
    output = subprocess.run(
        [sys.executable, "-c", script], env=environment, capture_output=True, check=True,
        cwd=PROJECT_DIR,
    ).stdout  # fmt: skip
    redirect, session, csrf, proxy, exempt = json.loads(output)
    assert (redirect, session, csrf, proxy) == (
        True,
        True,
        True,
        ["HTTP_X_FORWARDED_PROTO", "https"],
    )
    exempted = [
        path for path in ("RequestHandler/ucdevice.upx", "RequestHandlerExt/Files",
                          "DeviceUpdateFiles_Int/a/b", "healthz", "static/x.css", "admin/",
                          "admin", "api/v1/rules/")
        if any(re.search(pattern, path) for pattern in exempt)
    ]  # fmt: skip
    assert exempted == [
        "RequestHandler/ucdevice.upx", "RequestHandlerExt/Files", "DeviceUpdateFiles_Int/a/b",
        "healthz", "static/x.css",
    ]  # fmt: skip


def test_the_legacy_phone_profile_lets_a_tls_1_0_phone_in_and_the_default_does_not(
    store: Path, tmp_path: Path, pki: Pki
) -> None:
    certificate, key = pki.pairs["good"]
    ports = {"modern": free_port(), "legacy-phones": free_port()}
    processes = []
    for profile, port in ports.items():
        config = render_nginx_config(
            listen=f"127.0.0.1:{free_port()}", listen_https=f"127.0.0.1:{port}",
            server_name="pool01.example.org", upstream="127.0.0.1:9",
            internal_tls=TlsFiles(certificate, key), tls_profile=profile,
        )  # fmt: skip
        processes.append(start_nginx(tmp_path / profile, config, [port]))
    try:
        old_phone = ssl.create_default_context(cafile=str(pki.bundle))
        with warnings.catch_warnings():
            # Deprecated on purpose: this client stands for old phone firmware.
            warnings.simplefilter("ignore", DeprecationWarning)
            old_phone.minimum_version = old_phone.maximum_version = ssl.TLSVersion.TLSv1
        old_phone.set_ciphers("AES128-SHA:@SECLEVEL=0")
        with (
            socket.create_connection(("127.0.0.1", ports["legacy-phones"]), timeout=30) as raw,
            old_phone.wrap_socket(raw, server_hostname="pool01.example.org") as tls,
        ):
            cipher = tls.cipher()
            assert cipher is not None
            assert (tls.version(), cipher[0]) == ("TLSv1", "AES128-SHA")
        with (
            socket.create_connection(("127.0.0.1", ports["modern"]), timeout=30) as raw,
            pytest.raises(ssl.SSLError),
        ):
            old_phone.wrap_socket(raw, server_hostname="pool01.example.org")
    finally:
        for process in processes:
            stop(process)


def test_the_rendered_tls_settings_default_to_tls_1_2_and_1_3(pki: Pki) -> None:
    certificate, key = pki.pairs["good"]
    text = render_nginx_config(
        listen="80", server_name="pool01.example.org", upstream="127.0.0.1:8000",
        internal_tls=TlsFiles(certificate, key), external_tls=TlsFiles(certificate, key),
    )  # fmt: skip
    assert text.count("ssl_protocols TLSv1.2 TLSv1.3;") == 1
    assert "@SECLEVEL" not in text
    assert text.count(f"ssl_certificate {certificate};") == 2
    assert "listen 443 ssl;" in text
    assert "listen 4443 ssl;" in text
    assert "set_real_ip_from" not in text


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"tls_protocols": "SSLv3 TLSv1.2"}, "TLS protocols: SSLv3 not among"),
        ({"external_proxy": ["proxy.example.org"]}, "reverse proxy 'proxy.example.org' is not"),
        ({"certificate_key": None}, "--certificate and its key go together"),
        ({"certificate": "/nonexistent/cert.pem"}, "no certificate file at /nonexistent/cert.pem"),
        ({"listen": "80; include /etc/passwd"}, "is not a port or address:port"),
        ({"tls_ciphers": "HIGH;"}, "TLS ciphers contain characters"),
    ],
)
def test_nginx_config_refuses_a_bad_option_in_one_line(
    pki: Pki, options: dict[str, Any], message: str
) -> None:
    certificate, key = pki.pairs["good"]
    arguments = {"certificate": str(certificate), "certificate_key": str(key), **options}
    out = io.StringIO()
    with pytest.raises(CommandError, match=re.escape(message)) as raised:
        call_command("nginx_config", stdout=out, **arguments)
    assert "\n" not in str(raised.value)
    assert out.getvalue() == ""


def test_nginx_config_renders_every_listener_nginx_accepts(pki: Pki, tmp_path: Path) -> None:
    certificate, key = pki.pairs["good"]
    out, err = io.StringIO(), io.StringIO()
    call_command(
        "nginx_config", "--certificate", str(certificate), "--certificate-key", str(key),
        "--external-proxy", "192.0.2.0/24", "--tls-profile", "legacy-phones",
        "--listen-https", "127.0.0.1:8443", "--listen-external", "127.0.0.2:443",
        stdout=out, stderr=err,
    )  # fmt: skip
    text = out.getvalue()
    assert err.getvalue() == ""
    assert "ssl_protocols TLSv1 TLSv1.1 TLSv1.2 TLSv1.3;" in text
    assert "    set_real_ip_from 192.0.2.0/24;\n" in text
    assert "listen 127.0.0.1:8443 ssl;" in text
    assert "listen 127.0.0.2:443 ssl;" in text
    (tmp_path / "server.conf").write_text(text)
    (tmp_path / "nginx.conf").write_text(
        f"pid {tmp_path}/nginx.pid; error_log {tmp_path}/error.log; events {{}}\n"
        f"http {{ include {tmp_path}/server.conf; }}\n"
    )
    checked = subprocess.run(
        [tool("nginx"), "-t", "-q", "-c", str(tmp_path / "nginx.conf"), "-p", str(tmp_path)],
        capture_output=True,
    )
    assert (checked.returncode, checked.stderr) == (0, b"")


def test_without_a_certificate_nginx_config_says_it_renders_plain_http_only() -> None:
    out, err = io.StringIO(), io.StringIO()
    call_command("nginx_config", stdout=out, stderr=err)
    assert err.getvalue() == (
        "note: no certificate (--certificate or DEVICEUPDATE_TLS_CERTIFICATE): plain HTTP "
        "only, no HTTPS and no external listener\n"
    )
    assert " ssl;" not in out.getvalue()


def test_internal_and_external_downloads_share_the_servers_cap(
    nginx_tls: Listeners, pki: Pki
) -> None:
    # The cap is 1 (the store fixture): one download held open inside...
    slow = socket.create_connection(("127.0.0.1", nginx_tls.http))
    slow.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    slow.sendall(
        f"GET /DeviceUpdateFiles_Int/{FOLDER}/CPE.nbt HTTP/1.1\r\nHost: x\r\n\r\n".encode()
    )
    assert slow.recv(12) == b"HTTP/1.1 200"
    try:
        # ...and a phone outside is told to come back later.
        status, headers, body = tls_request(
            nginx_tls.external, f"/DeviceUpdateFiles_Ext/{FOLDER}/CPE.nbt",
            bundle=pki.bundle, host="web.example.org",
        )  # fmt: skip
        assert (status, headers["Retry-After"]) == (503, "17")
        assert b"<Code>Busy</Code>" in body
    finally:
        slow.close()


def test_nginx_config_names_every_host_phones_ask_for(pki: Pki, settings: Settings) -> None:
    site = Site.objects.create(name="Names")
    pool = Pool.objects.create(
        site=site, fqdn="pool01.example.org", internal_web_fqdn="web-int.example.org",
        external_web_fqdn="web.example.org",
    )  # fmt: skip
    Server.objects.create(pool=pool, fqdn="fe01.example.org")
    settings.SERVER_FQDN = "fe01.example.org"
    settings.READINESS_SIP_DOMAINS = ["example.org"]
    settings.READINESS_DHCP_DOMAINS = ["corp.example.org"]
    certificate, key = pki.pairs["good"]
    out = io.StringIO()
    call_command(
        "nginx_config", "--certificate", str(certificate), "--certificate-key", str(key),
        stdout=out,
    )  # fmt: skip
    names = re.findall(r"^    server_name (.*);$", out.getvalue(), re.MULTILINE)
    assert names == [
        "fe01.example.org pool01.example.org web-int.example.org ucupdates-r2 "
        "ucupdates-r2.example.org ucupdates-r2.corp.example.org",
        "web.example.org",
    ]


def test_nginx_config_takes_the_certificate_and_profile_from_the_environment(
    pki: Pki, settings: Settings
) -> None:
    certificate, key = pki.pairs["good"]
    other, other_key = pki.pairs["expiring"]
    settings.TLS_CERTIFICATE, settings.TLS_CERTIFICATE_KEY = str(certificate), str(key)
    settings.TLS_EXTERNAL_CERTIFICATE = str(other)
    settings.TLS_EXTERNAL_CERTIFICATE_KEY = str(other_key)
    settings.TLS_PROFILE = "legacy-phones"
    settings.TLS_PROTOCOLS = "TLSv1.2"
    out = io.StringIO()
    call_command("nginx_config", stdout=out)
    text = out.getvalue()
    assert re.findall(r"^    ssl_certificate (.*);$", text, re.MULTILINE) == [
        str(certificate),
        str(other),
    ]
    assert "\nssl_protocols TLSv1.2;\n" in text
    assert ":@SECLEVEL=0;\n" in text
