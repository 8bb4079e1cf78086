"""Who is asking: the client's address (trusted proxies only), and the external rules
of the phone protocol (403 / 401 / 429), checked through Django's auth backends."""

from __future__ import annotations

import base64
import binascii
import hashlib
import ipaddress
from dataclasses import dataclass

from django.conf import settings
from django.contrib.auth import authenticate, get_user_model
from django.core.cache import cache
from django.http import HttpRequest

from phones.choices import PhoneError


def client_address(request: HttpRequest) -> str | None:
    """REMOTE_ADDR, or the address a trusted reverse proxy forwarded for it."""
    remote = request.META.get("REMOTE_ADDR") or None
    if remote in settings.TRUSTED_PROXIES:
        forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")[-1].strip()
        try:
            return str(ipaddress.ip_address(forwarded))
        except ValueError:
            return remote
    return remote


@dataclass(frozen=True)
class ExternalRefusal:
    code: PhoneError
    message: str
    retry_after: int | None = None


def _user_id_name(user_id: str) -> str:
    return user_id.strip().removeprefix("sip:").strip().lower()


def _failure_keys(address: str | None, name: str) -> list[str]:
    # The name by its digest: a phone's UserID may hold spaces and any character, which
    # a cache key may not (Django's CacheKeyWarning), and is up to 256 characters.
    digest = hashlib.sha256(name.encode("utf-8", "surrogatepass")).hexdigest()[:32]
    return [f"phones:auth-failures:addr:{address}", f"phones:auth-failures:user:{digest}"]


def _throttled(keys: list[str]) -> bool:
    counts = cache.get_many(keys)
    return any(int(count) >= settings.EXTERNAL_AUTH_MAX_FAILURES for count in counts.values())


def _count_failure(keys: list[str]) -> None:
    for key in keys:
        if not cache.add(key, 1, timeout=settings.EXTERNAL_AUTH_WINDOW):
            try:
                cache.incr(key)
            except ValueError:  # expired between add and incr
                cache.add(key, 1, timeout=settings.EXTERNAL_AUTH_WINDOW)


def check_external(
    request: HttpRequest, *, user_id: str, address: str | None
) -> ExternalRefusal | None:
    """None when the external request may be answered; else the spec's refusal."""
    if not user_id:
        return ExternalRefusal(PhoneError.NO_SIGNED_IN_USER, "no user is signed in on the phone")
    name = _user_id_name(user_id)
    keys = _failure_keys(address, name)
    if _throttled(keys):
        return ExternalRefusal(
            PhoneError.TOO_MANY_REQUESTS,
            "too many failed sign-ins; try again later",
            retry_after=settings.EXTERNAL_AUTH_WINDOW,
        )
    header = request.META.get("HTTP_AUTHORIZATION", "")
    if not header:
        return ExternalRefusal(PhoneError.ANONYMOUS_NOT_SUPPORTED, "credentials are required")
    scheme, _, encoded = header.partition(" ")
    try:
        username, _, password = (
            base64.b64decode(encoded.strip(), validate=True).decode("utf-8").partition(":")
        )
    except (binascii.Error, UnicodeDecodeError):
        username = password = ""
    user = (
        authenticate(request, username=username, password=password)
        if scheme.lower() == "basic" and username
        else None
    )
    if user is None or not _is_user(user, name):
        _count_failure(keys)
        return ExternalRefusal(PhoneError.INVALID_CREDENTIALS, "the credentials are not valid")
    return None


def _is_user(user: object, name: str) -> bool:
    """The signed-in user of the phone is this account (by username or e-mail)."""
    model = get_user_model()
    username = getattr(user, model.USERNAME_FIELD, "") or ""
    email = getattr(user, "email", "") or ""
    return name in {str(username).lower(), str(email).lower()}
