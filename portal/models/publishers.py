"""Trusted publishers: certificates a package's catalog signer must chain to."""

from __future__ import annotations

from django.db import models


class TrustedPublisher(models.Model):
    """A PEM certificate and what was read from it when it was added."""

    certificate_pem = models.TextField()
    fingerprint_sha256 = models.CharField("SHA-256 fingerprint", max_length=64, unique=True)
    subject = models.CharField(max_length=1000)
    issuer = models.CharField(max_length=1000)
    serial_number = models.CharField(max_length=100)
    not_valid_before = models.DateTimeField()
    not_valid_after = models.DateTimeField()
    added_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["subject"]

    def __str__(self) -> str:
        return f"{self.subject} ({self.fingerprint_sha256[:16]}…)"
