"""The nginx configuration of one server, rendered from its settings: the internal
listeners (plain HTTP, as phones inside use it, and HTTPS) and the external HTTPS
listener for what the reverse proxy publishes."""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.template import Context, Engine

DEPLOY_DIR = Path(__file__).resolve().parent.parent / "deploy" / "nginx"

# TLS 1.2 and 1.3 with forward-secret AEAD ciphers (Mozilla's "intermediate" list):
# what current phone firmware, browsers and reverse proxies speak.
MODERN_PROTOCOLS = "TLSv1.2 TLSv1.3"
MODERN_CIPHERS = (
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:"
    "ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305:"
    "DHE-RSA-AES128-GCM-SHA256:DHE-RSA-AES256-GCM-SHA384"
)
# Older phone firmware (the Lync 2010 generation) speaks TLS 1.0 with RSA key exchange
# and AES-CBC-SHA ciphers only. OpenSSL 3 refuses those below security level 0. The risk:
# no forward secrecy, CBC-mode ciphers, and protocol versions with known weaknesses
# (BEAST, POODLE-style downgrade): use it only while such phones remain, ideally on a
# listener of its own.
LEGACY_PROTOCOLS = "TLSv1 TLSv1.1 TLSv1.2 TLSv1.3"
LEGACY_CIPHERS = (
    f"{MODERN_CIPHERS}:ECDHE-RSA-AES128-SHA:ECDHE-RSA-AES256-SHA:AES128-SHA:AES256-SHA:@SECLEVEL=0"
)
TLS_PROFILES = {
    "modern": (MODERN_PROTOCOLS, MODERN_CIPHERS),
    "legacy-phones": (LEGACY_PROTOCOLS, LEGACY_CIPHERS),
}

_PROTOCOLS = frozenset({"TLSv1", "TLSv1.1", "TLSv1.2", "TLSv1.3"})
_LISTEN = re.compile(r"^(?:(?:\d{1,3}(?:\.\d{1,3}){3}|\[[0-9A-Fa-f:.]+\]|\*):)?(\d{1,5})$")
_CIPHERS = re.compile(r"^[A-Za-z0-9_:+@=!.-]+$")
_NAME = re.compile(r"^[A-Za-z0-9.*_-]+$")


class NginxConfigError(ValueError):
    """A value nginx would misread, or a listener that cannot work; the message is one
    line naming the value."""


@dataclass(frozen=True)
class TlsFiles:
    """A certificate (leaf first, then its intermediates) and its private key."""

    certificate: Path
    key: Path


def _checked_path(name: str, path: Path) -> str:
    value = str(path.resolve())
    # Unquoted in the template: a space splits the directive, "$" names a variable.
    if any(character in value for character in ";{}\n'\"$ \t"):
        raise NginxConfigError(f"{name} contains characters nginx would misread: {value!r}")
    return value


def _checked_listen(name: str, value: str) -> str:
    match = _LISTEN.match(value)
    if match is None or not 1 <= int(match.group(1)) <= 65535:
        raise NginxConfigError(
            f"{name} is not a port or address:port nginx can listen on: {value!r}"
        )
    return value


def _checked_text(name: str, value: str) -> str:
    if any(character in value for character in ";{}\n'\""):
        raise NginxConfigError(f"{name} contains characters nginx would misread: {value!r}")
    return value


def tls_settings(*, profile: str, protocols: str | None, ciphers: str | None) -> tuple[str, str]:
    """The protocols and ciphers of a profile, each overridden when given."""
    if profile not in TLS_PROFILES:
        raise NginxConfigError(f"TLS profile {profile!r} is not one of {', '.join(TLS_PROFILES)}")
    default_protocols, default_ciphers = TLS_PROFILES[profile]
    protocols = " ".join((protocols or default_protocols).split())
    unknown = [item for item in protocols.split() if item not in _PROTOCOLS]
    if unknown:
        raise NginxConfigError(
            f"TLS protocols: {' '.join(unknown)} not among {' '.join(sorted(_PROTOCOLS))}"
        )
    ciphers = ciphers or default_ciphers
    if not _CIPHERS.match(ciphers):
        raise NginxConfigError(f"TLS ciphers contain characters nginx would misread: {ciphers!r}")
    return protocols, ciphers


def render_nginx_config(
    *,
    listen: str,
    server_name: str,
    upstream: str,
    store_dir: Path | None = None,
    download_log: Path | None = None,
    listen_https: str = "443",
    internal_tls: TlsFiles | None = None,
    listen_external: str = "4443",
    external_server_name: str = "",
    external_tls: TlsFiles | None = None,
    external_proxies: tuple[str, ...] = (),
    tls_profile: str = "modern",
    tls_protocols: str | None = None,
    tls_ciphers: str | None = None,
) -> str:
    """deploy/nginx/deviceupdate.conf.template with this server's values filled in.

    ``listen`` is the internal plain-HTTP listener; with ``internal_tls`` the internal
    server also listens with TLS on ``listen_https``; with ``external_tls`` an external
    server on ``listen_external`` serves only ``/RequestHandlerExt/`` and
    ``/DeviceUpdateFiles_Ext/``, believing X-Forwarded-For only from
    ``external_proxies`` (the reverse proxy's addresses). nginx does not create
    directories: the download log's must exist before it starts (``manage.py
    nginx_config`` creates it).
    """
    proxies = []
    for proxy in external_proxies:
        try:
            proxies.append(str(ipaddress.ip_network(proxy, strict=False)))
        except ValueError:
            raise NginxConfigError(
                f"reverse proxy {proxy!r} is not an IP address or network"
            ) from None
    names = server_name.split()
    for name in [*names, *external_server_name.split()]:
        if not _NAME.match(name):
            raise NginxConfigError(f"server name {name!r} is not a host name")
    protocols, ciphers = tls_settings(
        profile=tls_profile, protocols=tls_protocols, ciphers=tls_ciphers
    )
    values = {
        "listen_http": _checked_listen("the HTTP listener", listen),
        "listen_https": _checked_listen("the HTTPS listener", listen_https),
        "listen_external": _checked_listen("the external listener", listen_external),
        "server_name": " ".join(names),
        "external_server_name": " ".join(external_server_name.split()) or "_",
        "upstream": _checked_text("UPSTREAM", upstream),
        "store_dir": _checked_path("STORE_DIR", store_dir or settings.SERVER_STORE_DIR),
        "max_downloads": str(settings.DOWNLOAD_MAX_CONCURRENT),
        "download_log": _checked_path("DOWNLOAD_LOG", download_log or settings.DOWNLOAD_ACCESS_LOG),
        "retry_after": str(settings.DOWNLOAD_RETRY_AFTER),
        "phone_max_body": "2m",
        "upload_max_body": str(settings.IMPORT_MAX_PACKAGE_SIZE),
        # Forms and JSON: Django itself refuses more than DATA_UPLOAD_MAX_MEMORY_SIZE.
        "panel_max_body": "8m",
        "proxy_snippet": _checked_path("PROXY_SNIPPET", DEPLOY_DIR / "deviceupdate-proxy.snippet"),
        "internal_tls": _tls_values("the internal certificate", internal_tls),
        "external_tls": _tls_values("the external certificate", external_tls),
        "external_proxies": proxies,
        "tls_protocols": protocols,
        "tls_ciphers": ciphers,
        "tls_prefer_server_ciphers": "on" if "TLSv1 " in f"{protocols} " else "off",
    }
    engine = Engine(dirs=[str(DEPLOY_DIR)], autoescape=False)
    return engine.get_template("deviceupdate.conf.template").render(Context(values))


def _tls_values(name: str, files: TlsFiles | None) -> dict[str, str] | None:
    if files is None:
        return None
    for label, path in (("certificate", files.certificate), ("key", files.key)):
        if not path.is_file():
            raise NginxConfigError(f"{name}: no {label} file at {path}")
    return {
        "certificate": _checked_path(f"{name}'s file", files.certificate),
        "key": _checked_path(f"{name}'s key", files.key),
    }
