"""E-mail to the administrators when a rollout halts or completes: who gets it and what
it says. Sent by ``portal.tasks.rollout_notify_task``, queued after the transition's
commit, so a slow mail server never holds the request that moved the rollout."""

from __future__ import annotations

import logging

from django.conf import settings
from django.contrib.auth.models import User
from django.core.mail import send_mail
from django.db.models import Q

from portal.models import Rollout
from portal.roles import ADMINISTRATORS
from portal.services.rollout_plans import plan_summary

# The rollouts' logger, as before the split: log filters and alerts on it keep working.
logger = logging.getLogger("portal.services.rollouts")


def notification_recipients() -> list[str]:
    """Administrators with an e-mail address, and DEVICEUPDATE_NOTIFY_EMAILS."""
    users = User.objects.filter(is_active=True).filter(
        Q(is_superuser=True) | Q(groups__name=ADMINISTRATORS)
    )
    addresses = {email for email in users.values_list("email", flat=True) if email}
    addresses.update(settings.DEVICEUPDATE_NOTIFY_EMAILS)
    return sorted(addresses)


def rollout_notify(*, rollout_id: int) -> int:
    """E-mail the administrators that a rollout halted or completed; after commit.

    A mail server that fails is logged, never turned into a failed transition.
    """
    rollout = Rollout.objects.select_related("rule__pool").filter(pk=rollout_id).first()
    recipients = notification_recipients()
    if rollout is None or not recipients:
        return 0
    subject = f"[Device Update] {rollout.name} {rollout.state} on {rollout.rule.pool.fqdn}"
    body = "\n".join(
        [
            f"{rollout.name} ({rollout.rule.name}) is {rollout.state}.",
            f"Rule: {rollout.rule.identity} ({rollout.rule.device_class})",
            "",
            f"Reason: {rollout.reason}",
            f"Wave: {rollout.current_wave + 1} of {rollout.waves.count()}",
            "Plan: " + "; ".join(f"{k}={v}" for k, v in plan_summary(rollout).items()),
        ]
    )
    try:
        return send_mail(subject, body, None, recipients, fail_silently=False)
    except Exception:
        logger.exception("could not send the rollout notification for #%s", rollout.pk)
        return 0
