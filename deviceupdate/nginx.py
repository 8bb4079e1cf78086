"""The nginx configuration of one server, rendered from its settings."""

from __future__ import annotations

from pathlib import Path

from django.conf import settings

DEPLOY_DIR = Path(__file__).resolve().parent.parent / "deploy" / "nginx"
_PATHS = frozenset({"STORE_DIR", "DOWNLOAD_LOG"})


def render_nginx_config(
    *,
    listen: str,
    server_name: str,
    upstream: str,
    store_dir: Path | None = None,
    download_log: Path | None = None,
) -> str:
    """deploy/nginx/deviceupdate.conf.template with this server's values filled in.

    nginx does not create directories: the download log's must exist before it starts
    (``manage.py nginx_config`` creates it).
    """
    values = {
        "LISTEN": listen,
        "SERVER_NAME": server_name,
        "UPSTREAM": upstream,
        "STORE_DIR": str((store_dir or settings.SERVER_STORE_DIR).resolve()),
        "MAX_DOWNLOADS": str(settings.DOWNLOAD_MAX_CONCURRENT),
        "DOWNLOAD_LOG": str((download_log or settings.DOWNLOAD_ACCESS_LOG).resolve()),
        "RETRY_AFTER": str(settings.DOWNLOAD_RETRY_AFTER),
        "PHONE_MAX_BODY": "2m",
        "UPLOAD_MAX_BODY": str(settings.IMPORT_MAX_PACKAGE_SIZE),
        # Forms and JSON: Django itself refuses more than DATA_UPLOAD_MAX_MEMORY_SIZE.
        "PANEL_MAX_BODY": "8m",
        "PROXY_SNIPPET": str(DEPLOY_DIR / "deviceupdate-proxy.snippet"),
    }
    text = (DEPLOY_DIR / "deviceupdate.conf.template").read_text()
    for name, value in values.items():
        if any(character in value for character in ";{}\n'\""):
            raise ValueError(f"{name} contains characters nginx would misread: {value!r}")
        if name in _PATHS and any(character in value for character in "$ \t"):
            # Unquoted in the template: a space splits the directive, "$" names a variable.
            raise ValueError(f"{name} contains characters nginx would misread: {value!r}")
        text = text.replace(f"@@{name}@@", value)
    return text
