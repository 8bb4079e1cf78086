"""Imported packages: the import jobs and the verified update versions they stored."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from portal.choices import ImportStatus, UpdateFileRole
from portal.models.topology import Pool


class ImportJob(models.Model):
    """One package import: its status and progress, and the report of what it found.

    Created when the upload is on disk; run by ``package_import_task`` on a worker.
    """

    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    started_at = models.DateTimeField(null=True, blank=True)
    lease_expires_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text="Renewed by the worker while the import runs; past it, the worker is "
        "taken for dead and the import failed.",
    )
    finished_at = models.DateTimeField(null=True, blank=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    actor_name = models.CharField(max_length=150)
    status = models.CharField(
        max_length=16, choices=ImportStatus.choices, default=ImportStatus.QUEUED, db_index=True
    )
    progress = models.PositiveSmallIntegerField(default=0, help_text="Percent done.")
    step = models.CharField(max_length=200, blank=True)
    package_name = models.CharField(max_length=255)
    package_size = models.PositiveBigIntegerField()
    package_sha256 = models.CharField("package SHA-256", max_length=64, db_index=True)
    pools = models.ManyToManyField(Pool, related_name="import_jobs")
    signer = models.CharField(max_length=1000, blank=True)
    cabinet_signer = models.CharField(
        max_length=1000,
        blank=True,
        help_text="Who signed the cabinet itself (Authenticode), if anyone; for information: "
        "trust comes from the catalogs inside.",
    )
    # [{"folder", "rule_id", "version", "files": [{"name", "size", "sha256"}], "rules": [...]}]
    updates = models.JSONField(default=list, blank=True)
    warnings = models.JSONField(default=list, blank=True)
    error = models.TextField(blank=True)
    replication = models.CharField(
        max_length=200,
        blank=True,
        help_text="Replication to the pools' servers (copied and verified by each server).",
    )

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = "package import"

    def __str__(self) -> str:
        # No state: a page title would go stale while the import runs.
        return f"Import #{self.pk} of {self.package_name}"


class UpdateVersion(models.Model):
    """A verified update folder in the central store: one device class at one version."""

    device_type = models.CharField(max_length=64)
    brand = models.CharField(max_length=64)
    model = models.CharField(max_length=64)
    revision = models.CharField(max_length=64)
    locale = models.CharField(max_length=16)
    version = models.CharField(max_length=64)
    update_type = models.CharField(max_length=64)
    # DeviceType/Brand/Model/Revision/Locale/Version/UpdateType, as in the package.
    folder = models.CharField(max_length=600, unique=True)
    rule_id = models.UUIDField("rule Id")
    release_date = models.CharField(max_length=32, blank=True)
    description = models.CharField(max_length=400, blank=True)
    signer = models.CharField(max_length=1000)
    catalog_digest = models.CharField(max_length=16, help_text="sha256, or sha1 (older)")
    import_job = models.ForeignKey(
        ImportJob, null=True, on_delete=models.SET_NULL, related_name="stored_versions"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["folder"]

    def __str__(self) -> str:
        return self.folder


class UpdateFile(models.Model):
    """One file of an update version, with the size and SHA-256 every copy must have."""

    version = models.ForeignKey(UpdateVersion, on_delete=models.CASCADE, related_name="files")
    name = models.CharField(max_length=255)
    role = models.CharField(max_length=16, choices=UpdateFileRole.choices)
    size = models.PositiveBigIntegerField()
    sha256 = models.CharField("SHA-256", max_length=64)
    # Name in the central file store: DeviceUpdateStore/<folder>/<name>.
    storage_name = models.CharField(max_length=900, unique=True)

    class Meta:
        ordering = ["version", "name"]
        constraints = [
            models.UniqueConstraint(fields=["version", "name"], name="update_file_unique_name")
        ]

    def __str__(self) -> str:
        return self.storage_name
