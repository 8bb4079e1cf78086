"""Topology writes: sites, pools and servers (audited), and worker heartbeats."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import models, transaction
from django.db.models.deletion import ProtectedError
from django.utils import timezone

from portal.errors import DomainError
from portal.models import Pool, Server, Site
from portal.services.audit import Actor, audit_record, diff, snapshot
from portal.services.generation import decision_generation_bump
from portal.services.replication import server_catch_up_queue

FIELDS: dict[type[models.Model], tuple[str, ...]] = {
    Site: ("name", "description", "time_zone"),
    Pool: ("site", "fqdn", "internal_web_fqdn", "external_web_fqdn"),
    Server: ("pool", "fqdn", "offer_cap_per_minute"),
}


def _action(obj: models.Model, verb: str) -> str:
    return f"portal.{obj._meta.model_name}.{verb}"


def topology_save(*, obj: Site | Pool | Server, actor: Actor) -> Site | Pool | Server:
    """Create or change a site, pool or server after validating it; audited."""
    fields = FIELDS[type(obj)]
    created = obj.pk is None
    before = {} if created else snapshot(type(obj).objects.get(pk=obj.pk), fields)
    try:
        obj.full_clean()
    except ValidationError as error:
        field, messages = next(iter(error.message_dict.items()))
        raise DomainError(" ".join(messages), field=field) from None
    # Scopes (site:<name>) find sites ignoring case, so names must differ in more than case.
    if isinstance(obj, Site):
        clash = Site.objects.filter(name__iexact=obj.name).exclude(pk=obj.pk).first()
        if clash is not None:
            raise DomainError(f"a site named {clash.name!r} already exists", field="name")
    after = snapshot(obj, fields)
    if not created and after == before:
        return obj
    with transaction.atomic():
        obj.save()
        decision_generation_bump()
        if isinstance(obj, Server) and (created or "pool" in diff(before, after)):
            # A new front end, or one moved to another pool: copy what its pool needs.
            server_catch_up_queue(server=obj)
        audit_record(
            actor=actor,
            action=_action(obj, "created" if created else "changed"),
            obj=obj,
            changes=diff(before, after),
        )
    return obj


def topology_delete(*, obj: Site | Pool | Server, actor: Actor) -> None:
    """Delete a site, pool or server; refused while anything still depends on it."""
    try:
        with transaction.atomic():
            audit_record(
                actor=actor,
                action=_action(obj, "removed"),
                obj=obj,
                changes=diff(snapshot(obj, FIELDS[type(obj)]), {}),
            )
            obj.delete()
            decision_generation_bump()
    except ProtectedError as error:
        dependants = sorted({str(item) for item in error.protected_objects})[:5]
        raise DomainError(
            f"{obj} is still in use by {', '.join(dependants)}; remove those first"
        ) from None


def server_record_heartbeat(*, fqdn: str) -> bool:
    """Record that the worker of server ``fqdn`` is alive; False if no such server."""
    return Server.objects.filter(fqdn=fqdn).update(worker_seen_at=timezone.now()) == 1
