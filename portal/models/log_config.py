"""Device log configuration: global settings, overridden per site."""

from __future__ import annotations

from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q

from portal.models.topology import Site

DEFAULT_EXTENSIONS = [
    ".dmp",
    ".clg",
    ".clg1",
    ".clg2",
    ".bak",
    ".kdmp",
    ".dat",
    ".bin",
    ".cat",
    ".xml",
    ".txt",
    ".hex",
]
DEFAULT_TYPES = ["Watson", "CELog", "Config", "DiagLog"]
GIB = 1024**3


def default_extensions() -> list[str]:
    return list(DEFAULT_EXTENSIONS)


def default_types() -> list[str]:
    return list(DEFAULT_TYPES)


class DeviceLogConfiguration(models.Model):
    """One row for ``global`` (no site) and at most one per site; defaults from the spec."""

    site = models.OneToOneField(
        Site,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="log_configuration",
        help_text="Empty: the global settings.",
    )
    log_cleanup_interval_days = models.PositiveIntegerField(
        "LogCleanUpInterval (days)",
        default=10,
        validators=[MinValueValidator(1), MaxValueValidator(365)],
    )
    log_cleanup_time_of_day = models.TimeField(
        "LogCleanUpTimeOfDay", null=True, blank=True, help_text="Empty: any time."
    )
    log_flush_interval_minutes = models.PositiveIntegerField(
        "LogFlushInterval (minutes)",
        default=5,
        validators=[MinValueValidator(1), MaxValueValidator(60)],
    )
    max_log_cache_limit = models.PositiveBigIntegerField(
        "MaxLogCacheLimit (bytes)",
        default=512_000,
        validators=[MinValueValidator(1), MaxValueValidator(1024**3)],
    )
    max_log_file_size = models.PositiveBigIntegerField(
        "MaxLogFileSize (bytes)",
        default=1_024_000,
        validators=[MinValueValidator(1), MaxValueValidator(4 * GIB)],
    )
    valid_log_file_extensions = models.JSONField(
        "ValidLogFileExtensions", default=default_extensions
    )
    valid_log_file_types = models.JSONField("ValidLogFileTypes", default=default_types)
    log_store_quota = models.PositiveBigIntegerField(
        "LogStoreQuota (bytes)",
        default=10 * GIB,
        validators=[MinValueValidator(1), MaxValueValidator(1024**5)],
    )

    class Meta:
        verbose_name = "device log configuration"
        constraints = [
            models.UniqueConstraint(fields=["site"], name="log_config_one_per_site"),
            models.UniqueConstraint(
                models.Value(1), condition=Q(site__isnull=True), name="log_config_one_global"
            ),
        ]

    def __str__(self) -> str:
        return self.scope

    @property
    def scope(self) -> str:
        return f"site:{self.site.name}" if self.site_id and self.site else "global"
