"""Replication: the state of every update file on every server's own store."""

from __future__ import annotations

from django.db import models

from portal.choices import ReplicaState
from portal.models.packages import UpdateFile
from portal.models.topology import Server


class ServerFile(models.Model):
    """One file on one server: pending, copying, verified (size and SHA-256 checked
    after the copy, before the rename into place) or failed with the reason."""

    server = models.ForeignKey(Server, on_delete=models.CASCADE, related_name="files")
    file = models.ForeignKey(UpdateFile, on_delete=models.CASCADE, related_name="replicas")
    state = models.CharField(
        max_length=16, choices=ReplicaState.choices, default=ReplicaState.PENDING
    )
    error = models.CharField(max_length=500, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)
    verified_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = "server file"
        constraints = [
            models.UniqueConstraint(fields=["server", "file"], name="server_file_unique")
        ]
        indexes = [models.Index(fields=["server", "state"], name="server_file_state_idx")]

    def __str__(self) -> str:
        return f"{self.server.fqdn}: {self.file.storage_name} ({self.state})"
