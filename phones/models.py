"""The request audit and the device inventory, both written in batches off the hot path."""

from __future__ import annotations

from django.db import models

from phones.choices import Channel, DeviceState, Outcome


class RequestAudit(models.Model):
    """One update check: who asked what, what was answered, by which server, and why."""

    request_id = models.UUIDField(unique=True, editable=False)
    created_at = models.DateTimeField(db_index=True)
    server = models.CharField(max_length=253, db_index=True)
    channel = models.CharField(max_length=16, choices=Channel.choices)
    client_address = models.GenericIPAddressField(null=True, blank=True)
    identity = models.CharField(max_length=80, db_index=True, blank=True)
    device_type = models.CharField(max_length=256, blank=True)
    mac = models.CharField("MAC", max_length=64, blank=True, db_index=True)
    serial = models.CharField(max_length=64, blank=True, db_index=True)
    vendor = models.CharField(max_length=256, blank=True)
    model = models.CharField(max_length=256, blank=True, db_index=True)
    revision = models.CharField(max_length=256, blank=True)
    locale = models.CharField(max_length=256, blank=True)
    user = models.CharField(max_length=256, blank=True, db_index=True)
    request_modules = models.JSONField(default=list, blank=True)
    response_modules = models.JSONField(default=list, blank=True)
    test_device = models.BooleanField(default=False)
    outcome = models.CharField(max_length=32, choices=Outcome.choices, db_index=True)
    status = models.PositiveSmallIntegerField()
    message = models.CharField(max_length=400, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = "update check"
        verbose_name_plural = "request audit"

    def __str__(self) -> str:
        return f"{self.created_at:%Y-%m-%d %H:%M:%S} {self.identity or '?'} {self.outcome}"


class Device(models.Model):
    """A phone that has checked in, as the helpdesk sees it."""

    identity = models.CharField(max_length=80, unique=True)
    mac = models.CharField("MAC", max_length=64, blank=True, db_index=True)
    serial = models.CharField(max_length=64, blank=True, db_index=True)
    device_type = models.CharField(max_length=256)
    brand = models.CharField(max_length=256, db_index=True)
    model = models.CharField(max_length=256, db_index=True)
    revision = models.CharField(max_length=256, blank=True)
    locale = models.CharField(max_length=256, blank=True)
    installed = models.JSONField(default=dict, blank=True, help_text="Update type: version.")
    targets = models.JSONField(default=dict, blank=True, help_text="Update type: version.")
    state = models.CharField(max_length=32, choices=DeviceState.choices, db_index=True)
    test_device = models.BooleanField(default=False)
    first_seen = models.DateTimeField()
    last_seen = models.DateTimeField(db_index=True)
    last_user = models.CharField(max_length=256, blank=True, db_index=True)
    last_address = models.GenericIPAddressField(null=True, blank=True)
    last_channel = models.CharField(max_length=16, choices=Channel.choices)
    last_server = models.CharField(max_length=253)

    class Meta:
        ordering = ["-last_seen"]

    def __str__(self) -> str:
        return f"{self.brand} {self.model} {self.mac or self.serial}"


class DeviceLog(models.Model):
    """A log file a phone uploaded to this server (the same content again is stored
    once)."""

    created_at = models.DateTimeField(db_index=True)
    server = models.CharField(max_length=253, db_index=True)
    channel = models.CharField(max_length=16, choices=Channel.choices)
    log_type = models.CharField(max_length=64, db_index=True)
    device = models.CharField(
        max_length=80, db_index=True, help_text="MAC (12 hex digits) or serial number."
    )
    mac = models.CharField("MAC", max_length=64, blank=True)
    serial = models.CharField(max_length=64, blank=True)
    user = models.CharField(max_length=256, blank=True)
    name = models.CharField(max_length=255)
    size = models.PositiveBigIntegerField()
    # DeviceUpdateLogs/Client/<LogType>/<device>/<file>, under the server's log store.
    path = models.CharField(max_length=700)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["server", "log_type", "device", "name"], name="device_log_unique_file"
            )
        ]

    def __str__(self) -> str:
        return f"{self.log_type}/{self.device}/{self.name}"


class LogStoreUsage(models.Model):
    """Bytes and files of device logs a server holds, for the control panel: a copy of
    the counter beside the server's log store (``phones.logstore``), refreshed whenever
    its logs are listed or cleared."""

    server = models.CharField(max_length=253, unique=True)
    total_bytes = models.PositiveBigIntegerField(default=0)
    files = models.PositiveIntegerField(default=0)

    class Meta:
        verbose_name = "log store usage"
        verbose_name_plural = "log store usage"

    def __str__(self) -> str:
        return f"{self.server}: {self.total_bytes} bytes"
