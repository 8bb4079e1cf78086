"""Who may call what: administrator, helpdesk and anonymous against every endpoint and
method of the API, with the exact status each gets; a refusal changes nothing. Also
token authentication, and CSRF on session writes."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from django.contrib.auth.models import Permission, User
from django.utils import timezone
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from phones.choices import Channel, DeviceState
from phones.models import Device
from portal.device_class import RuleClass
from portal.models import (
    AuditEntry,
    DeviceControl,
    DeviceGroup,
    DeviceGroupMember,
    DeviceLogConfiguration,
    DeviceUpdateRule,
    MaintenanceWindow,
    Pool,
    Rollout,
    Server,
    Site,
    TestDevice,
    TrustedPublisher,
)
from portal.services.audit import Actor
from portal.services.fleet import device_group_save, device_hold, maintenance_window_create
from portal.services.log_config import log_config_set
from portal.services.publishers import publisher_add
from portal.services.rollout_plans import RolloutPlan, WavePlan
from portal.services.rollouts import rollout_pause, rollout_plan
from portal.services.testdevices import testdevice_create

pytestmark = pytest.mark.django_db

SETTINGS_BODY = {
    "log_cleanup_interval_days": 30,
    "log_cleanup_time_of_day": None,
    "log_flush_interval_minutes": 15,
    "max_log_cache_limit": 1_000_000,
    "max_log_file_size": 2_048_000,
    "valid_log_file_extensions": [".clg"],
    "valid_log_file_types": ["CELog"],
    "log_store_quota": 1_073_741_824,
}
DEVICE_BODY = {"scope": "global", "name": "Desk", "identifier_type": "SerialNumber",
               "identifier": "SN-9"}  # fmt: skip

# (method, path template, body) -> statuses for (administrator, helpdesk, anonymous).
# "{new_pem}" in a body is a certificate not trusted yet.
ENDPOINTS: list[tuple[str, str, Any, tuple[int, int, int]]] = [
    ("get", "/api/v1/rules/", None, (200, 200, 403)),
    ("head", "/api/v1/rules/", None, (200, 200, 403)),
    ("options", "/api/v1/rules/", None, (200, 200, 403)),
    ("post", "/api/v1/rules/", {}, (405, 403, 403)),
    ("get", "/api/v1/rules/{rule}/", None, (200, 200, 403)),
    ("put", "/api/v1/rules/{rule}/", {}, (405, 403, 403)),
    ("patch", "/api/v1/rules/{rule}/", {}, (405, 403, 403)),
    ("delete", "/api/v1/rules/{rule}/", None, (204, 403, 403)),
    ("post", "/api/v1/rules/{rule}/approve/", None, (200, 403, 403)),
    ("post", "/api/v1/rules/{rule}/reset/", None, (200, 403, 403)),
    ("post", "/api/v1/rules/{rule}/restore/", None, (200, 403, 403)),
    ("get", "/api/v1/rules/{rule}/approve/", None, (405, 405, 403)),
    ("post", "/api/v1/rules/actions/", {"action": "approve", "rules": ["{rule}"]},
     (200, 403, 403)),
    ("post", "/api/v1/rules/actions/", {"action": "remove", "rules": ["{rule}"]},
     (200, 403, 403)),
    ("get", "/api/v1/test-devices/", None, (200, 200, 403)),
    ("post", "/api/v1/test-devices/", DEVICE_BODY, (201, 403, 403)),
    ("get", "/api/v1/test-devices/{testdevice}/", None, (200, 200, 403)),
    ("put", "/api/v1/test-devices/{testdevice}/", DEVICE_BODY, (200, 403, 403)),
    ("patch", "/api/v1/test-devices/{testdevice}/", {"name": "Hall"}, (200, 403, 403)),
    ("delete", "/api/v1/test-devices/{testdevice}/", None, (204, 403, 403)),
    ("get", "/api/v1/log-config/", None, (200, 200, 403)),
    ("get", "/api/v1/log-config/effective/", None, (200, 200, 403)),
    ("get", "/api/v1/log-config/global/", None, (200, 200, 403)),
    ("put", "/api/v1/log-config/global/", SETTINGS_BODY, (200, 403, 403)),
    ("patch", "/api/v1/log-config/site:Default/", {"log_flush_interval_minutes": 7},
     (200, 403, 403)),
    ("delete", "/api/v1/log-config/global/", None, (204, 403, 403)),
    ("post", "/api/v1/log-config/", SETTINGS_BODY, (405, 403, 403)),
    ("get", "/api/v1/trusted-publishers/", None, (200, 200, 403)),
    ("post", "/api/v1/trusted-publishers/", {"certificate_pem": "{new_pem}"}, (201, 403, 403)),
    ("get", "/api/v1/trusted-publishers/{fingerprint}/", None, (200, 200, 403)),
    ("put", "/api/v1/trusted-publishers/{fingerprint}/", {}, (405, 403, 403)),
    ("delete", "/api/v1/trusted-publishers/{fingerprint}/", None, (204, 403, 403)),
    ("get", "/api/v1/sites/", None, (200, 200, 403)),
    ("get", "/api/v1/sites/{site}/", None, (200, 200, 403)),
    ("post", "/api/v1/sites/", {"name": "Oslo"}, (405, 403, 403)),
    ("delete", "/api/v1/sites/{site}/", None, (405, 403, 403)),
    ("get", "/api/v1/pools/", None, (200, 200, 403)),
    ("get", "/api/v1/pools/{pool}/", None, (200, 200, 403)),
    ("get", "/api/v1/servers/", None, (200, 200, 403)),
    ("get", "/api/v1/servers/{server}/", None, (200, 200, 403)),
    ("get", "/api/v1/audit/", None, (200, 200, 403)),
    ("get", "/api/v1/audit/{auditentry}/", None, (200, 200, 403)),
    ("post", "/api/v1/audit/", {}, (405, 403, 403)),
    ("delete", "/api/v1/audit/{auditentry}/", None, (405, 403, 403)),
    ("patch", "/api/v1/sites/{site}/", {"time_zone": "Europe/Oslo"}, (200, 403, 403)),
    ("put", "/api/v1/sites/{site}/", {"description": "HQ"}, (200, 403, 403)),
    ("patch", "/api/v1/servers/{server}/", {"offer_cap_per_minute": 60}, (200, 403, 403)),
    ("delete", "/api/v1/servers/{server}/", None, (405, 403, 403)),
    # Staged rollouts (Step 7).
    ("get", "/api/v1/rollouts/", None, (200, 200, 403)),
    ("post", "/api/v1/rollouts/", {"rule": "{plannable}", "waves": [10, 100]}, (201, 403, 403)),
    ("get", "/api/v1/rollouts/{rollout}/", None, (200, 200, 403)),
    ("put", "/api/v1/rollouts/{rollout}/", {}, (405, 403, 403)),
    ("delete", "/api/v1/rollouts/{rollout}/", None, (405, 403, 403)),
    ("post", "/api/v1/rollouts/{rollout}/advance/", None, (200, 403, 403)),
    ("post", "/api/v1/rollouts/{rollout}/pause/", None, (200, 403, 403)),
    ("post", "/api/v1/rollouts/{paused}/resume/", None, (200, 403, 403)),
    ("post", "/api/v1/rollouts/{rollout}/cancel/", None, (200, 403, 403)),
    ("post", "/api/v1/rollouts/{rollout}/restore/", None, (200, 403, 403)),
    ("get", "/api/v1/rollouts/{rollout}/advance/", None, (405, 405, 403)),
    ("get", "/api/v1/rollouts/{rollout}/progress/", None, (200, 200, 403)),
    ("post", "/api/v1/rollouts/{rollout}/progress/", None, (405, 403, 403)),
    ("get", "/api/v1/device-controls/", None, (200, 200, 403)),
    ("post", "/api/v1/device-controls/", {"identity": "SN:NEW-1", "rule": "{rule}",
     "kind": "hold"}, (201, 403, 403)),
    ("get", "/api/v1/device-controls/{control}/", None, (200, 200, 403)),
    ("put", "/api/v1/device-controls/{control}/", {}, (405, 403, 403)),
    ("delete", "/api/v1/device-controls/{control}/", None, (204, 403, 403)),
    ("get", "/api/v1/device-groups/", None, (200, 200, 403)),
    ("post", "/api/v1/device-groups/", {"name": "Canary", "members": ["SN:C-1"]},
     (201, 403, 403)),
    ("get", "/api/v1/device-groups/{group}/", None, (200, 200, 403)),
    ("put", "/api/v1/device-groups/{group}/", {"name": "Pilots"}, (200, 403, 403)),
    ("patch", "/api/v1/device-groups/{group}/", {"members": []}, (200, 403, 403)),
    ("delete", "/api/v1/device-groups/{group}/", None, (204, 403, 403)),
    ("get", "/api/v1/maintenance-windows/", None, (200, 200, 403)),
    ("post", "/api/v1/maintenance-windows/", {"site": "Default", "weekday": 0,
     "start": "01:00", "end": "02:00"}, (201, 403, 403)),
    ("get", "/api/v1/maintenance-windows/{window}/", None, (200, 200, 403)),
    ("put", "/api/v1/maintenance-windows/{window}/", {}, (405, 403, 403)),
    ("delete", "/api/v1/maintenance-windows/{window}/", None, (204, 403, 403)),
    ("get", "/api/v1/devices/MAC:0004F2000001/outcomes/", None, (200, 200, 403)),
    ("post", "/api/v1/devices/MAC:0004F2000001/outcomes/", None, (405, 403, 403)),
    ("get", "/api/schema/", None, (200, 200, 403)),
]  # fmt: skip
ROLES = ["administrator", "helpdesk", "anonymous"]
# Rules of other classes: a running rollout's, a paused rollout's, one to plan on.
OTHER_CLASSES = [
    RuleClass("UCPhone", "Aastra", "6725ip", "Rev-2", "DEU", "Firmware"),
    RuleClass("UCPhone", "HP", "4120", "Rev-3", "ENU", "CPE"),
    RuleClass("UCPhone", "Yealink", "T58", "Rev-1", "ENU", "CPE"),
]
OTHER_IDS = [
    uuid.UUID("7f3c1d2e-4b5a-4c6d-8e9f-0a1b2c3d4e5f"),
    uuid.UUID("9a8b7c6d-5e4f-4a3b-8c1d-0e9f8a7b6c5d"),
    uuid.UUID("3c2b1a09-8f7e-4d6c-9b5a-4e3d2c1b0a9f"),
]


@pytest.fixture
def world(
    make_rule: Callable[..., DeviceUpdateRule], make_certificate: Callable[..., x509.Certificate]
) -> dict[str, Any]:
    """One row of every model the API shows, and a certificate not trusted yet."""
    setup = Actor.system("setup")
    rule = make_rule(pending="4.0.2", approved="4.0.1", restore="4.0.0")
    device = testdevice_create(
        scope="global", name="Lobby", identifier_type="SerialNumber", identifier="SN1", actor=setup
    )
    log_config_set(scope="global", values={}, actor=setup)
    trusted = make_certificate("Matrix Publisher")
    publisher = publisher_add(pem=trusted.public_bytes(Encoding.PEM).decode(), actor=setup)
    # Rule actions are refused during a rollout: the rollouts have rules of their own.
    plan = RolloutPlan(waves=(WavePlan(percent=10), WavePlan(percent=100)))
    running_rule, paused_rule, plannable = (
        make_rule(pending="2.1", device_class=device_class, rule_id=rule_id)
        for device_class, rule_id in zip(OTHER_CLASSES, OTHER_IDS, strict=True)
    )
    rollout = rollout_plan(rule=running_rule, plan=plan, actor=setup)
    paused = rollout_pause(
        rollout=rollout_plan(rule=paused_rule, plan=plan, actor=setup), actor=setup
    )
    control = device_hold(identity="MAC:0004F2000001", rule=rule, actor=setup)
    group = device_group_save(name="Pilot", members=["MAC:0004F2000001"], actor=setup)
    window = maintenance_window_create(
        site=Site.objects.get(name="Default"), weekday=6, start=dt.time(1), end=dt.time(4),
        actor=setup,
    )  # fmt: skip
    now = timezone.now()
    Device.objects.create(
        identity="MAC:0004F2000001", mac="0004F2000001", device_type="UCPhone",
        brand="Polycom", model="CX600", state=DeviceState.UP_TO_DATE, first_seen=now,
        last_seen=now, last_channel=Channel.INTERNAL, last_server="web01.example.org",
    )  # fmt: skip
    return {
        "rollout": rollout.pk,
        "paused": paused.pk,
        "plannable": plannable.identity,
        "rules": [rule.pk, running_rule.pk, paused_rule.pk, plannable.pk],
        "control": control.pk,
        "group": group.pk,
        "window": window.pk,
        "rule": rule.pk,
        "rule_id": str(rule.rule_id),
        "testdevice": device.pk,
        "fingerprint": publisher.fingerprint_sha256,
        "site": Site.objects.get(name="Default").pk,
        "pool": rule.pool_id,
        "server": Server.objects.get().pk,
        "auditentry": AuditEntry.objects.order_by("pk").first().pk,  # type: ignore[union-attr]
        "new_pem": make_certificate("Newcomer").public_bytes(Encoding.PEM).decode(),
    }


def state() -> dict[str, Any]:
    """Everything a write could change, for 'nothing changed' checks."""
    return {
        "rules": list(
            DeviceUpdateRule.objects.values_list(
                "pk", "pending_version", "approved_version", "restore_version", "restored"
            )
        ),
        "test devices": list(TestDevice.objects.values_list("pk", "site", "name", "identifier")),
        "log config": list(DeviceLogConfiguration.objects.values()),
        "publishers": list(TrustedPublisher.objects.values_list("fingerprint_sha256", flat=True)),
        "sites": list(Site.objects.values_list("pk", "name", "description", "time_zone")),
        "pools": list(Pool.objects.values_list("pk", "fqdn")),
        "servers": list(Server.objects.values_list("pk", "offer_cap_per_minute")),
        "rollouts": list(Rollout.objects.values_list("pk", "state", "current_wave")),
        "controls": list(DeviceControl.objects.values_list("pk", "identity", "kind")),
        "groups": list(DeviceGroup.objects.values_list("pk", "name")),
        "members": list(DeviceGroupMember.objects.values_list("group", "identifier")),
        "windows": list(MaintenanceWindow.objects.values_list("pk", "weekday", "start")),
        "audit": AuditEntry.objects.count(),
    }


def filled(value: Any, world: dict[str, Any]) -> Any:
    if isinstance(value, str):
        text = value.format(**world)
        return int(text) if text.isdigit() else text
    if isinstance(value, dict):
        return {key: filled(item, world) for key, item in value.items()}
    if isinstance(value, list):
        return [filled(item, world) for item in value]
    return value


def client_for(role: str, request: pytest.FixtureRequest) -> APIClient:
    client = APIClient()
    if role != "anonymous":
        client.force_login(request.getfixturevalue(role))
    return client


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize(
    ("method", "path", "body", "expected"),
    ENDPOINTS,
    ids=[f"{method} {path}" for method, path, _body, _expected in ENDPOINTS],
)
def test_access_matrix(
    request: pytest.FixtureRequest,
    world: dict[str, Any],
    role: str,
    method: str,
    path: str,
    body: Any,
    expected: tuple[int, int, int],
) -> None:
    client = client_for(role, request)
    before = state()

    response = getattr(client, method)(path.format(**world), filled(body, world), format="json")

    status = expected[ROLES.index(role)]
    assert response.status_code == status
    if status >= 400:
        assert state() == before
    if method == "head" or path.startswith("/api/schema/"):
        pass  # no JSON body: HEAD has none; the schema is negotiated as OpenAPI YAML
    elif status == 403 and role == "anonymous":
        assert response.json() == {"detail": "Authentication credentials were not provided."}
    elif status == 403:
        assert response.json() == {"detail": "You do not have permission to perform this action."}


def test_signed_in_user_without_a_role_reads_nothing(world: dict[str, Any]) -> None:
    client = APIClient()
    client.force_login(User.objects.create_user("nobody", password="correct horse battery"))

    responses = [client.get(path) for path in ("/api/v1/rules/", "/api/v1/audit/")]

    assert [response.status_code for response in responses] == [403, 403]


def test_token_authentication_reads_and_acts_as_the_token_owner(
    administrator: User, world: dict[str, Any]
) -> None:
    token = Token.objects.create(user=administrator)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")

    listed = client.get("/api/v1/rules/")
    approved = client.post(f"/api/v1/rules/{world['rule']}/approve/")

    assert listed.status_code == 200
    assert [rule["id"] for rule in listed.json()["results"]] == world["rules"]
    assert approved.status_code == 200
    assert approved.json()["approved_version"] == "4.0.2"
    entry = AuditEntry.objects.get(action="portal.rule.approved")
    assert (entry.actor_id, entry.actor_name) == (administrator.pk, "ada")


def test_helpdesk_token_cannot_change_anything(helpdesk: User, world: dict[str, Any]) -> None:
    token = Token.objects.create(user=helpdesk)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    before = state()

    response = client.post(f"/api/v1/rules/{world['rule']}/approve/")

    assert response.status_code == 403
    assert state() == before


def test_a_wrong_token_is_refused(world: dict[str, Any]) -> None:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Token " + "0" * 40)

    response = client.get("/api/v1/rules/")

    assert response.status_code == 403
    assert response.json() == {"detail": "Invalid token."}


def test_session_writes_need_the_csrf_token(administrator: User, world: dict[str, Any]) -> None:
    client = APIClient(enforce_csrf_checks=True)
    client.force_login(administrator)
    before = state()

    response = client.post(f"/api/v1/rules/{world['rule']}/approve/")

    assert response.status_code == 403
    assert response.json() == {"detail": "CSRF Failed: CSRF cookie not set."}
    assert state() == before


def test_bulk_remove_needs_the_delete_permission(world: dict[str, Any]) -> None:
    approver = User.objects.create_user("approver", password="correct horse battery")
    approver.user_permissions.set(
        Permission.objects.filter(
            content_type__app_label="portal",
            codename__in=["view_deviceupdaterule", "change_deviceupdaterule"],
        )
    )
    client = APIClient()
    client.force_login(approver)
    before = state()

    removed = client.post(
        "/api/v1/rules/actions/", {"action": "remove", "rules": [world["rule"]]}, format="json"
    )
    deleted = client.delete(f"/api/v1/rules/{world['rule']}/")

    assert (removed.status_code, deleted.status_code) == (403, 403)
    assert state() == before
    approved = client.post(
        "/api/v1/rules/actions/", {"action": "approve", "rules": [world["rule"]]}, format="json"
    )
    assert approved.status_code == 200
    assert approved.json()["outcomes"] == [
        {"identity": f"service:WebServer:pool01.example.org/{world['rule_id']}", "ok": True,
         "message": "approved"}
    ]  # fmt: skip
