"""The readiness report: the runner (a check that cannot run is a WARN saying why), the
`check_deployment` command and the control panel's Deployment readiness page."""

from __future__ import annotations

import io
import json

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import Client
from pytest_django.fixtures import Settings

from portal.readiness import runner
from portal.readiness.base import CheckResult, Status
from portal.readiness.network import CheckError
from portal.readiness.runner import Check, readiness_run

seen: list[tuple[str, object]] = []


def dns_stub(*, domains: list[str], timeout: float) -> list[CheckResult]:
    seen.append(("dns", (domains, timeout)))
    return [CheckResult("dns", f"ucupdates-r2.{d}", Status.PASS, "resolves") for d in domains]


def pool_stub(*, timeout: float) -> list[CheckResult]:
    seen.append(("pool", timeout))
    return [CheckResult("pool", "fe01: worker", Status.FAIL, "never answered", "start the worker")]


def broken(*, timeout: float) -> list[CheckResult]:
    raise RuntimeError("boom")


def unreachable(*, timeout: float) -> list[CheckResult]:
    raise CheckError("the check ran out of its 2 s")


@pytest.fixture
def stub_checks(monkeypatch: pytest.MonkeyPatch) -> None:
    seen.clear()
    monkeypatch.setattr(
        runner, "CHECKS", (Check("dns", dns_stub, takes_domains=True), Check("pool", pool_stub))
    )


def test_each_check_gets_its_timeout_and_the_domains_it_asks_for(stub_checks: None) -> None:
    results = readiness_run(domains=["Example.ORG."], timeout=3)
    assert seen == [("dns", (["example.org"], 3.0)), ("pool", 3.0)]
    assert [(r.check, r.status) for r in results] == [("dns", Status.PASS), ("pool", Status.FAIL)]


def test_a_check_that_cannot_run_is_a_warning_saying_why_never_a_traceback() -> None:
    results = readiness_run(
        domains=["example.org"], timeout=2,
        checks=[Check("broken", broken), Check("time", unreachable)],
    )  # fmt: skip
    assert results == [
        CheckResult(
            "broken", "broken", Status.WARN, "could not run: RuntimeError: boom",
            "fix what stopped the check and run it again",
        ),
        CheckResult(
            "time", "time", Status.WARN, "could not run: the check ran out of its 2 s",
            "fix what stopped the check and run it again",
        ),
    ]  # fmt: skip


def test_the_registered_checks_are_the_six_groups_in_order() -> None:
    assert [check.name for check in runner.CHECKS] == [
        "dns", "certificates", "time", "phone", "pool", "directory",
    ]  # fmt: skip


@pytest.mark.django_db
def test_check_deployment_prints_each_result_and_exits_1_on_a_failure(stub_checks: None) -> None:
    out = io.StringIO()
    with pytest.raises(SystemExit) as exited:
        call_command("check_deployment", "--domain", "example.org", "--timeout", "4", stdout=out)
    assert exited.value.code == 1
    assert out.getvalue().splitlines() == [
        "PASS dns ucupdates-r2.example.org: resolves",
        "FAIL pool fe01: worker: never answered -> start the worker",
        "PASS 1, WARN 0, FAIL 1",
    ]
    assert seen[0] == ("dns", (["example.org"], 4.0))


@pytest.mark.django_db
def test_check_deployment_json_and_a_clean_exit_without_failures(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(runner, "CHECKS", (Check("dns", dns_stub, takes_domains=True),))
    out = io.StringIO()
    call_command("check_deployment", "--domain", "a.example.org", "--json", stdout=out)
    assert json.loads(out.getvalue()) == {
        "results": [
            {
                "check": "dns", "subject": "ucupdates-r2.a.example.org", "status": "PASS",
                "detail": "resolves", "fix": "",
            }
        ],
        "summary": {"PASS": 1, "WARN": 0, "FAIL": 0},
    }  # fmt: skip


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--domain", "not a domain"], "--domain 'not a domain' is not a DNS domain"),
        (["--domain", "x_y.example.org"], "--domain 'x_y.example.org' is not a DNS domain"),
        (["--timeout", "0"], "--timeout must be more than 0 and at most 300 seconds"),
    ],
)
def test_check_deployment_refuses_bad_options_in_one_line(
    stub_checks: None, arguments: list[str], message: str
) -> None:
    out = io.StringIO()
    with pytest.raises(CommandError, match=f"^{message}$"):
        call_command("check_deployment", *arguments, stdout=out)
    assert (out.getvalue(), seen) == ("", [])


@pytest.mark.django_db
def test_the_readiness_page_runs_the_checks_for_both_roles(
    stub_checks: None, administrator: User, helpdesk: User, settings: Settings
) -> None:
    settings.READINESS_SIP_DOMAINS = ["example.org"]
    settings.READINESS_DHCP_DOMAINS = []
    for user in (administrator, helpdesk):
        client = Client()
        client.force_login(user)
        page = client.get("/admin/readiness/")
        assert page.status_code == 200
        assert b'id="run-checks"' in page.content
        assert b"Domains: example.org." in page.content
        assert b'id="readiness-results"' not in page.content
        assert seen == []
        page = client.post("/admin/readiness/")
        assert page.status_code == 200
        content = page.content.decode()
        assert '<p id="readiness-summary">PASS 1, WARN 0, FAIL 1</p>' in content
        assert (
            '<tr class="readiness-fail" data-check="pool" data-status="FAIL">\n'
            "      <td><strong>FAIL</strong></td><td>pool</td><td>fe01: worker</td>"
            "<td>never answered</td><td>start the worker</td></tr>"
        ) in content
        seen.clear()


@pytest.mark.django_db
def test_the_readiness_page_is_closed_to_anonymous_and_to_staff_without_a_role(
    stub_checks: None,
) -> None:
    client = Client()
    assert client.get("/admin/readiness/").status_code == 302
    assert client.post("/admin/readiness/").status_code == 302
    nobody = User.objects.create_user("nobody", password="x" * 20, is_staff=True)
    client.force_login(nobody)
    assert client.get("/admin/readiness/").status_code == 403
    assert client.post("/admin/readiness/").status_code == 403
    assert seen == []


@pytest.mark.django_db
def test_the_index_links_the_readiness_page(helpdesk: User) -> None:
    client = Client()
    client.force_login(helpdesk)
    assert b'<a href="/admin/readiness/">Deployment readiness</a>' in client.get("/admin/").content
