"""Topology: sites hold pools, pools hold servers (front ends).

Each server keeps its own copy of the update files and answers phones from it; its
Celery worker consumes the server's own queue (``server.<fqdn>``).
"""

from __future__ import annotations

from django.db import models

from deviceupdate.topology_names import normalise_fqdn, server_queue_name
from portal.validators import validate_fqdn, validate_time_zone


class Site(models.Model):
    """A site: test devices and log settings can be scoped to it."""

    name = models.CharField(max_length=100, unique=True)
    description = models.CharField(max_length=400, blank=True)
    time_zone = models.CharField(
        max_length=64,
        default="UTC",
        validators=[validate_time_zone],
        help_text="IANA time zone its maintenance windows are read in (Europe/Paris).",
    )

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Pool(models.Model):
    """One Web Services service, ``service:WebServer:<fqdn>``, with its web FQDNs."""

    site = models.ForeignKey(Site, on_delete=models.PROTECT, related_name="pools")
    fqdn = models.CharField("pool FQDN", max_length=253, unique=True, validators=[validate_fqdn])
    internal_web_fqdn = models.CharField(
        "internal web FQDN",
        max_length=253,
        validators=[validate_fqdn],
        help_text="Host name phones inside the firewall use (BaseURL, over http).",
    )
    external_web_fqdn = models.CharField(
        "external web FQDN",
        max_length=253,
        blank=True,
        validators=[validate_fqdn],
        help_text="Host name of the reverse proxy (ExternalBaseURL, over https); optional.",
    )

    class Meta:
        ordering = ["fqdn"]

    def __str__(self) -> str:
        # What people read; the identity stays on the pool's page and in searches.
        return self.fqdn

    @property
    def identity(self) -> str:
        return f"service:WebServer:{self.fqdn}"

    def clean(self) -> None:
        self.fqdn = normalise_fqdn(self.fqdn)
        self.internal_web_fqdn = normalise_fqdn(self.internal_web_fqdn)
        self.external_web_fqdn = normalise_fqdn(self.external_web_fqdn)


class Server(models.Model):
    """A front end of a pool; answers phones from its own verified store."""

    pool = models.ForeignKey(Pool, on_delete=models.PROTECT, related_name="servers")
    fqdn = models.CharField("server FQDN", max_length=253, unique=True, validators=[validate_fqdn])
    worker_seen_at = models.DateTimeField(
        "worker last seen",
        null=True,
        blank=True,
        editable=False,
        help_text="When this server's Celery worker last answered a heartbeat on its queue.",
    )
    offer_cap_per_minute = models.PositiveIntegerField(
        "new offers per minute",
        default=0,
        help_text="At most this many checks a minute are offered new files; 0: no cap.",
    )

    class Meta:
        ordering = ["fqdn"]

    def __str__(self) -> str:
        return self.fqdn

    @property
    def queue(self) -> str:
        return server_queue_name(self.fqdn)

    def clean(self) -> None:
        self.fqdn = normalise_fqdn(self.fqdn)
