"""Audit rows, written by services in the same transaction as the change they record."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser, User
from django.db import models

from portal.models import AuditEntry
from portal.services.audit_stream import audit_stream_queue


@dataclass(frozen=True)
class Actor:
    """Who makes a change: a signed-in user, or a named system entry point."""

    user: User | None
    name: str

    @classmethod
    def of_user(cls, user: AbstractBaseUser | AnonymousUser) -> Actor:
        if not isinstance(user, User):
            raise ValueError("changes need a signed-in user")
        return cls(user=user, name=user.get_username())

    @classmethod
    def system(cls, name: str) -> Actor:
        return cls(user=None, name=name)


def _jsonable(value: Any) -> Any:
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, models.Model):
        return str(value)
    if isinstance(value, list | tuple):
        return [_jsonable(item) for item in value]
    return value


def snapshot(obj: models.Model, fields: Iterable[str]) -> dict[str, Any]:
    """The given fields of ``obj`` as JSON-ready values (foreign keys by their text)."""
    return {name: _jsonable(getattr(obj, name)) for name in fields}


def diff(before: dict[str, Any], after: dict[str, Any]) -> dict[str, list[Any]]:
    """``{field: [before, after]}`` for every field whose value changed."""
    return {
        name: [before.get(name), after.get(name)]
        for name in sorted(set(before) | set(after))
        if before.get(name) != after.get(name)
    }


def audit_record(
    *, actor: Actor, action: str, obj: models.Model, changes: dict[str, list[Any]]
) -> AuditEntry:
    """Write one audit row; call it inside the transaction that makes the change.
    Once committed, the row also goes to the audit stream (``DEVICEUPDATE_AUDIT_SINK``)."""
    entry = AuditEntry.objects.create(
        actor=actor.user,
        actor_name=actor.name[:150],
        action=action,
        object_type=obj._meta.label_lower,
        object_id=str(obj.pk),
        object_repr=str(obj)[:400],
        changes=changes,
    )
    audit_stream_queue(entry=entry)
    return entry
