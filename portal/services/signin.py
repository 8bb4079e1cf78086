"""Sign-in lockouts (django-axes): recorded in the audit trail, lifted by administrators.

django-axes counts failed password sign-ins and refuses them at the limit (settings:
``DEVICEUPDATE_SIGNIN_*``); these services are the two changes people see: the lockout
itself, audited as the system's, and an administrator lifting it, audited as theirs.
"""

from __future__ import annotations

from axes.models import AccessAttempt
from axes.utils import reset
from django.conf import settings
from django.contrib.auth.models import User
from django.db import transaction
from django.db.models import Sum

from portal.choices import WebhookEvent
from portal.errors import DomainError
from portal.services.audit import Actor, audit_record
from portal.services.webhooks import webhook_event_emit

SIGNIN_ACTOR = "sign-in lockout"


def _account(username: str) -> User:
    """The account named ``username``; an unsaved one when there is none (an attacker's
    guess), so the audit row still names what was tried (its object id is then "None")."""
    return User.objects.filter(username=username).first() or User(username=username)


def signin_lockout_record(*, username: str, address: str | None, failures: int) -> None:
    """Audit that sign-ins of ``username`` from ``address`` just locked, as the system."""
    with transaction.atomic():
        audit_record(
            actor=Actor.system(SIGNIN_ACTOR),
            action="portal.signin.locked_out",
            obj=_account(username),
            changes={
                "address": [None, address],
                "failures": [None, failures],
                "cooloff_minutes": [None, settings.SIGNIN_COOLOFF_MINUTES],
            },
        )
        webhook_event_emit(
            event=WebhookEvent.SIGNIN_LOCKED_OUT,
            payload={"username": username, "address": address, "failures": failures,
                     "cooloff_minutes": settings.SIGNIN_COOLOFF_MINUTES},
        )  # fmt: skip


def signin_lockout_lift(*, username: str, address: str | None, actor: Actor) -> int:
    """Let ``username`` sign in from ``address`` again, audited; the failures removed.

    Both rules are lifted: the address's failures count for every username tried from
    it, so all of them go (without an address, the username's own). A refusal when
    nothing is recorded for them: there is no lockout to lift.
    """
    with transaction.atomic():
        if address is not None:
            attempts = AccessAttempt.objects.filter(ip_address=address)
        else:
            attempts = AccessAttempt.objects.filter(username=username)
        failures = attempts.aggregate(total=Sum("failures_since_start"))["total"] or 0
        if failures == 0:
            where = f" from {address}" if address else ""
            raise DomainError(f"no failed sign-ins of {username!r}{where} are recorded")
        if address is not None:
            reset(ip=address)
        else:
            reset(username=username)
        audit_record(
            actor=actor,
            action="portal.signin.lockout_lifted",
            obj=_account(username),
            changes={"address": [address, None], "failures": [failures, 0]},
        )
    return failures
