"""Real servers the deployment tests start on loopback: Debian's nginx (with a given
server configuration), dnsmasq as a DNS server and chronyd as an NTP server. Each is
started in the foreground, waited for with a deadline, and stopped by its own pid."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from deviceupdate.nginx import TlsFiles, render_nginx_config
from tests.conftest import free_port, missing_service
from tests.deploy.tls import Pki


def tool(name: str) -> str:
    """Path of a Debian tool (skips, or fails in CI, when missing)."""
    path = shutil.which(name) or shutil.which(name, path="/usr/sbin:/sbin")
    if path is None:
        missing_service(f"needs the Debian tool {name!r} (apt-get install)")
    assert path is not None
    return path


def _wait(process: subprocess.Popen[bytes], ready: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + 20
    while not ready():
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            _, err = process.communicate()
            pytest.fail(f"{what} did not start: {err.decode(errors='replace')}")
        time.sleep(0.05)


def stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
    if process.stderr is not None:
        process.stderr.close()


def _tcp_open(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except OSError:
        return False
    return True


def start_nginx(prefix: Path, server_conf: str, ports: list[int]) -> subprocess.Popen[bytes]:
    """nginx with ``server_conf`` in its http block, once every port in ``ports`` listens."""
    binary = tool("nginx")
    prefix.mkdir(parents=True, exist_ok=True)
    (prefix / "server.conf").write_text(server_conf)
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
    _wait(process, lambda: all(_tcp_open(port) for port in ports), "nginx")
    return process


def _dns_answers(port: int) -> bool:
    import dns.exception
    import dns.message
    import dns.query

    try:
        dns.query.udp(
            dns.message.make_query("ready.test", "A"), "127.0.0.1", port=port, timeout=0.5
        )
    except (dns.exception.Timeout, OSError):
        return False
    return True


def start_dnsmasq(port: int, records: list[str]) -> subprocess.Popen[bytes]:
    """dnsmasq answering only from ``records`` (its own options, e.g.
    ``--host-record=name,address``) on 127.0.0.1:``port``; no upstream, no system files."""
    process = subprocess.Popen(
        [
            tool("dnsmasq"), "--keep-in-foreground", "--conf-file=/dev/null", "--no-resolv",
            "--no-hosts", f"--port={port}", "--listen-address=127.0.0.1", "--bind-interfaces",
            "--user=root", "--pid-file", "--local=/test/", *records,
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )  # fmt: skip
    _wait(process, lambda: _dns_answers(port), "dnsmasq")
    return process


def _ntp_answers(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(0.5)
        try:
            sock.sendto(b"\x23" + 47 * b"\0", ("127.0.0.1", port))
            return len(sock.recvfrom(512)[0]) >= 48
        except OSError:
            return False


def start_chronyd(folder: Path, port: int) -> subprocess.Popen[bytes]:
    """chronyd serving its own clock (``local stratum 8``) to 127.0.0.1 on UDP ``port``,
    never touching this machine's clock (-x), its files in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    conf = folder / "chrony.conf"
    conf.write_text(
        f"port {port}\nbindaddress 127.0.0.1\nallow 127.0.0.1\nlocal stratum 8\n"
        f"cmdport 0\npidfile {folder}/chronyd.pid\ndriftfile {folder}/chrony.drift\n"
    )
    process = subprocess.Popen(
        [tool("chronyd"), "-d", "-x", "-u", "root", "-f", str(conf)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    _wait(process, lambda: _ntp_answers(port), "chronyd")
    return process


@dataclass(frozen=True)
class Listeners:
    http: int
    https: int
    external: int


def start_tls_nginx(
    folder: Path, pki: Pki, upstream: str
) -> tuple[Listeners, subprocess.Popen[bytes]]:
    """The rendered configuration with all three listeners, the test CA's good
    certificate, and 127.0.0.1 as the external side's trusted reverse proxy."""
    listeners = Listeners(free_port(), free_port(), free_port())
    certificate, key = pki.pairs["good"]
    config = render_nginx_config(
        listen=f"127.0.0.1:{listeners.http}",
        listen_https=f"127.0.0.1:{listeners.https}",
        listen_external=f"127.0.0.1:{listeners.external}",
        server_name="pool01.example.org ucupdates-r2 ucupdates-r2.example.org",
        external_server_name="web.example.org",
        upstream=upstream,
        internal_tls=TlsFiles(certificate, key),
        external_tls=TlsFiles(certificate, key),
        external_proxies=("127.0.0.1",),
    )
    ports = [listeners.http, listeners.https, listeners.external]
    return listeners, start_nginx(folder, config, ports)
