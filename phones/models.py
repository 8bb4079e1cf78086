"""The request audit and the device inventory, both written in batches off the hot path."""

from __future__ import annotations

from django.db import models

from phones.choices import Channel, DeviceState, ObservedState, Outcome


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
    the counter beside the server's log store (``phones.services.log_store``), refreshed whenever
    its logs are listed or cleared."""

    server = models.CharField(max_length=253, unique=True)
    total_bytes = models.PositiveBigIntegerField(default=0)
    files = models.PositiveIntegerField(default=0)

    class Meta:
        verbose_name = "log store usage"
        verbose_name_plural = "log store usage"

    def __str__(self) -> str:
        return f"{self.server}: {self.total_bytes} bytes"


class DeviceOutcome(models.Model):
    """What one phone was seen doing with one version of one rule, derived from its
    check-ins and the downloads this service saw, by a batch job (never on the hot
    path): offered, downloaded, running (a later check reports it) or failed."""

    identity = models.CharField(max_length=80)
    rule = models.ForeignKey(
        "portal.DeviceUpdateRule", on_delete=models.CASCADE, related_name="observed_outcomes"
    )
    version = models.CharField(max_length=64)
    state = models.CharField(max_length=16, choices=ObservedState.choices)
    offered_first = models.DateTimeField(null=True, blank=True)
    offered_last = models.DateTimeField(null=True, blank=True)
    offered_count = models.PositiveIntegerField(default=0)
    downloaded_at = models.DateTimeField(null=True, blank=True)
    running_at = models.DateTimeField(null=True, blank=True)
    failed_at = models.DateTimeField(null=True, blank=True)
    failure = models.CharField(max_length=200, blank=True, help_text="Why it counts as failed.")
    last_seen = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField()

    class Meta:
        ordering = ["identity", "rule", "version"]
        verbose_name = "observed outcome"
        constraints = [
            models.UniqueConstraint(
                fields=["identity", "rule", "version"], name="device_outcome_unique"
            )
        ]
        indexes = [
            models.Index(fields=["rule", "version", "state"], name="device_outcome_state_idx")
        ]

    def __str__(self) -> str:
        return f"{self.identity} {self.version}: {self.state}"


class DownloadEvent(models.Model):
    """An image this server sent (whole), as seen by Django in development or read
    from nginx's access log in production: the address and the update folder."""

    created_at = models.DateTimeField(db_index=True)
    server = models.CharField(max_length=253)
    client_address = models.GenericIPAddressField(null=True, blank=True)
    folder = models.CharField(max_length=600)
    file_name = models.CharField(max_length=255)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["client_address", "folder"], name="download_addr_idx")]

    def __str__(self) -> str:
        return f"{self.client_address} {self.folder}/{self.file_name}"


class RolloutSample(models.Model):
    """One point of a rollout's history: per wave, the phones planned, offered,
    running and failed when the observation job ran."""

    rollout = models.ForeignKey("portal.Rollout", on_delete=models.CASCADE, related_name="samples")
    taken_at = models.DateTimeField()
    wave = models.PositiveSmallIntegerField()
    planned = models.PositiveIntegerField()
    offered = models.PositiveIntegerField()
    running = models.PositiveIntegerField()
    failed = models.PositiveIntegerField()

    class Meta:
        ordering = ["rollout", "taken_at", "wave"]
        indexes = [models.Index(fields=["rollout", "taken_at"], name="rollout_sample_idx")]

    def __str__(self) -> str:
        return f"{self.rollout_id} wave {self.wave + 1} at {self.taken_at:%Y-%m-%d %H:%M}"


class ObservationCursor(models.Model):
    """How far the observation job has read the request audit and the downloads."""

    name = models.CharField(max_length=32, unique=True)
    last_id = models.BigIntegerField(default=0)

    def __str__(self) -> str:
        return f"{self.name}: {self.last_id}"


class SpoolPosition(models.Model):
    """How far this server's loader has written a spool file (phones.services.spool_loader).

    Saved in the transaction that writes the rows the lines hold, so a loader killed
    mid-batch writes each record exactly once. ``file`` is a spool file's name, or
    ``dropped.count`` (how many dropped records the loader has audited).
    """

    server = models.CharField(max_length=255)
    file = models.CharField(max_length=100)
    offset = models.BigIntegerField(default=0)
    finished = models.BooleanField(default=False)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["server", "file"], name="spool_position_unique")
        ]

    def __str__(self) -> str:
        return f"{self.server} {self.file}: {self.offset}"
