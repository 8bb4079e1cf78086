"""Outbound webhooks: where events are sent, and every attempt to send one."""

from __future__ import annotations

from django.db import models


class Webhook(models.Model):
    """A receiver of signed event deliveries; changed only through its services."""

    name = models.CharField(max_length=100, unique=True)
    url = models.CharField("URL", max_length=500)
    # Shared with the receiver, which checks each delivery's signature with it; never
    # shown again once set (write-only in the API, masked in the control panel).
    secret = models.CharField(max_length=200)
    # The WebhookEvent values it subscribes to, sorted, without repeats.
    events = models.JSONField(default=list)
    enabled = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class WebhookDelivery(models.Model):
    """One attempt to deliver one event to one webhook, and its answer."""

    webhook = models.ForeignKey(Webhook, on_delete=models.CASCADE, related_name="deliveries")
    # Every attempt of one event's delivery shares it (sent as a header, so a receiver
    # can drop a retry of what it already took).
    delivery_id = models.UUIDField(db_index=True)
    event = models.CharField(max_length=40)
    attempt = models.PositiveSmallIntegerField()
    attempted_at = models.DateTimeField()
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    error = models.CharField(max_length=400, blank=True)
    duration_ms = models.PositiveIntegerField()

    class Meta:
        ordering = ["-attempted_at", "-id"]
        verbose_name = "webhook delivery attempt"
        indexes = [
            models.Index(fields=["webhook", "-attempted_at"], name="webhook_delivery_recent_idx")
        ]

    def __str__(self) -> str:
        return f"{self.event} #{self.attempt} → {self.webhook_id}: {self.answer}"

    @property
    def answer(self) -> str:
        """The receiver's status code, or why there was none."""
        return str(self.status_code) if self.status_code is not None else self.error
