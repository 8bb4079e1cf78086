"""``make_demo_package``, as ``make run`` calls it: the two versions of the README's
walk-throughs, signed by one demo CA that is trusted once."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from pytest_django.fixtures import Settings

from portal.models import AuditEntry, TrustedPublisher

pytestmark = pytest.mark.django_db


@pytest.fixture
def data_dir(settings: Settings, tmp_path: Path) -> Path:
    settings.DATA_DIR = tmp_path
    return tmp_path


def make(*args: str) -> list[dict[str, object]]:
    out = io.StringIO()
    call_command("make_demo_package", "--json", *args, stdout=out)
    result: list[dict[str, object]] = json.loads(out.getvalue())
    return result


def inspected(path: str) -> dict[str, object]:
    """What ``inspect_device_update --json`` says of a package: the import's own verdict."""
    out = io.StringIO()
    call_command("inspect_device_update", path, "--json", stdout=out)
    result: dict[str, object] = json.loads(out.getvalue())
    return result


def test_both_walk_through_versions_are_written_and_the_ca_is_trusted_once(
    data_dir: Path,
) -> None:
    first = make()
    again = make()

    demo = data_dir / "demo"
    assert first == [
        {"path": str(demo / "UCUpdates-4.0.7577.4387.cab"), "version": "4.0.7577.4387",
         "trusted": True},
        {"path": str(demo / "UCUpdates-4.0.7577.4400.cab"), "version": "4.0.7577.4400",
         "trusted": False},
    ]  # fmt: skip
    assert [entry["trusted"] for entry in again] == [False, False]
    assert TrustedPublisher.objects.count() == 1
    assert AuditEntry.objects.filter(action="portal.publisher.added").count() == 1
    for entry in first:
        report = inspected(str(entry["path"]))
        assert (report["verdict"], report["reason"]) == ("accepted", "")
        assert sorted(u["folder"] for u in report["updates"]) == [  # type: ignore[attr-defined]
            f"UCPhone/Aastra/6725ip/Rev-1/ENU/{entry['version']}/CPE",
            f"UCPhone/Polycom/CX600/Rev-1/ENU/{entry['version']}/CPE",
            f"UCPhone/Polycom/CX700/Rev-1/ENU/{entry['version']}/CPE",
        ]


def test_one_version_on_request_and_a_bad_one_refused(data_dir: Path) -> None:
    assert [entry["version"] for entry in make("--firmware-version", "4.0.7577.4500")] == [
        "4.0.7577.4500"
    ]
    with pytest.raises(CommandError, match=r"^'4\.0\.x' is not a version"):
        make("--firmware-version", "4.0.x")
    assert sorted(p.name for p in (data_dir / "demo").glob("*.cab")) == [
        "UCUpdates-4.0.7577.4500.cab"
    ]
