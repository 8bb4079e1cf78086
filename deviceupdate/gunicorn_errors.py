"""gunicorn's own refusals (a request line past ``limit_request_line``, a malformed
header or chunk), as the phone protocol's XML error instead of gunicorn's HTML page.

gunicorn answers these before any application code runs, so neither Django nor the
phones' middleware sees them; its one writer of that page, ``gunicorn.util.write_error``,
is replaced in the master before the workers fork (``deploy/gunicorn.conf.py``,
``on_starting``). The status and gunicorn's one-line reason are kept. Behind nginx the
same requests end at nginx, whose error pages are the protocol's too (deploy/nginx).
"""

from __future__ import annotations

import socket
from xml.sax.saxutils import escape

from phones.choices import PhoneError


def xml_error(status: int, reason: str, message: str) -> bytes:
    """The whole HTTP answer gunicorn sends for a request it refuses, in XML."""
    body = (
        '<?xml version="1.0" encoding="utf-8"?>\n'
        f"<Error><Code>{PhoneError.INVALID_REQUEST._value_}</Code>"
        f"<Message>{escape(message or reason)}</Message></Error>"
    ).encode()
    head = (
        f"HTTP/1.1 {status} {reason}\r\nConnection: close\r\n"
        f"Content-Type: text/xml; charset=utf-8\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode("latin-1", "replace")
    return head + body


def install() -> None:
    """Make gunicorn write its refusals with ``xml_error``."""
    from gunicorn import util

    def write_error(sock: socket.socket, status_int: int, reason: str, mesg: str) -> None:
        util.write_nonblock(sock, xml_error(status_int, reason, mesg))

    util.write_error = write_error
