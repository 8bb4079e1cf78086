"""The steps of recording an examined package (``portal.services.imports``, inside its
one transaction): store its rows (the version and its files), set its rules pending in
each pool, report what was imported, queue the replication to the pools' servers."""

from __future__ import annotations

from typing import Any

from portal.choices import UpdateFileRole
from portal.device_class import RuleClass
from portal.identifiers import parse_version
from portal.models import ImportJob, Pool, Server, UpdateFile, UpdateVersion
from portal.packaging.inspection import ExaminedUpdate
from portal.services.audit import Actor
from portal.services.replication import replication_queue
from portal.services.rules import rule_set_pending

STORE_PREFIX = "DeviceUpdateStore"


def storage_name(folder: str, file_name: str) -> str:
    return f"{STORE_PREFIX}/{folder}/{file_name}"


def _role(update: ExaminedUpdate, name: str) -> UpdateFileRole:
    update_type = update.folder.rsplit("/", 1)[-1].lower()
    if name.lower() == f"{update_type}.xml":
        return UpdateFileRole.DESCRIPTION
    if name.lower() == f"{update_type}.cat":
        return UpdateFileRole.CATALOG
    return UpdateFileRole.IMAGE


def update_rows_store(*, job: ImportJob, update: ExaminedUpdate) -> UpdateVersion:
    """The update's version and file rows, made once: a version imported again keeps
    the rows of its first import."""
    description = update.description
    assert description is not None  # an accepted update has its description
    version, _ = UpdateVersion.objects.get_or_create(
        folder=update.folder,
        defaults={
            "device_type": description.device_type,
            "brand": description.brand,
            "model": description.model,
            "revision": description.revision,
            "locale": description.locale,
            "version": description.version,
            "update_type": description.update_type,
            "rule_id": description.id,
            "release_date": str(description.release_date or ""),
            "description": (description.description or "")[:400],
            "signer": update.signer_subject[:1000],
            "catalog_digest": update.catalog_digest,
            "import_job": job,
        },
    )
    for name, member in sorted(update.files.items()):
        UpdateFile.objects.get_or_create(
            version=version,
            name=name,
            defaults={
                "role": _role(update, name),
                "size": member.size,
                "sha256": member.sha256,
                "storage_name": storage_name(update.folder, name),
            },
        )
    return version


def update_rules_set_pending(
    *, update: ExaminedUpdate, pools: list[Pool], actor: Actor, warnings: list[str]
) -> list[dict[str, Any]]:
    """The update's version pending on its rule in each pool, as report rows; a version
    older than a rule's approved one adds a downgrade warning to ``warnings``."""
    description = update.description
    assert description is not None  # an accepted update has its description
    rules = []
    device_class = RuleClass.of(description)
    for pool in pools:
        rule, changed = rule_set_pending(
            pool=pool,
            rule_id=description.id,
            device_class=device_class,
            version=description.version,
            actor=actor,
        )
        rules.append({"identity": rule.identity, "changed": changed})
        if rule.approved_version and parse_version(description.version) < parse_version(
            rule.approved_version
        ):
            warnings.append(
                f"{update.folder}: {description.version} is older than the "
                f"approved {rule.approved_version} on {pool.fqdn}; approving it "
                "is a downgrade"
            )
    return rules


def update_report(*, update: ExaminedUpdate, rules: list[dict[str, Any]]) -> dict[str, Any]:
    """What the job's report says of one imported update."""
    description = update.description
    assert description is not None  # an accepted update has its description
    return {
        "folder": update.folder,
        "rule_id": str(description.id),
        "version": description.version,
        "catalog_digest": update.catalog_digest,
        "files": [
            {"name": name, "size": member.size, "sha256": member.sha256}
            for name, member in sorted(update.files.items())
        ],
        "rules": rules,
    }


def versions_replication_queue(*, versions: list[UpdateVersion], pools: list[Pool]) -> str:
    """Queue the versions to every server of the pools (after commit); the job's line."""
    servers = list(Server.objects.filter(pool__in=pools))
    replication_queue(versions=versions, servers=servers)
    return f"queued to {len(servers)} server(s)"
