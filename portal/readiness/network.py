"""What the readiness checks share: the DNS resolver they ask (configurable, so a check
sees what the phones' DNS says), a deadline per check, connections to a named host
through that resolver, and this server's pool with its web URLs."""

from __future__ import annotations

import http.client
import ipaddress
import socket
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

import dns.exception
import dns.resolver
from django.conf import settings

from portal.models import Pool, Server


class CheckError(Exception):
    """A check could not reach what it checks; the message is one line saying why."""


class CheckTimeout(CheckError):
    """The check used up its time before it could decide (a WARN, not a FAIL)."""


TIMEOUT_FIX = "run the check again, or give it more time (DEVICEUPDATE_CHECK_TIMEOUT_SECONDS)"


class Deadline:
    """The time left of a check's timeout, for each of its network operations."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._end = time.monotonic() + seconds

    def left(self) -> float:
        remaining = self._end - time.monotonic()
        if remaining <= 0:
            raise CheckTimeout(f"the check ran out of its {self.seconds:g} s")
        return remaining


def resolver(deadline: Deadline) -> dns.resolver.Resolver:
    """The resolver the checks use: DEVICEUPDATE_DNS_SERVERS (and _PORT), else the
    system's; it gives up when the check's time is up."""
    if settings.READINESS_DNS_SERVERS:
        answer = dns.resolver.Resolver(configure=False)
        answer.nameservers = list(settings.READINESS_DNS_SERVERS)
        answer.port = settings.READINESS_DNS_PORT
    else:
        answer = dns.resolver.Resolver()
    answer.lifetime = deadline.left()
    answer.timeout = min(2.0, answer.lifetime)
    return answer


def addresses_of(name: str, deadline: Deadline) -> list[str]:
    """The IPv4 and IPv6 addresses ``name`` resolves to ([] when it does not exist)."""
    try:
        return [str(ipaddress.ip_address(name))]
    except ValueError:
        pass
    found: list[str] = []
    for kind in ("A", "AAAA"):
        try:
            found += [record.to_text() for record in resolver(deadline).resolve(name, kind)]
        except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
            continue
        except dns.exception.Timeout:
            raise CheckError(f"the DNS server did not answer for {name}") from None
        except dns.resolver.NoNameservers as error:
            raise CheckError(f"no DNS server answered for {name}: {error}") from None
    return found


def connect(host: str, port: int, deadline: Deadline) -> socket.socket:
    """A TCP connection to ``host`` (resolved through the checks' resolver)."""
    addresses = addresses_of(host, deadline)
    if not addresses:
        raise CheckError(f"{host} does not resolve")
    try:
        return socket.create_connection((addresses[0], port), timeout=deadline.left())
    except OSError as error:
        raise CheckError(f"cannot connect to {host}:{port} ({addresses[0]}): {error}") from None


@dataclass(frozen=True)
class Endpoint:
    """A base URL split into what a connection needs."""

    url: str
    scheme: str
    host: str
    port: int
    path: str

    @classmethod
    def parse(cls, url: str) -> Endpoint:
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        if scheme not in ("http", "https") or not parts.hostname:
            raise CheckError(f"{url!r} is not an http:// or https:// URL")
        port = parts.port or (443 if scheme == "https" else 80)
        return cls(url.rstrip("/"), scheme, parts.hostname, port, parts.path.rstrip("/"))


def trust_context() -> ssl.SSLContext:
    """TLS as a phone does it: the phones' trust bundle, never the OS store. Without a
    bundle configured the certificate is not verified (the certificate check says so)."""
    if settings.READINESS_TRUST_BUNDLE:
        context = ssl.create_default_context(cafile=settings.READINESS_TRUST_BUNDLE)
    else:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


class _Connection(http.client.HTTPSConnection):
    """HTTP or HTTPS to a host resolved through the checks' resolver, the Host header and
    the certificate's name being the URL's host."""

    def __init__(self, endpoint: Endpoint, deadline: Deadline) -> None:
        super().__init__(
            endpoint.host, endpoint.port, timeout=deadline.left(), context=trust_context()
        )
        self._endpoint = endpoint
        self._deadline = deadline

    def connect(self) -> None:
        self.sock = connect(self._endpoint.host, self._endpoint.port, self._deadline)
        if self._endpoint.scheme == "https":
            try:
                self.sock = self._context.wrap_socket(self.sock, server_hostname=self.host)  # type: ignore[attr-defined]
            except (ssl.SSLError, OSError) as error:
                self.sock.close()
                raise CheckError(f"TLS with {self._endpoint.url} failed: {error}") from None


@dataclass(frozen=True)
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes


def request(
    endpoint: Endpoint,
    path: str,
    deadline: Deadline,
    *,
    method: str = "GET",
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
    sink: Callable[[bytes], None] | None = None,
    max_body: int = 1024 * 1024,
) -> Answer:
    """One request. The body is kept up to ``max_body`` bytes, or, with ``sink``, each
    chunk is handed to it and nothing is kept (a whole image)."""
    connection = _Connection(endpoint, deadline)
    try:
        connection.request(method, endpoint.path + path, body=body, headers=headers or {})
        response = connection.getresponse()
        seen = {name.lower(): value for name, value in response.getheaders()}
        if sink is None:
            return Answer(response.status, seen, response.read(max_body))
        while chunk := response.read(256 * 1024):
            deadline.left()
            sink(chunk)
        return Answer(response.status, seen, b"")
    except (OSError, http.client.HTTPException) as error:
        raise CheckError(f"{method} {endpoint.url}{path} failed: {error}") from None
    finally:
        connection.close()


def this_pool() -> Pool | None:
    """The pool of the server this runs on (DEVICEUPDATE_SERVER_FQDN)."""
    server = Server.objects.select_related("pool").filter(fqdn=settings.SERVER_FQDN).first()
    return server.pool if server is not None else None


@dataclass(frozen=True)
class BaseUrls:
    """Where the synthetic phone and the certificate check reach this pool."""

    internal_http: str
    internal_https: str
    external_https: str


def base_urls(pool: Pool | None) -> BaseUrls:
    """The configured base URLs, else those of the pool's web FQDNs ('' when unknown)."""
    internal = pool.internal_web_fqdn if pool is not None else ""
    external = pool.external_web_fqdn if pool is not None else ""
    return BaseUrls(
        internal_http=settings.READINESS_INTERNAL_HTTP_URL
        or (f"http://{internal}" if internal else ""),
        internal_https=settings.READINESS_INTERNAL_HTTPS_URL
        or (f"https://{internal}" if internal else ""),
        external_https=settings.READINESS_EXTERNAL_HTTPS_URL
        or (f"https://{external}" if external else ""),
    )
