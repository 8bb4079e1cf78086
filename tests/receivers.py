"""Receivers the webhook and audit-stream tests send to, on loopback, in threads: an HTTP
server that checks each delivery's signature and answers scripted statuses, and syslog
receivers over UDP and TCP (RFC 6587 octet counting)."""

from __future__ import annotations

import hashlib
import hmac
import socketserver
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes
    signature_ok: bool
    answered: int


@dataclass
class WebhookReceiver:
    """Answers each POST with the next of ``statuses`` (then 200); records every one."""

    secret: str
    statuses: list[int]
    stall: threading.Event | None = None  # set: answer; unset: hang until released
    received: list[Received] = field(default_factory=list)
    url: str = ""

    def verify(self, headers: dict[str, str], body: bytes) -> bool:
        """The check the README shows a receiver making."""
        timestamp = headers.get("X-DeviceUpdate-Timestamp", "")
        expected = hmac.new(
            self.secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256
        ).hexdigest()
        return hmac.compare_digest(
            headers.get("X-DeviceUpdate-Signature", ""), f"sha256={expected}"
        )


@contextmanager
def webhook_receiver(
    secret: str, statuses: list[int], *, stall: threading.Event | None = None
) -> Iterator[WebhookReceiver]:
    receiver = WebhookReceiver(secret=secret, statuses=list(statuses), stall=stall)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            headers = dict(self.headers.items())
            if receiver.stall is not None:
                receiver.stall.wait(30)
            status = receiver.statuses.pop(0) if receiver.statuses else 200
            receiver.received.append(
                Received(headers, body, receiver.verify(headers, body), status)
            )
            self.send_response(status)
            if status in (301, 302):
                self.send_header("Location", "http://127.0.0.1:9/elsewhere")
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    receiver.url = f"http://127.0.0.1:{server.server_address[1]}/hooks/device-update"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        if stall is not None:
            stall.set()
        server.shutdown()
        server.server_close()
        thread.join(10)


@dataclass
class SyslogReceiver:
    address: tuple[str, int]
    messages: list[bytes] = field(default_factory=list)


@contextmanager
def udp_syslog_receiver() -> Iterator[SyslogReceiver]:
    """One message per datagram."""
    receiver: SyslogReceiver

    class Handler(socketserver.BaseRequestHandler):
        def handle(self) -> None:
            receiver.messages.append(self.request[0])

    server = socketserver.ThreadingUDPServer(("127.0.0.1", 0), Handler)
    receiver = SyslogReceiver(address=("127.0.0.1", server.server_address[1]))
    with _serving(server):
        yield receiver


@contextmanager
def tcp_syslog_receiver() -> Iterator[SyslogReceiver]:
    """Octet-counted frames (``LEN SP MSG``), any number per connection."""
    receiver: SyslogReceiver

    class Handler(socketserver.StreamRequestHandler):
        def handle(self) -> None:
            while True:
                length = b""
                while (char := self.rfile.read(1)) not in (b" ", b""):
                    length += char
                if not length:
                    return
                receiver.messages.append(self.rfile.read(int(length)))

    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    receiver = SyslogReceiver(address=("127.0.0.1", server.server_address[1]))
    with _serving(server):
        yield receiver


@contextmanager
def _serving(server: socketserver.BaseServer) -> Iterator[None]:
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)
