"""Reads of the inventory: a phone's check-in history and what it would be offered now."""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings
from django.db.models import QuerySet

from phones.decision import (
    Decision,
    ModuleDecision,
    RuleEntry,
    class_key,
    decision_tables,
    offer_for_request,
)
from phones.models import Device, RequestAudit
from phones.protocol import Module, UpdateCheck
from portal.identifiers import normalise_mac

HISTORY_LIMIT = 50


def mac_search_term(term: str) -> str | None:
    """The stored form of ``term`` when it is a whole MAC address in any spelling."""
    try:
        return normalise_mac(term)
    except ValueError:
        return None


def device_history(*, device: Device, limit: int = HISTORY_LIMIT) -> list[RequestAudit]:
    """The phone's latest ``limit`` update checks, newest first (uses the identity index)."""
    rows: QuerySet[RequestAudit] = RequestAudit.objects.filter(identity=device.identity).order_by(
        "-created_at", "-id"
    )
    return list(rows[:limit])


def device_check(*, device: Device) -> UpdateCheck:
    """The update check the phone would send: its class, identity and installed versions."""
    return UpdateCheck(
        device_type=device.device_type,
        mac=device.mac,
        serial=device.serial,
        vendor=device.brand,
        model=device.model,
        revision=device.revision,
        locale=device.locale,
        user_id=device.last_user,
        modules=tuple(
            Module(update_type=update_type, file_name="", version=version, timestamp="")
            for update_type, version in sorted(device.installed.items())
        ),
    )


def device_what_if(*, device: Device, server_fqdn: str | None = None) -> Decision:
    """What the phone would be offered by this server (or ``server_fqdn``) right now."""
    return offer_for_request(check=device_check(device=device), server_fqdn=server_fqdn)


@dataclass(frozen=True)
class WhatIfRow:
    """One update type of the answer, with whether the server holds the target verified."""

    module: ModuleDecision
    verified: bool | None  # None when there is no target to hold


@dataclass(frozen=True)
class WhatIf:
    """The live answer to "what would this phone get, and why?" for one server."""

    server: str
    decision: Decision
    rows: list[WhatIfRow]


def device_what_if_explained(*, device: Device, server_fqdn: str | None = None) -> WhatIf:
    """``device_what_if`` plus, per update type, whether the server holds the target."""
    fqdn = server_fqdn or settings.SERVER_FQDN
    decision = device_what_if(device=device, server_fqdn=fqdn)
    # The same in-memory table the decision read, so both agree on what is verified.
    table = decision_tables.get()
    server = table.servers.get(fqdn)
    rules: dict[str, RuleEntry] = {}
    if server is not None:
        key = class_key(
            device.device_type, device.brand, device.model, device.revision, device.locale
        )
        rules = table.rules.get((server.pool_id, key), {})
    rows: list[WhatIfRow] = []
    for module in decision.modules:
        rule = rules.get(module.update_type.lower())
        verified: bool | None = None
        if server is not None and rule is not None and module.target:
            folder = f"{rule.folder_prefix}/{module.target}/{rule.update_type}"
            verified = folder in server.verified_folders and folder in table.folders
        rows.append(WhatIfRow(module=module, verified=verified))
    return WhatIf(server=fqdn, decision=decision, rows=rows)
