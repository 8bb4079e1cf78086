"""Who may do what in the control panel: administrator, helpdesk and anonymous against
every page and every rule action, with the exact answer each gets."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID
from django.conf import settings
from django.test import Client

from portal.models import AuditEntry, DeviceUpdateRule, Rollout, Server, Site
from portal.services.audit import Actor
from portal.services.fleet import device_group_save
from portal.services.log_config import log_config_set
from portal.services.publishers import publisher_add
from portal.services.rollout_plans import RolloutPlan, WavePlan
from portal.services.rollouts import rollout_plan
from portal.services.testdevices import testdevice_create
from tests.factories import CX700, RULE_B

pytestmark = pytest.mark.django_db

ADMIN_ONLY_WRITES = [
    "site",
    "pool",
    "server",
    "testdevice",
    "devicelogconfiguration",
    "trustedpublisher",
    "devicegroup",
]
NEVER_WRITTEN_BY_HAND = ["deviceupdaterule", "auditentry", "rollout"]
MODELS = [*ADMIN_ONLY_WRITES, *NEVER_WRITTEN_BY_HAND]

# (page, method, path template) -> status for (administrator, helpdesk); anonymous
# always gets the login page.
PAGES: list[tuple[str, str, str, tuple[int, int]]] = [
    *[(f"{m} list", "get", f"/admin/portal/{m}/", (200, 200)) for m in MODELS],
    *[(f"{m} add", "get", f"/admin/portal/{m}/add/", (200, 403)) for m in ADMIN_ONLY_WRITES],
    *[(f"{m} add", "get", f"/admin/portal/{m}/add/", (403, 403)) for m in NEVER_WRITTEN_BY_HAND],
    *[(f"{m} change", "get", f"/admin/portal/{m}/{{{m}}}/change/", (200, 200)) for m in MODELS],
    *[
        (f"{m} delete", "get", f"/admin/portal/{m}/{{{m}}}/delete/", (200, 403))
        for m in ADMIN_ONLY_WRITES
    ],
    *[
        (f"{m} delete", "get", f"/admin/portal/{m}/{{{m}}}/delete/", (403, 403))
        for m in NEVER_WRITTEN_BY_HAND
    ],
    (
        "rule change post",
        "post",
        "/admin/portal/deviceupdaterule/{deviceupdaterule}/change/",
        (403, 403),
    ),
    ("audit change post", "post", "/admin/portal/auditentry/{auditentry}/change/", (403, 403)),
    (
        "publisher change post",
        "post",
        "/admin/portal/trustedpublisher/{trustedpublisher}/change/",
        (403, 403),
    ),
    ("site change post", "post", "/admin/portal/site/{site}/change/", (302, 403)),
    ("audit export", "get", "/admin/portal/auditentry/export.csv", (200, 200)),
    ("control panel index", "get", "/admin/", (200, 200)),
    ("rollout plan", "get", "/admin/portal/rollout/plan/{deviceupdaterule}/", (200, 403)),
    # No waves: the plan form answers with its error and creates nothing.
    ("rollout plan post", "post", "/admin/portal/rollout/plan/{deviceupdaterule}/", (200, 403)),
    *[
        (f"rollout {name}", "get", f"/admin/portal/rollout/{{rollout}}/{name}/", (200, 403))
        for name in ("advance", "pause", "cancel", "restore")
    ],
    # A running rollout cannot be resumed: refused before the confirmation page.
    ("rollout resume", "get", "/admin/portal/rollout/{rollout}/resume/", (302, 403)),
    ("rollout pause post", "post", "/admin/portal/rollout/{rollout}/pause/", (302, 403)),
]
# What an administrator's post changes (audit codes); every other request changes nothing.
ADMIN_CHANGES = {
    "/admin/portal/site/{site}/change/": ["portal.site.changed"],
    "/admin/portal/rollout/{rollout}/pause/": ["portal.rollout.paused"],
}
USERS = ["administrator", "helpdesk", "anonymous"]


@pytest.fixture
def world(make_rule: Callable[..., DeviceUpdateRule]) -> dict[str, int]:
    """One row of every model the control panel shows."""
    setup = Actor.system("setup")
    rule = make_rule(pending="4.0.2", approved="4.0.1", restore="4.0.0")
    device = testdevice_create(
        scope="global", name="Lobby", identifier_type="SerialNumber", identifier="SN1", actor=setup
    )
    config = log_config_set(scope="global", values={}, actor=setup)
    publisher = publisher_add(pem=_pem(), actor=setup)
    group = device_group_save(name="Pilots", members=["SN:CX6-1"], actor=setup)
    # On a rule of its own: the rule actions below refuse a rule that is rolling out.
    rollout = rollout_plan(
        rule=make_rule(pending="5.0", device_class=CX700, rule_id=RULE_B),
        plan=RolloutPlan(waves=(WavePlan(percent=10), WavePlan(percent=100))),
        actor=setup,
    )
    return {
        "site": Site.objects.get(name="Default").pk,
        "pool": rule.pool_id,
        "server": Server.objects.get(fqdn=settings.SERVER_FQDN).pk,
        "deviceupdaterule": rule.pk,
        "testdevice": device.pk,
        "devicelogconfiguration": config.pk,
        "trustedpublisher": publisher.pk,
        "auditentry": AuditEntry.objects.get(action="portal.test_device.created").pk,
        "devicegroup": group.pk,
        "rollout": rollout.pk,
    }


def _pem() -> str:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Matrix Publisher")])
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(dt.datetime(2025, 1, 1, tzinfo=dt.UTC))
        .not_valid_after(dt.datetime(2035, 1, 1, tzinfo=dt.UTC))
        .sign(key, hashes.SHA256())
    )
    return certificate.public_bytes(Encoding.PEM).decode()


def _log_in(client: Client, request: pytest.FixtureRequest, user: str) -> None:
    if user != "anonymous":
        client.force_login(request.getfixturevalue(user))


@pytest.mark.parametrize("user", USERS)
@pytest.mark.parametrize(
    ("method", "template", "expected"),
    [pytest.param(method, path, expected, id=page) for page, method, path, expected in PAGES],
)
def test_page_access(
    client: Client,
    request: pytest.FixtureRequest,
    world: dict[str, int],
    user: str,
    method: str,
    template: str,
    expected: tuple[int, int],
) -> None:
    path = template.format(**world)
    _log_in(client, request, user)
    data = None
    if method == "post":
        data = {
            "name": "Renamed",
            "description": "",
            "time_zone": "UTC",
            "pools-TOTAL_FORMS": "0",
            "pools-INITIAL_FORMS": "0",
            "maintenance_windows-TOTAL_FORMS": "0",
            "maintenance_windows-INITIAL_FORMS": "0",
            "post": "yes",
        }

    response = getattr(client, method)(path, data)

    if user == "anonymous":
        assert response.status_code == 302
        assert response["Location"] == f"/admin/login/?next={path}"
    else:
        assert response.status_code == expected[USERS.index(user)]
    changes = list(AuditEntry.objects.exclude(actor_name="setup").values_list("action", flat=True))
    by_administrator = user == "administrator" and method == "post"
    expected_changes = ADMIN_CHANGES.get(template, []) if by_administrator else []
    assert changes == expected_changes
    renamed = "portal.site.changed" in expected_changes
    assert Site.objects.get(pk=world["site"]).name == ("Renamed" if renamed else "Default")
    paused = "portal.rollout.paused" in expected_changes
    assert Rollout.objects.get(pk=world["rollout"]).state == ("paused" if paused else "running")


# action -> the rule's (P, A, R) after an administrator ran it (None: removed), audit code
ACTIONS = {
    "approve_rules": (("", "4.0.2", "4.0.1"), "portal.rule.approved"),
    "reset_rules": (("", "4.0.1", "4.0.0"), "portal.rule.reset"),
    "restore_rules": (("4.0.2", "4.0.0", ""), "portal.rule.restored"),
    "remove_rules": (None, "portal.rule.removed"),
}


@pytest.mark.parametrize("user", USERS)
@pytest.mark.parametrize("action", list(ACTIONS))
def test_rule_action_access(
    client: Client, request: pytest.FixtureRequest, world: dict[str, int], user: str, action: str
) -> None:
    path = "/admin/portal/deviceupdaterule/"
    rule_pk = world["deviceupdaterule"]
    _log_in(client, request, user)

    confirmation = client.post(path, {"action": action, "_selected_action": [rule_pk]})
    response = client.post(path, {"action": action, "_selected_action": [rule_pk], "post": "yes"})

    rule = DeviceUpdateRule.objects.filter(pk=rule_pk).first()
    versions = (rule.pending_version, rule.approved_version, rule.restore_version) if rule else None
    audit = list(AuditEntry.objects.exclude(actor_name="setup").values_list("action", "actor_name"))
    expected_versions, code = ACTIONS[action]
    if user == "administrator":
        assert (confirmation.status_code, response.status_code) == (200, 302)
        assert "previews" in confirmation.context
        assert versions == expected_versions
        assert audit == [(code, "ada")]
    else:
        status = 200 if user == "helpdesk" else 302
        assert (confirmation.status_code, response.status_code) == (status, status)
        if user == "anonymous":
            assert response["Location"] == f"/admin/login/?next={path}"
        assert versions == ("4.0.2", "4.0.1", "4.0.0")
        assert audit == []
