"""The phone simulator: it speaks the protocol the server reads, fetches and verifies
what it is offered, answers the external challenge, and stays within its bounds."""

from __future__ import annotations

import hashlib
import io
import json
import secrets
import socket
import uuid
from pathlib import Path

import pytest
from django.contrib.auth.models import User
from django.core.management import CommandError, call_command
from django.utils import timezone
from pytest_django.fixtures import Settings
from pytest_django.live_server_helper import LiveServer

from deviceupdate_devtools.simulator import (
    MAX_PHONES,
    Fleet,
    FleetConfig,
    ProtocolViolation,
    SimulatorError,
    models_named,
    parse_offer,
    phone_fails,
)
from phones.decision import decision_tables
from phones.models import Device, DownloadEvent, RequestAudit
from phones.protocol import parse_update_check
from phones.services.rollout_watch import rollouts_observe
from phones.services.spool_loader import spool_load_once
from portal.choices import ReplicaState, UpdateFileRole
from portal.models import (
    DeviceUpdateRule,
    Pool,
    Server,
    ServerFile,
    Site,
    UpdateFile,
    UpdateVersion,
)
from portal.services.audit import Actor
from portal.services.rollout_plans import RolloutPlan, WavePlan
from portal.services.rollouts import rollout_plan

OLD, NEW = "4.0.7577.4363", "4.0.7577.4387"
CX600 = ("UCPhone", "Polycom", "CX600", "Rev-1", "ENU")
IMAGE = hashlib.shake_256(b"simulated firmware").digest(200_000)


@pytest.fixture
def store(settings: Settings, tmp_path: Path) -> Path:
    """This server (a pool of its own; the live server answers as it) and its store,
    holding NEW for the CX600, verified, approved for everyone."""
    tag = secrets.token_hex(4)
    site = Site.objects.create(name=f"Simulator {tag}")
    pool = Pool.objects.create(
        site=site, fqdn=f"pool-{tag}.example.org", internal_web_fqdn=f"pool-{tag}.example.org"
    )
    server = Server.objects.create(pool=pool, fqdn=f"fe-{tag}.example.org")
    settings.SERVER_FQDN = server.fqdn
    settings.SERVER_STORE_DIR = tmp_path / "store"
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    folder = "/".join([*CX600, NEW, "CPE"])
    (settings.SERVER_STORE_DIR / folder).mkdir(parents=True)
    rule_id = uuid.uuid4()
    version = UpdateVersion.objects.create(
        device_type="UCPhone", brand="Polycom", model="CX600", revision="Rev-1", locale="ENU",
        version=NEW, update_type="CPE", folder=folder, rule_id=rule_id, signer="CN=Test",
        catalog_digest="sha256",
    )  # fmt: skip
    for name, role, content in [
        ("CPE.nbt", UpdateFileRole.IMAGE, IMAGE),
        ("CPE.cat", UpdateFileRole.CATALOG, b"catalog"),
    ]:
        (settings.SERVER_STORE_DIR / folder / name).write_bytes(content)
        row = UpdateFile.objects.create(
            version=version, name=name, role=role, size=len(content),
            sha256=hashlib.sha256(content).hexdigest(),
            storage_name=f"DeviceUpdateStore/{folder}/{name}",
        )  # fmt: skip
        ServerFile.objects.create(
            server=server, file=row, state=ReplicaState.VERIFIED, verified_at=timezone.now()
        )
    DeviceUpdateRule.objects.create(
        pool=pool, rule_id=rule_id, device_type="UCPhone", brand="Polycom", model="CX600",
        revision="Rev-1", locale="ENU", update_type="CPE", approved_version=NEW,
    )  # fmt: skip
    return settings.SERVER_STORE_DIR / folder


def fleet(url: str, phones: int = 3, **options: object) -> Fleet:
    return Fleet(FleetConfig(url=url, phones=phones, installed_version=OLD, **options))  # type: ignore[arg-type]


@pytest.mark.django_db(transaction=True)
def test_phones_fetch_verify_and_then_report_the_offered_version(
    live_server: LiveServer, store: Path
) -> None:
    phones = fleet(live_server.url)

    first = phones.run_round()
    assert (first.checks, first.offers, first.downloads, first.verified, first.installs) == (
        3, 1, 1, 1, 1,
    )  # fmt: skip
    assert (first.bytes, first.busy, first.errors, first.error_samples) == (len(IMAGE), 0, 0, ())
    assert first.versions == {
        "Polycom CX600": {NEW: 1},
        "Polycom CX700": {OLD: 1},
        "Aastra 6725ip": {OLD: 1},
    }
    second = phones.run_round()
    assert (second.round, second.checks, second.offers, second.downloads, second.errors) == (
        2, 3, 0, 0, 0,
    )  # fmt: skip

    spool_load_once()
    cx600 = Device.objects.get(model="CX600")
    assert (cx600.mac, cx600.installed, cx600.targets, cx600.state) == (
        "0004F2000001", {"CPE": NEW}, {"CPE": NEW}, "up to date",
    )  # fmt: skip
    assert sorted(Device.objects.exclude(model="CX600").values_list("model", "state")) == [
        ("6725ip", "no rule"),
        ("CX700", "no rule"),
    ]
    assert list(
        RequestAudit.objects.filter(model="CX600").order_by("created_at").values_list("outcome")
    ) == [("offered",), ("up to date",)]


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        ("corrupt", "00-04-F2-00-00-01: CPE.nbt does not match its SHA-256"),
        ("short", "00-04-F2-00-00-01: CPE.nbt is 10 bytes, the offer said 200000"),
        ("missing", "00-04-F2-00-00-01: GET /DeviceUpdateFiles_Int/"),
    ],
)
@pytest.mark.django_db(transaction=True)
def test_a_file_that_does_not_verify_is_not_installed(
    live_server: LiveServer, store: Path, damage: str, message: str
) -> None:
    image = store / "CPE.nbt"
    if damage == "corrupt":
        image.write_bytes(bytes(len(IMAGE)))
    elif damage == "short":
        image.write_bytes(IMAGE[:10])
    else:
        image.unlink()
    phones = fleet(live_server.url, phones=1)

    summary = phones.run_round()

    assert (summary.checks, summary.offers, summary.verified, summary.installs) == (1, 1, 0, 0)
    assert summary.errors == 1
    assert summary.error_samples[0].startswith(message)
    assert summary.versions == {"Polycom CX600": {OLD: 1}}
    # Offered again next time, since the phone still reports the old version.
    assert phones.run_round().offers == 1


@pytest.mark.django_db(transaction=True)
def test_external_phones_answer_the_challenge_and_keep_their_credentials(
    live_server: LiveServer, store: Path
) -> None:
    User.objects.create_user(username="phone0001@example.org", password="phone-secret")
    phones = fleet(live_server.url, phones=2, external_users=1, password="phone-secret")

    first, second = phones.run_round(), phones.run_round()

    assert (first.checks, first.challenged, first.errors) == (2, 1, 0)
    assert (second.checks, second.challenged, second.errors) == (2, 0, 0)
    assert first.installs == 1  # the external CX600, through the Ext download path
    spool_load_once()
    external = RequestAudit.objects.filter(channel="external").order_by("created_at", "id")
    assert list(external.values_list("status", "user", "outcome")) == [
        (401, "sip:phone0001@example.org", "refused"),
        (200, "sip:phone0001@example.org", "offered"),
        (200, "sip:phone0001@example.org", "up to date"),
    ]


@pytest.mark.django_db(transaction=True)
def test_wrong_credentials_are_an_error_not_a_retry_loop(
    live_server: LiveServer, store: Path
) -> None:
    User.objects.create_user(username="phone0001@example.org", password="phone-secret")
    phones = fleet(live_server.url, phones=1, external_users=1, password="wrong")

    summary = phones.run_round()

    assert (summary.checks, summary.challenged, summary.errors) == (0, 1, 1)
    assert summary.error_samples == (
        "00-04-F2-00-00-01: update check answered 401 InvalidCredentials",
    )
    spool_load_once()
    assert list(RequestAudit.objects.order_by("id").values_list("status", "message")) == [
        (401, "AnonymousNotSupported: credentials are required"),
        (401, "InvalidCredentials: the credentials are not valid"),
    ]


@pytest.mark.django_db(transaction=True)
def test_the_command_prints_each_round_and_a_json_summary(live_server: LiveServer) -> None:
    out = io.StringIO()
    call_command(
        "simulate_phones", "--url", live_server.url, "--phones", "4", "--rounds", "2",
        "--models", "cx700", "Aastra/6725IP", stdout=out,
    )  # fmt: skip
    lines = out.getvalue().splitlines()
    assert [line.split(":")[0] for line in lines] == ["round 1", "round 2"]
    assert lines[0].endswith(
        "versions: Aastra 6725ip 4.0.7577.4363 x2; Polycom CX700 4.0.7577.4363 x2"
    )

    out = io.StringIO()
    call_command("simulate_phones", "--url", live_server.url, "--phones", "2", "--json", stdout=out)
    report = json.loads(out.getvalue())
    assert (report["phones"], report["errors"], len(report["rounds"])) == (2, 0, 2)
    assert [r["checks"] for r in report["rounds"]] == [2, 2]


def test_the_command_exits_with_an_error_when_phones_cannot_reach_the_server() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # bound, never listening: connections are refused
        out = io.StringIO()
        with pytest.raises(CommandError, match=r"^2 error\(s\) in 1 round\(s\)$"):
            call_command(
                "simulate_phones", "--url", f"http://127.0.0.1:{port}", "--phones", "2",
                "--rounds", "1", stdout=out,
            )  # fmt: skip
    assert "ConnectionRefusedError" in out.getvalue()


def test_macs_serials_and_models_come_from_the_index_and_the_server_reads_them() -> None:
    phones = fleet("http://127.0.0.1:9", phones=4, first_index=0x0A0B0C)

    checks = [parse_update_check(phone.request_xml()) for phone in phones.phones]

    # Each model in its own range of MACs: the k-th demo model's block starts at k * 2**21.
    assert [(c.mac, c.serial, c.vendor, c.model) for c in checks] == [
        ("0004F20A0B0C", "SIM00658188", "Polycom", "CX600"),
        ("0004F22A0B0D", "SIM02755341", "Polycom", "CX700"),
        ("00085D4A0B0E", "SIM04852494", "Aastra", "6725ip"),
        ("0004F20A0B0F", "SIM00658191", "Polycom", "CX600"),
    ]
    assert {(m.update_type, m.file_name, m.version) for c in checks for m in c.modules} == {
        ("CPE", "CPE.nbt", OLD)
    }
    assert {(c.device_type, c.revision, c.locale, c.user_id) for c in checks} == {
        ("UCPhone", "Rev-1", "ENU", "")
    }


def test_a_phone_keeps_its_mac_and_model_between_a_mixed_run_and_a_run_of_one_model() -> None:
    """The README's walk-throughs: 30 phones of the three models, then 200 CX600s. The
    CX600s of the first run are phones of the second; no MAC names two models."""
    mixed = fleet("http://127.0.0.1:9", phones=30).phones
    cx600 = fleet("http://127.0.0.1:9", phones=200, models=models_named(["CX600"])).phones
    cx700 = fleet("http://127.0.0.1:9", phones=200, models=models_named(["CX700"])).phones

    models = {phone.mac: phone.model.model for phone in mixed}
    for phone in cx600 + cx700:
        assert models.setdefault(phone.mac, phone.model.model) == phone.model.model
    assert len(models) == 410  # 30 + 200 + 200, less the 20 CX600s and CX700s seen twice
    assert sorted(p.mac for p in mixed if p.model.model == "CX600")[:2] == [
        "00-04-F2-00-00-01",
        "00-04-F2-00-00-04",
    ]
    assert (cx700[0].mac, cx700[-1].mac) == ("00-04-F2-20-00-01", "00-04-F2-20-00-C8")


@pytest.mark.parametrize(
    "url",
    [
        "http://192.0.2.10:8000",  # not loopback
        "https://127.0.0.1:8000",  # phones inside the firewall speak http
        "http://127.0.0.1:8000/RequestHandler/",  # an origin, not a path
        "ftp://127.0.0.1",
    ],
)
def test_only_a_loopback_http_origin_is_a_target(url: str) -> None:
    with pytest.raises(SimulatorError):
        fleet(url)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"phones": 0}, "phones must be between 1 and"),
        ({"phones": MAX_PHONES + 1}, "phones must be between 1 and"),
        ({"concurrency": 0}, "concurrency must be between"),
        ({"external_users": 4}, "external users must be between"),
        ({"external_users": 1}, "external phones need a password"),
        ({"external_users": 1, "password": "p", "user_template": "{x}"}, "bad user template"),
        ({"external_users": 1, "password": "p", "user_template": "a:{n}"}, "cannot be a Basic"),
        ({"first_index": 1 << 24}, "phone indexes must stay below"),
        ({"round_timeout": 0.0}, "timeouts must be positive"),
    ],
)
def test_out_of_bounds_settings_are_refused(options: dict[str, object], message: str) -> None:
    options = {"phones": 3, **options}
    with pytest.raises(SimulatorError, match=message):
        fleet("http://127.0.0.1:9", **options)  # type: ignore[arg-type]


def test_rounds_are_bounded_and_models_must_be_known() -> None:
    with pytest.raises(SimulatorError, match="rounds must be between 1 and 1000"):
        fleet("http://127.0.0.1:9").run(1001)
    with pytest.raises(SimulatorError, match="unknown model 'CX900'"):
        models_named(["CX900"])


def test_a_response_that_miscounts_its_files_is_a_protocol_violation() -> None:
    body = (
        b"<Response><NumOfFiles>2</NumOfFiles><BaseURL>http://p/DeviceUpdateFiles_Int/x</BaseURL>"
        b"<Modules><Module><UpdateType>CPE</UpdateType><Version>1.0.0.1</Version>"
        b"<BaseURL>http://p/DeviceUpdateFiles_Int/x</BaseURL><Files><File>"
        b"<FileName>CPE.nbt</FileName><Size>3</Size><SHA256>" + b"a" * 64 + b"</SHA256>"
        b"</File></Files></Module></Modules></Response>"
    )
    with pytest.raises(ProtocolViolation, match="NumOfFiles 2 does not count the File elements"):
        parse_offer(body)
    assert [offer.files[0].size for offer in parse_offer(body.replace(b">2<", b">1<"))] == [3]
    assert parse_offer(b"<Response><NumOfFiles>0</NumOfFiles></Response>") == []


def test_the_failing_share_is_spread_over_the_indexes_and_stable() -> None:
    assert [index for index in range(1, 11) if phone_fails(index, 30)] == [4, 7, 10]
    assert all(
        sum(phone_fails(index, percent) for index in range(start, start + 100)) == percent
        for percent in (0, 5, 30, 100)
        for start in (1, 57, 1000)
    )
    phones = fleet("http://127.0.0.1:9", phones=10, fail_percent=30)
    assert [phone.index for phone in phones.phones if phone.fails] == [4, 7, 10]
    with pytest.raises(SimulatorError, match="the failing share must be between 0 and 100 %"):
        fleet("http://127.0.0.1:9", fail_percent=101)


@pytest.mark.django_db(transaction=True)
def test_failing_phones_download_and_verify_but_keep_reporting_the_old_version(
    live_server: LiveServer, store: Path
) -> None:
    out = io.StringIO()
    call_command(
        "simulate_phones", "--url", live_server.url, "--phones", "1", "--rounds", "2",
        "--fail-percent", "100", "--json", stdout=out,
    )  # fmt: skip

    rounds = json.loads(out.getvalue())["rounds"]
    assert [
        (r["offers"], r["downloads"], r["verified"], r["installs"], r["not_installed"])
        for r in rounds
    ] == [(1, 1, 1, 0, 1), (1, 1, 1, 0, 1)]
    assert [r["versions"] for r in rounds] == [{"Polycom CX600": {OLD: 1}}] * 2
    spool_load_once()
    folder = "/".join([*CX600, NEW, "CPE"])
    assert (
        list(DownloadEvent.objects.values_list("client_address", "folder", "file_name"))
        == [
            ("127.0.0.1", folder, "CPE.nbt"),
        ]
        * 2
    )


@pytest.mark.django_db(transaction=True)
def test_a_rollout_whose_failing_phones_keep_the_old_version_halts_and_offers_nothing_more(
    live_server: LiveServer, store: Path, settings: Settings
) -> None:
    settings.DEVICEUPDATE_NOTIFY_EMAILS = []
    rule = DeviceUpdateRule.objects.get()
    DeviceUpdateRule.objects.filter(pk=rule.pk).update(approved_version=OLD, pending_version=NEW)
    rollout = rollout_plan(
        rule=DeviceUpdateRule.objects.get(),
        plan=RolloutPlan(waves=(WavePlan(percent=100),), min_sample=5),
        actor=Actor.system("test"),
    )
    phones = fleet(live_server.url, phones=10, models=models_named(["CX600"]), fail_percent=30)

    first, second = phones.run_round(), phones.run_round()
    spool_load_once()
    run = rollouts_observe()
    decision_tables.reset()
    third = phones.run_round()

    assert [(r.offers, r.installs, r.not_installed) for r in (first, second)] == [
        (10, 7, 3),
        (3, 0, 3),
    ]
    assert run.rollouts == [
        f"rollout #{rollout.pk} halted: wave 1: 3 of 10 observed phones failed (30 % > 5 %)"
    ]
    assert (third.offers, third.errors, third.versions) == (
        0,
        0,
        {"Polycom CX600": {OLD: 3, NEW: 7}},
    )
    rollout.refresh_from_db()
    assert rollout.state == "halted"
