"""Benchmark: a phone's external sign-in against the directory, cached and not, as a
ratio to the sign-in of a local account (Django's password hash) in the same run.

Starts the tests' slapd (Debian's, on loopback, laid out like Active Directory), and
calls ``phones.auth.check_external`` as the external update check does, for the same
user over and over (a boot storm: every phone signs in again): a local account; a
directory account with the success cache off (every sign-in searches, binds as the
user and reads the groups); and with it on. Reports the median time per sign-in of
each, their ratios to the local one (and cached to uncached), and the binds sent to the
directory per sign-in.

    .venv/bin/python bench/directory_signin_bench.py [--rounds 5]

SQLite in a temporary data directory; the cache is Django's (REDIS_URL when set).
"""

from __future__ import annotations

import argparse
import base64
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

PROJECT = Path(__file__).resolve().parent.parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()

    data = Path(tempfile.mkdtemp(prefix="directory-bench-"))
    os.environ["DEVICEUPDATE_DATA_DIR"] = str(data)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "deviceupdate.settings")
    sys.path.insert(0, str(PROJECT))
    import django

    django.setup()
    import shutil

    import ldap.ldapobject
    from django.contrib.auth.models import User
    from django.core.cache import cache
    from django.core.management import call_command
    from django.test import RequestFactory, override_settings
    from django.urls import resolve

    from phones.auth import check_external
    from tests.directory.slapd import PASSWORD, create_slapd

    call_command("migrate", verbosity=0)
    local_password = "correct horse battery"  # noqa: S105 (a bench account's)
    User.objects.create_user("ada", password=local_password)
    (data / "slapd").mkdir()
    slapd = create_slapd(
        slapd=shutil.which("slapd") or "/usr/sbin/slapd",
        slapadd=shutil.which("slapadd") or "/usr/sbin/slapadd",
        folder=data / "slapd",
    )
    binds = [0]
    original_bind = ldap.ldapobject.SimpleLDAPObject.simple_bind_s

    def counting_bind(self: object, *args: object, **kwargs: object) -> object:
        binds[0] += 1
        return original_bind(self, *args, **kwargs)

    ldap.ldapobject.SimpleLDAPObject.simple_bind_s = counting_bind
    slapd.start()
    url = "/RequestHandlerExt/ucdevice.upx"
    factory = RequestFactory()

    def sign_in(user_id: str, login: str, password: str) -> Callable[[], None]:
        header = "Basic " + base64.b64encode(f"{login}:{password}".encode()).decode()

        def once() -> None:
            request = factory.post(url, HTTP_AUTHORIZATION=header, REMOTE_ADDR="192.0.2.1")
            request.resolver_match = resolve(url)
            refusal = check_external(request, user_id=user_id, address="192.0.2.1")
            if refusal is not None:
                raise SystemExit(f"sign-in refused: {refusal}")

        return once

    def per_sign_in(action: Callable[[], None], count: int) -> tuple[float, float]:
        binds[0] = 0
        start = time.perf_counter()
        for _ in range(count):
            action()
        return (time.perf_counter() - start) / count, binds[0] / count

    backends = [
        "portal.admin.lockouts.SigninGuardBackend",
        "portal.directory.backend.DirectoryBackend",
        "django.contrib.auth.backends.ModelBackend",
    ]
    local = sign_in("sip:ada", "ada", local_password)
    directory = sign_in("sip:alice@contoso.com", "CONTOSO\\alice", PASSWORD)
    rows: dict[str, list[tuple[float, float]]] = {"local": [], "uncached": [], "cached": []}
    try:
        for _ in range(args.rounds):
            with override_settings(AUTHENTICATION_BACKENDS=backends):
                cache.clear()
                with override_settings(DIRECTORY=slapd.config(cache_seconds=0)):
                    rows["local"].append(per_sign_in(local, 10))
                    rows["uncached"].append(per_sign_in(directory, 50))
                with override_settings(DIRECTORY=slapd.config(cache_seconds=300)):
                    directory()  # fills the cache
                    rows["cached"].append(per_sign_in(directory, 2000))
    finally:
        slapd.stop()
        shutil.rmtree(data, ignore_errors=True)
    base = statistics.median(seconds for seconds, _ in rows["local"])
    for name, results in rows.items():
        seconds = statistics.median(s for s, _ in results)
        bind_rate = statistics.median(b for _, b in results)
        print(
            f"{name:9} {seconds * 1000:8.3f} ms a sign-in  ratio to local {seconds / base:6.3f}"
            f"  binds a sign-in {bind_rate:.2f}"
            f"  (rounds {', '.join(f'{s / base:.3f}' for s, _ in results)})"
        )

    cached = statistics.median(s for s, _ in rows["cached"])
    uncached = statistics.median(s for s, _ in rows["uncached"])
    print(f"cached / uncached directory sign-in: {cached / uncached:.3f}")


if __name__ == "__main__":
    main()
