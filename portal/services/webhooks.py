"""Outbound webhooks: administrators register receivers of signed event deliveries.

Each delivery is one POST of ``{"event", "occurred_at", "data"}`` as JSON, signed with
HMAC-SHA256 over ``<timestamp>.<body>`` with the webhook's secret (the scheme is in the
README, "Webhooks and the audit stream"). Events are queued after the change that
caused them commits, one Celery task per subscribed webhook; each attempt is recorded.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import logging
import secrets
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from functools import partial
from typing import Any
from urllib.parse import urlsplit

import urllib3
from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from deviceupdate.dispatch import enqueue_now
from portal.choices import WebhookEvent
from portal.errors import DomainError
from portal.models import Webhook, WebhookDelivery
from portal.services.audit import Actor, audit_record, diff, snapshot

logger = logging.getLogger(__name__)

EVENTS = frozenset(WebhookEvent.values)
FIELDS = ("name", "url", "events", "enabled")
MAX_NAME_LENGTH = 100
MAX_URL_LENGTH = 500
MIN_SECRET_LENGTH = 16
MAX_SECRET_LENGTH = 200
# 4xx answers that say "try again later"; every other 4xx is final.
RETRIED_CLIENT_ERRORS = frozenset({408, 429})

TIMESTAMP_HEADER = "X-DeviceUpdate-Timestamp"
SIGNATURE_HEADER = "X-DeviceUpdate-Signature"
EVENT_HEADER = "X-DeviceUpdate-Event"
DELIVERY_HEADER = "X-DeviceUpdate-Delivery"
USER_AGENT = "DeviceUpdate-Webhooks/1"


# --- Checks -------------------------------------------------------------------------


def webhook_url_check(url: str) -> str:
    """The URL, stripped, if a webhook may be sent to it; DomainError naming why not."""
    text = url.strip()
    if not text:
        raise DomainError("give the URL the events are sent to", field="url")
    if len(text) > MAX_URL_LENGTH:
        raise DomainError(f"the URL is longer than {MAX_URL_LENGTH} characters", field="url")
    if not text.isascii() or any(c.isspace() or not c.isprintable() for c in text):
        raise DomainError(
            "the URL may hold only printable ASCII without spaces "
            "(an international host name in its xn-- form)",
            field="url",
        )
    parts = urlsplit(text)
    if parts.scheme.lower() not in ("http", "https"):
        raise DomainError(
            f"the URL must start with http:// or https:// (not {parts.scheme or 'nothing'!r})",
            field="url",
        )
    if "@" in parts.netloc:
        raise DomainError(
            "the URL must not hold credentials (user:password@): deliveries are signed "
            "with the webhook's secret instead",
            field="url",
        )
    if not parts.hostname:
        raise DomainError("the URL names no host", field="url")
    try:
        port = parts.port
    except ValueError:
        port = 0
    if port == 0:
        raise DomainError("the URL's port must be a number from 1 to 65535", field="url")
    if parts.fragment:
        raise DomainError("the URL must not have a fragment (#...)", field="url")
    return text


def _checked_name(name: str) -> str:
    text = name.strip()
    if not text or len(text) > MAX_NAME_LENGTH or not text.isprintable():
        raise DomainError(
            f"the name must be 1 to {MAX_NAME_LENGTH} printable characters", field="name"
        )
    return text


def _checked_events(events: Iterable[str]) -> list[str]:
    chosen = sorted(set(events))
    unknown = [event for event in chosen if event not in EVENTS]
    if unknown:
        raise DomainError(
            f"unknown event {unknown[0]!r} (one of: {', '.join(WebhookEvent.values)})",
            field="events",
        )
    if not chosen:
        raise DomainError("choose at least one event", field="events")
    return chosen


def _checked_secret(secret: str) -> str:
    if not (MIN_SECRET_LENGTH <= len(secret) <= MAX_SECRET_LENGTH) or not (
        secret.isascii() and secret.isprintable() and " " not in secret
    ):
        raise DomainError(
            f"the secret must be {MIN_SECRET_LENGTH} to {MAX_SECRET_LENGTH} printable ASCII "
            "characters without spaces (leave it empty to have one generated)",
            field="secret",
        )
    return secret


def _save(webhook: Webhook) -> None:
    clash = Webhook.objects.filter(name__iexact=webhook.name).exclude(pk=webhook.pk)
    if clash.exists():
        raise DomainError(f"a webhook named {webhook.name!r} already exists", field="name")
    try:
        with transaction.atomic():
            webhook.save()
    except IntegrityError:
        raise DomainError(
            f"a webhook named {webhook.name!r} already exists", field="name"
        ) from None


# --- Changes (audited; the secret itself never enters the audit trail) -------------


def webhook_register(
    *,
    name: str,
    url: str,
    events: Iterable[str],
    actor: Actor,
    secret: str | None = None,
    enabled: bool = True,
) -> Webhook:
    """Register a receiver; without a secret one is generated (read it from the row)."""
    webhook = Webhook(
        name=_checked_name(name),
        url=webhook_url_check(url),
        events=_checked_events(events),
        secret=_checked_secret(secret) if secret else secrets.token_urlsafe(32),
        enabled=enabled,
    )
    with transaction.atomic():
        _save(webhook)
        audit_record(
            actor=actor,
            action="portal.webhook.registered",
            obj=webhook,
            changes={
                **diff({}, snapshot(webhook, FIELDS)),
                "secret": [None, "given" if secret else "generated"],
            },
        )
    return webhook


def webhook_change(
    *,
    webhook: Webhook,
    actor: Actor,
    name: str | None = None,
    url: str | None = None,
    events: Iterable[str] | None = None,
    secret: str | None = None,
    enabled: bool | None = None,
) -> Webhook:
    """Change what is given (None keeps a value; a given secret replaces the old one)."""
    checked: dict[str, Any] = {}
    if name is not None:
        checked["name"] = _checked_name(name)
    if url is not None:
        checked["url"] = webhook_url_check(url)
    if events is not None:
        checked["events"] = _checked_events(events)
    if secret:
        checked["secret"] = _checked_secret(secret)
    if enabled is not None:
        checked["enabled"] = enabled
    with transaction.atomic():
        webhook = _locked(webhook)
        before = snapshot(webhook, FIELDS)
        old_secret = webhook.secret
        for field, value in checked.items():
            setattr(webhook, field, value)
        changes = diff(before, snapshot(webhook, FIELDS))
        if webhook.secret != old_secret:
            changes["secret"] = ["set", "replaced"]
        if not changes:
            return webhook
        _save(webhook)
        audit_record(actor=actor, action="portal.webhook.changed", obj=webhook, changes=changes)
    return webhook


def webhook_disable(*, webhook: Webhook, actor: Actor) -> Webhook:
    """Stop sending to it (deliveries already queued are dropped when they run)."""
    with transaction.atomic():
        webhook = _locked(webhook)
        if not webhook.enabled:
            raise DomainError(f"the webhook {webhook.name!r} is already disabled", field="enabled")
        webhook.enabled = False
        webhook.save(update_fields=["enabled", "updated_at"])
        audit_record(
            actor=actor,
            action="portal.webhook.disabled",
            obj=webhook,
            changes={"enabled": [True, False]},
        )
    return webhook


def webhook_remove(*, webhook: Webhook, actor: Actor) -> None:
    """Remove it and its recorded attempts."""
    with transaction.atomic():
        webhook = _locked(webhook)
        audit_record(
            actor=actor,
            action="portal.webhook.removed",
            obj=webhook,
            changes=diff(snapshot(webhook, FIELDS), {}),
        )
        webhook.delete()


def _locked(webhook: Webhook) -> Webhook:
    locked = Webhook.objects.select_for_update().filter(pk=webhook.pk).first()
    if locked is None:
        raise DomainError(f"the webhook {webhook.name!r} no longer exists", code="not_found")
    return locked


# --- Events -------------------------------------------------------------------------


def _json_default(value: Any) -> Any:
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    return str(value)


def webhook_event_emit(*, event: WebhookEvent, payload: dict[str, Any]) -> None:
    """Once the current transaction commits, queue one delivery of ``event`` to every
    enabled webhook subscribed to it. Never raises: an event that cannot be queued is
    logged, and the change that caused it stands."""
    try:
        body = json.dumps(
            {
                "event": WebhookEvent(event).value,
                "occurred_at": timezone.now().isoformat(),
                "data": payload,
            },
            sort_keys=True,
            separators=(",", ":"),
            default=_json_default,
        )
        transaction.on_commit(partial(_queue_deliveries, event=str(event), body=body), robust=True)
    except Exception:
        logger.exception("the webhook event %s could not be queued", event)


def _queue_deliveries(*, event: str, body: str) -> int:
    try:
        subscribed = [
            pk
            for pk, events in Webhook.objects.filter(enabled=True).values_list("pk", "events")
            if event in events
        ]
    except Exception:
        logger.exception("the webhooks of %s could not be read; not sent", event)
        return 0
    queued = 0
    for webhook_id in subscribed:
        try:
            # After commit: the rows the event describes are committed already.
            enqueue_now(
                "portal.tasks.webhook_deliver_task",
                webhook_id=webhook_id,
                event=event,
                body=body,
                delivery_id=str(uuid.uuid4()),
            )
            queued += 1
        except Exception:
            logger.exception("the %s delivery to webhook %s could not be queued", event, webhook_id)
    return queued


# --- Delivery -----------------------------------------------------------------------


def webhook_signature(*, secret: str, timestamp: str, body: bytes) -> str:
    """``sha256=`` and the hex HMAC-SHA256, keyed by the secret, of ``timestamp.body``."""
    mac = hmac.new(secret.encode(), timestamp.encode("ascii") + b"." + body, hashlib.sha256)
    return f"sha256={mac.hexdigest()}"


def webhook_retry_delay(*, attempt: int) -> int:
    """Seconds to wait after failed attempt ``attempt`` (1, 2, ...) before the next."""
    delay: int = settings.WEBHOOK_BACKOFF_SECONDS * 2 ** (attempt - 1)
    return min(delay, settings.WEBHOOK_BACKOFF_MAX_SECONDS)


@dataclass(frozen=True)
class DeliveryOutcome:
    delivery: WebhookDelivery
    # Seconds until the next attempt, or None when this one was the last.
    retry_in: int | None


def _describe(error: Exception) -> str:
    """One line for a failed attempt (the URL is in the webhook, not repeated here)."""
    # NewConnectionError is a TimeoutError too (urllib3 keeps it so for compatibility).
    timeout = isinstance(error, urllib3.exceptions.TimeoutError)
    if timeout and not isinstance(error, urllib3.exceptions.NewConnectionError):
        return f"no answer within {settings.WEBHOOK_TIMEOUT_SECONDS} s"
    text = str(error)
    if isinstance(error, urllib3.exceptions.NewConnectionError):
        text = text.partition("): ")[2] or text  # drop "HTTPConnection(host=..., port=...)"
    text = text or type(error).__name__
    return " ".join(text.split())[:400]


def webhook_deliver(
    *, webhook: Webhook, event: str, body: str, delivery_id: str, attempt: int
) -> DeliveryOutcome:
    """Send one attempt, signed now, and record it. A connection error, a timeout, a 5xx,
    408 or 429 is retried until ``DEVICEUPDATE_WEBHOOK_MAX_ATTEMPTS``; nothing else is.
    Redirects are not followed (the signed body goes only where it was registered)."""
    data = body.encode()
    timestamp = str(int(time.time()))
    headers = {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        EVENT_HEADER: event,
        DELIVERY_HEADER: delivery_id,
        TIMESTAMP_HEADER: timestamp,
        SIGNATURE_HEADER: webhook_signature(secret=webhook.secret, timestamp=timestamp, body=data),
    }
    attempted_at = timezone.now()
    started = time.monotonic()
    status: int | None = None
    error = ""
    try:
        with urllib3.PoolManager(retries=False) as http:
            response = http.request(
                "POST",
                webhook.url,
                body=data,
                headers=headers,
                timeout=urllib3.Timeout(total=settings.WEBHOOK_TIMEOUT_SECONDS),
                redirect=False,
                preload_content=False,  # the receiver's body is not needed; never read
            )
            status = response.status
            response.release_conn()
    except urllib3.exceptions.HTTPError as failure:
        error = _describe(failure)
    transient = status is None or status >= 500 or status in RETRIED_CLIENT_ERRORS
    delivery = WebhookDelivery.objects.create(
        webhook=webhook,
        delivery_id=delivery_id,
        event=event,
        attempt=attempt,
        attempted_at=attempted_at,
        status_code=status,
        error=error,
        duration_ms=round((time.monotonic() - started) * 1000),
    )
    retry_in = None
    if transient and attempt < settings.WEBHOOK_MAX_ATTEMPTS:
        retry_in = webhook_retry_delay(attempt=attempt)
    return DeliveryOutcome(delivery=delivery, retry_in=retry_in)
