"""Who is asking: the client's address (trusted proxies only), and the external rules
of the phone protocol (403 / 401 / 429; 503 when the directory cannot be asked),
checked through Django's auth backends (the directory's among them when configured)."""

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
from django.utils.crypto import salted_hmac

from phones.choices import PhoneError
from portal.directory.accounts import local_password_account
from portal.directory.outage import directory_watch


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
    username, password = _basic_credentials(encoded)
    names = (
        _signed_in_names(request, username, password)
        if scheme.lower() == "basic" and username
        else None
    )
    if isinstance(names, ExternalRefusal):
        # Still counted for the user (not for the address, which a whole office may
        # share): else during an outage anyone could guess at the passwords that cached
        # sign-ins still answer.
        _count_failure(keys[1:])
        return names
    if names is None or name not in names:
        _count_failure(keys)
        return ExternalRefusal(PhoneError.INVALID_CREDENTIALS, "the credentials are not valid")
    return None


def _basic_credentials(encoded: str) -> tuple[str, str]:
    """Basic's ``user:password``. A user may be a SIP address, ``sip:user@domain``, whose
    own colon does not end it (a password may hold colons; a user name cannot)."""
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return "", ""
    prefix = "sip:" if decoded[:4].lower() == "sip:" else ""
    username, _, password = decoded[len(prefix) :].partition(":")
    return (decoded[:4] + username if prefix else username), password


def _signed_in_names(
    request: HttpRequest, username: str, password: str
) -> frozenset[str] | ExternalRefusal | None:
    """The names the UserID may give for the account these credentials sign in to; None
    when they sign in to none; a 503 refusal when the directory could not be asked."""
    directory = settings.DIRECTORY
    key = _success_key(username, password) if directory and directory.cache_seconds else None
    if key is not None:
        cached = cache.get(key)
        if cached is not None:
            return frozenset(cached)
    with directory_watch() as watch:
        user = authenticate(request, username=username, password=password)
    if user is None:
        # A local account's wrong password is still a failure (counted, 401): an outage
        # must not open the break-glass accounts to unthrottled guessing.
        if watch.unreachable and directory is not None and not local_password_account(username):
            # Not the user's fault: a 401 would make the phone prompt for a password.
            return ExternalRefusal(
                PhoneError.BUSY,
                "the directory cannot be reached; try again later",
                retry_after=directory.retry_after,
            )
        return None
    directory_names: frozenset[str] | None = getattr(user, "directory_names", None)
    if directory_names is None:
        return _local_names(user)
    if key is not None:
        assert directory is not None
        cache.set(key, sorted(directory_names), timeout=directory.cache_seconds)
    return directory_names


def _success_key(username: str, password: str) -> str:
    """A boot storm signs the same users in again and again: a directory sign-in that
    succeeded is kept for ``DEVICEUPDATE_LDAP_CACHE_SECONDS`` under a keyed hash of the
    credentials (never the password itself, nor a plain hash one could guess against)."""
    digest = salted_hmac(
        "phones.auth.directory-sign-in", f"{username}\x00{password}", algorithm="sha256"
    ).hexdigest()
    return f"phones:directory-sign-in:{digest}"


def _local_names(user: object) -> frozenset[str]:
    """A local account answers to its username and its e-mail address."""
    model = get_user_model()
    username = getattr(user, model.USERNAME_FIELD, "") or ""
    email = getattr(user, "email", "") or ""
    return frozenset(name for name in (str(username).lower(), str(email).lower()) if name)
