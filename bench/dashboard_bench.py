"""Benchmark: the control-panel dashboards with 100,000 phones, each as a ratio to the
plain inventory list (the phones.Device changelist, first page) in the same run.

The fleet: 100,000 phones of 20 models (half of them one model, CX600), three to five
versions per model, every inventory state; a rule per model, half with a pending
version; a running rollout on CX600 (5 %, 25 %, 100 %, at wave 2) with an observed
outcome for each phone of its first two waves (12,500 or so, 3 % failed) and two days
of samples every 5 minutes per wave. Each round requests, signed in as a helpdesk
user, through Django's test client (the whole stack but the network): the changelist,
the fleet dashboard, the rollout dashboard, the admin index (with its fleet overview).
Reports the median ratio of rounds and the median ms per page, the queries per page,
the index without its overview (a user without phones.view_device), and the time of
each selector alone. Target: every dashboard under a second. On PostgreSQL the tables
are vacuumed and analysed after the bulk load, as autovacuum would.

    .venv/bin/python bench/dashboard_bench.py [--phones 100000] [--rounds 7]
        [--database-url postgres://postgres@127.0.0.1:5432/dashboard_bench]

With --database-url the database is created when missing; it must hold no phones (the
bench refuses otherwise) and is emptied of what the bench wrote when it ends. Without
it, SQLite in a temporary data directory.
"""

from __future__ import annotations

import argparse
import datetime as dt
import functools
import os
import random
import secrets
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

PROJECT = Path(__file__).resolve().parent.parent
SERVER = "fe-bench.example.org"
POOL = "pool-bench.example.org"
MODELS = 20
ACTOR = "dashboard bench"
BIG_MODEL_SHARE = 0.5
STATES = [  # (state, weight)
    ("up to date", 70),
    ("update offered", 15),
    ("awaiting copy", 3),
    ("deferred", 5),
    ("held", 2),
    ("no rule", 5),
]


def create_database(url: str) -> None:
    """CREATE DATABASE when the URL's database does not exist (PostgreSQL only)."""
    import psycopg

    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    if not name or name in ("postgres", "test", "template0", "template1"):
        raise SystemExit(f"give the bench a database of its own, not {name!r}")
    admin_url = parts._replace(path="/postgres").geturl()
    with psycopg.connect(admin_url, autocommit=True) as connection:
        exists = connection.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s", [name]
        ).fetchone()
        if exists is None:
            connection.execute(f'CREATE DATABASE "{name}"')
            print(f"created database {name}")


def setup_django(data_dir: Path, database_url: str | None) -> None:
    for name in ("DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL"):
        os.environ.pop(name, None)
    os.environ.update(
        DJANGO_SETTINGS_MODULE="deviceupdate.settings",
        DEVICEUPDATE_DATA_DIR=str(data_dir),
        DEVICEUPDATE_SERVER_FQDN="web-bench.example.org",
        DEBUG="false",
        SECRET_KEY=secrets.token_urlsafe(64),
    )
    if database_url:
        os.environ["DATABASE_URL"] = database_url
    sys.path.insert(0, str(PROJECT))
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def populate(phones: int) -> dict[str, Any]:
    """The fleet, the rules, a rollout with outcomes and samples; returns the rollout."""
    from django.contrib.auth.models import Group, User
    from django.utils import timezone

    from phones.models import Device, DeviceOutcome, RolloutSample
    from portal.models import DeviceUpdateRule, Pool, Server, Site
    from portal.roles import HELPDESK
    from portal.services.audit import Actor
    from portal.services.rollout_plans import RolloutPlan, WavePlan
    from portal.services.rollouts import rollout_advance, rollout_plan
    from portal.waves import bucket

    if Device.objects.exists():
        raise SystemExit("the database already holds phones: give the bench an empty one")
    rng = random.Random(7)
    now = timezone.now()
    site, _ = Site.objects.get_or_create(name="Default")
    pool = Pool.objects.create(site=site, fqdn=POOL, internal_web_fqdn=POOL)
    Server.objects.create(pool=pool, fqdn=SERVER)
    models = ["CX600", *(f"M{index:02d}" for index in range(1, MODELS))]
    versions = {
        model: [f"4.0.{index}.{n}" for n in range(rng.randint(3, 5))]
        for index, model in enumerate(models)
    }
    states, weights = zip(*STATES, strict=True)
    started = time.perf_counter()
    batch: list[Device] = []
    for number in range(phones):
        model = models[0] if number < phones * BIG_MODEL_SHARE else rng.choice(models[1:])
        mac = f"0004F2{number:06X}"
        installed = {"CPE": rng.choice(versions[model])} if rng.random() > 0.01 else {}
        batch.append(
            Device(
                identity=f"MAC:{mac}",
                mac=mac,
                serial=f"SN{number:07d}",
                device_type="UCPhone",
                brand="Polycom" if model == "CX600" or number % 3 else "Yealink",
                model=model,
                revision="Rev-1",
                locale="ENU",
                installed=installed,
                targets=installed,
                state=rng.choices(states, weights)[0],
                first_seen=now,
                last_seen=now - dt.timedelta(seconds=number),
                last_channel="internal",
                last_server=SERVER,
            )
        )
        if len(batch) == 5000:
            Device.objects.bulk_create(batch)
            batch = []
    Device.objects.bulk_create(batch)
    print(f"{phones} phones written in {time.perf_counter() - started:.1f} s")
    rules = {
        model: DeviceUpdateRule.objects.create(
            pool=pool,
            rule_id=uuid.uuid4(),
            device_type="UCPhone",
            brand="Polycom",
            model=model,
            revision="Rev-1",
            locale="ENU",
            update_type="CPE",
            approved_version=versions[model][-2],
            pending_version=versions[model][-1] if index % 2 == 0 else "",
        )
        for index, model in enumerate(models)
    }
    actor = Actor.system(ACTOR)
    rule = rules["CX600"]
    start = now - dt.timedelta(days=2)
    plan = RolloutPlan(waves=(WavePlan(percent=5), WavePlan(percent=25), WavePlan(percent=100)))
    rollout = rollout_plan(rule=rule, plan=plan, actor=actor, now=start)
    rollout = rollout_advance(rollout=rollout, actor=actor, now=start + dt.timedelta(days=1))
    reached = [
        identity
        for identity in Device.objects.filter(model="CX600").values_list("identity", flat=True)
        if bucket(str(rule.rule_id), identity) < 2500
    ]
    outcomes = []
    for identity in reached:
        roll = rng.random()
        state = "running" if roll < 0.9 else "failed" if roll < 0.93 else "offered"
        at = start + dt.timedelta(minutes=rng.randint(0, 2800))
        outcomes.append(
            DeviceOutcome(
                identity=identity,
                rule=rule,
                version=rollout.to_version,
                state=state,
                offered_first=at,
                offered_last=at,
                offered_count=1,
                downloaded_at=at if state != "offered" else None,
                running_at=at if state == "running" else None,
                failed_at=at if state == "failed" else None,
                failure="still reports the old version" if state == "failed" else "",
                updated_at=at,
            )
        )
    DeviceOutcome.objects.bulk_create(outcomes, batch_size=5000)
    samples = [
        RolloutSample(
            rollout=rollout,
            wave=wave,
            taken_at=start + dt.timedelta(minutes=5 * step),
            planned=[250, 1000, 48750][wave],
            offered=min(step * 3, [250, 1000, 48750][wave]),
            running=min(step * 2, [250, 1000, 48750][wave]),
            failed=step // 100,
        )
        for wave in range(3)
        for step in range(576)
    ]
    RolloutSample.objects.bulk_create(samples, batch_size=5000)
    user = User.objects.create_user(username="bench-helpdesk", password=None, is_staff=True)
    user.groups.add(Group.objects.get(name=HELPDESK))
    # The index as it was: the same view permissions but the inventory's, so no overview.
    stock = User.objects.create_user(username="bench-no-inventory", password=None, is_staff=True)
    stock.user_permissions.set(
        Group.objects.get(name=HELPDESK).permissions.exclude(codename="view_device")
    )
    print(
        f"rules {len(rules)}, rollout #{rollout.pk} at wave 2, outcomes {len(outcomes)}, "
        f"samples {len(samples)}"
    )
    return {"rollout": rollout, "user": user, "stock_user": stock}


def clean_up() -> None:
    """Remove what the bench wrote (the database itself stays)."""
    from django.contrib.auth.models import User

    from phones.models import Device, DeviceOutcome, RolloutSample
    from portal.models import AuditEntry, DeviceUpdateRule, Pool, Rollout, Server

    ours = {"rule__pool__fqdn": POOL}
    RolloutSample.objects.filter(
        **{f"rollout__{key}": value for key, value in ours.items()}
    ).delete()
    DeviceOutcome.objects.filter(**ours).delete()
    Rollout.objects.filter(**ours).delete()
    DeviceUpdateRule.objects.filter(pool__fqdn=POOL).delete()
    Server.objects.filter(fqdn=SERVER).delete()
    Pool.objects.filter(fqdn=POOL).delete()
    Device.objects.all().delete()  # the bench refuses a database that held phones
    AuditEntry.objects.filter(actor_name=ACTOR).delete()
    User.objects.filter(username__in=["bench-helpdesk", "bench-no-inventory"]).delete()


def timed(call: Callable[[], Any]) -> float:
    started = time.perf_counter()
    call()
    return (time.perf_counter() - started) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--phones", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument(
        "--database-url",
        help="PostgreSQL database of the bench's own (created when missing), e.g. "
        "postgres://postgres@127.0.0.1:5432/dashboard_bench; default SQLite in a "
        "temporary data directory",
    )
    args = parser.parse_args()
    if args.database_url:
        create_database(args.database_url)
    with tempfile.TemporaryDirectory(prefix="dashboard-bench-") as tmp:
        setup_django(Path(tmp), args.database_url)
        from django.db import connection
        from django.test import Client
        from django.test.utils import CaptureQueriesContext

        from phones.dashboards import fleet_overview, fleet_states, fleet_versions, rollout_history
        from phones.services.rollout_watch import rollout_progress

        print(f"database: {connection.vendor}")
        try:
            world = populate(args.phones)
            if connection.vendor == "postgresql":
                # What autovacuum does to a table in service after a bulk load: statistics,
                # and the visibility map that lets counts read an index alone.
                with connection.cursor() as cursor:
                    cursor.execute("VACUUM ANALYZE")
            rollout = world["rollout"]
            client = Client(SERVER_NAME="localhost")
            client.force_login(world["user"])
            stock_client = Client(SERVER_NAME="localhost")
            stock_client.force_login(world["stock_user"])
            pages = {
                "changelist": "/admin/phones/device/",
                "fleet dashboard": "/admin/dashboards/",
                "rollout dashboard": f"/admin/dashboards/rollouts/{rollout.pk}/",
                "admin index": "/admin/",
            }

            def get(path: str) -> None:
                response = client.get(path)
                assert response.status_code == 200, (path, response.status_code)

            queries = {}
            for name, path in pages.items():  # warm-up, and the queries of each page
                with CaptureQueriesContext(connection) as captured:
                    get(path)
                queries[name] = len(captured)
            ms: dict[str, list[float]] = {name: [] for name in pages}
            stock_ms: list[float] = []
            stock_client.get("/admin/")
            for _ in range(args.rounds):
                for name, path in pages.items():
                    ms[name].append(timed(functools.partial(get, path)))
                stock_ms.append(timed(lambda: stock_client.get("/admin/")))
            base = ms["changelist"]
            print(f"\n{args.phones} phones, {args.rounds} rounds, median of rounds:")
            print(
                f"  changelist (first page of 100): {statistics.median(base):.0f} ms "
                f"({queries['changelist']} queries)"
            )
            for name in list(pages)[1:]:
                ratios = [page / ref for page, ref in zip(ms[name], base, strict=True)]
                print(
                    f"  {name}: {statistics.median(ms[name]):.0f} ms, "
                    f"{statistics.median(ratios):.2f}x the changelist "
                    f"(rounds {', '.join(f'{r:.2f}' for r in ratios)}; "
                    f"{queries[name]} queries; slowest {max(ms[name]):.0f} ms)"
                )
            print(
                f"  admin index without the overview (a user without phones.view_device): "
                f"{statistics.median(stock_ms):.0f} ms; with it "
                f"{statistics.median(ms['admin index']):.0f} ms"
            )
            selectors: dict[str, Callable[[], Any]] = {
                "fleet_versions": fleet_versions,
                "fleet_states": fleet_states,
                "fleet_overview": fleet_overview,
                "rollout_progress": lambda: rollout_progress(rollout=rollout),
                "rollout_history": lambda: rollout_history(rollout=rollout),
            }
            print("selectors alone, median ms:")
            for name, call in selectors.items():
                times = [timed(call) for _ in range(args.rounds)]
                print(f"  {name}: {statistics.median(times):.1f}")
        finally:
            clean_up()


if __name__ == "__main__":
    main()
