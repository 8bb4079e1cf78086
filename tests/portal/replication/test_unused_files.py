"""Clear unused files: only on request, per pool, only what no rule names any more."""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from deviceupdate_devtools import builder
from portal.models import (
    AuditEntry,
    DeviceUpdateRule,
    Pool,
    Server,
    ServerFile,
    TrustedPublisher,
    UpdateVersion,
)
from portal.services.audit import Actor
from portal.services.cleanup import server_remove_unused, unused_files_clear_queue
from portal.services.imports import package_import_run, package_import_start
from portal.services.replication import server_replicate
from portal.services.rules import rule_approve

pytestmark = pytest.mark.django_db
ACTOR = Actor.system("tests")
VERSIONS = ("4.0.1.1", "4.0.2.1", "4.0.3.1")


def folder(version: str) -> str:
    return f"UCPhone/Polycom/CX600/Rev-1/ENU/{version}/CPE"


@pytest.fixture
def three_approved(
    tmp_path: Path,
    publisher: builder.Signer,
    stores: dict[str, Path],
    trusted: TrustedPublisher,
    django_capture_on_commit_callbacks: Callable[..., Any],
) -> Server:
    """Versions 1, 2, 3 imported and approved in turn (so A=3, R=2 and 1 is unused),
    each copied to this server's store."""
    server = Server.objects.get()
    for version in VERSIONS:
        package = builder.build_package(
            [builder.build_update(signer=publisher, version=version)],
            path=tmp_path / f"{version}.cab",
        )
        with (
            mock.patch("portal.tasks.server_replicate_task.delay"),
            django_capture_on_commit_callbacks(execute=True),
            package.open("rb") as source,
        ):
            job = package_import_start(source=source, filename="p.cab", pools=[], actor=ACTOR)
            package_import_run(job_id=job.pk)
            rule_approve(rule=DeviceUpdateRule.objects.get(), actor=ACTOR)
        server_replicate(
            server=server,
            version_id=UpdateVersion.objects.get(version=version).pk,
            store_dir=stores["server"],
        )
    return server


def test_approves_never_remove_files_and_clearing_removes_only_the_unused(
    three_approved: Server,
    stores: dict[str, Path],
    django_capture_on_commit_callbacks: Callable[..., Any],
) -> None:
    rule = DeviceUpdateRule.objects.get()
    assert (rule.approved_version, rule.restore_version) == ("4.0.3.1", "4.0.2.1")
    for version in VERSIONS:  # still all there after three approves
        assert (stores["server"] / folder(version) / "CPE.nbt").is_file()

    with (
        mock.patch("portal.tasks.server_remove_unused_task.delay") as delay,
        django_capture_on_commit_callbacks(execute=True),
    ):
        folders = unused_files_clear_queue(pool=Pool.objects.get(), actor=ACTOR)
    assert folders == [folder("4.0.1.1")]
    delay.assert_called_once_with(server_fqdn=three_approved.fqdn)
    entry = AuditEntry.objects.get(action="portal.pool.unused_files_cleared")
    assert entry.changes["versions"] == [[folder("4.0.1.1")], []]

    removed = server_remove_unused(server=three_approved, store_dir=stores["server"])
    assert (removed.files, removed.central_versions) == (3, 1)
    assert not (stores["server"] / folder("4.0.1.1")).exists()
    for version in VERSIONS[1:]:
        assert (stores["server"] / folder(version) / "CPE.nbt").is_file()
        assert (stores["central"] / "DeviceUpdateStore" / folder(version) / "CPE.nbt").is_file()
    assert list((stores["central"] / "DeviceUpdateStore" / folder("4.0.1.1")).iterdir()) == []
    assert sorted(UpdateVersion.objects.values_list("version", flat=True)) == list(VERSIONS[1:])
    assert ServerFile.objects.filter(file__version__version="4.0.1.1").count() == 0
    # Twice is the same as once.
    again = server_remove_unused(server=three_approved, store_dir=stores["server"])
    assert (again.files, again.central_versions) == (0, 0)


def test_the_command_names_the_pool_and_lists_the_versions(three_approved: Server) -> None:
    with pytest.raises(CommandError, match="no pool nowhere.example.org"):
        call_command("clear_device_update_files", "--pool", "nowhere.example.org")
    out = io.StringIO()
    with mock.patch("portal.tasks.server_remove_unused_task.delay"):
        call_command("clear_device_update_files", "--pool", three_approved.pool.fqdn, stdout=out)
    assert out.getvalue().splitlines() == [
        f"{three_approved.pool.fqdn}: removal of 1 unused version(s) queued to its servers",
        f"  {folder('4.0.1.1')}",
    ]


def test_the_control_panel_clears_unused_files_of_the_selected_pools(
    three_approved: Server,
    client: Any,
    administrator: Any,
    helpdesk: Any,
    django_capture_on_commit_callbacks: Callable[..., Any],
) -> None:
    pool = three_approved.pool
    form = {"action": "clear_unused_files", "_selected_action": [str(pool.pk)]}
    client.force_login(helpdesk)
    with mock.patch("portal.tasks.server_remove_unused_task.delay") as delay:
        client.post("/admin/portal/pool/", form)
    delay.assert_not_called()
    assert not AuditEntry.objects.filter(action="portal.pool.unused_files_cleared").exists()

    client.force_login(administrator)
    with (
        mock.patch("portal.tasks.server_remove_unused_task.delay") as delay,
        django_capture_on_commit_callbacks(execute=True),
    ):
        response = client.post("/admin/portal/pool/", form, follow=True)
    delay.assert_called_once_with(server_fqdn=three_approved.fqdn)
    assert [str(message) for message in response.context["messages"]] == [
        f"{pool.fqdn}: removal of 1 unused version(s) queued to its servers: {folder('4.0.1.1')}"
    ]
