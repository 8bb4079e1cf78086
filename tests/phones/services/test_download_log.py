"""nginx's download log read into DownloadEvent rows: which lines count, the client
address, the saved position (resume, rotation, bounds) and malformed lines."""

from __future__ import annotations

import datetime as dt
import fcntl
import json
import os
from pathlib import Path
from typing import Any

import pytest
from pytest_django.fixtures import Settings

from deviceupdate.celery_routes import route_task
from phones import tasks
from phones.models import DownloadEvent
from phones.services.download_log import DownloadLogResult, download_log_read
from portal.models import Server
from tests.phones.conftest import stored_version

pytestmark = pytest.mark.django_db

VERSION = "4.0.7577.4387"
FOLDER = f"UCPhone/Polycom/CX600/Rev-1/ENU/{VERSION}/CPE"
SIZE = 31457280
MSEC = "1714564800.250"
AT = dt.datetime(2024, 5, 1, 12, 0, 0, 250_000, tzinfo=dt.UTC)


@pytest.fixture
def image(server: Server) -> str:
    """A stored version whose image is CPE.nbt (with CPE.cat and CPE.xml beside it)."""
    return stored_version(VERSION, verified_on=server)


@pytest.fixture
def log(tmp_path: Path) -> Path:
    (tmp_path / "nginx").mkdir()
    return tmp_path / "nginx" / "downloads.log"


def line(**changes: str) -> bytes:
    """One line as nginx writes it (deviceupdate_downloads), a whole image by default."""
    fields = {
        "time": "2024-05-01T12:00:00+00:00",
        "msec": MSEC,
        "remote_addr": "10.0.0.7",
        "method": "GET",
        "status": "200",
        "completion": "OK",
        "body_bytes_sent": str(SIZE),
        "content_length": str(SIZE),
        "uri": f"/DeviceUpdateFiles_Int/{FOLDER}/CPE.nbt",
    }
    fields.update(changes)
    return json.dumps(fields, separators=(",", ":")).encode() + b"\n"


def append(log: Path, *lines: bytes) -> None:
    with log.open("ab") as handle:
        handle.write(b"".join(lines))


def read(log: Path, **bounds: int) -> DownloadLogResult:
    return download_log_read(server="fe01.example.org", log=log, **bounds)


def events() -> list[tuple[Any, ...]]:
    return list(
        DownloadEvent.objects.order_by("id").values_list(
            "server", "created_at", "client_address", "folder", "file_name"
        )
    )


def position(log: Path) -> dict[str, int]:
    info = log.stat()
    saved: dict[str, int] = json.loads(log.with_name("downloads.log.position").read_text())
    assert (saved["device"], saved["inode"]) == (info.st_dev, info.st_ino)
    return saved


def test_whole_gets_of_images_become_download_events(image: str, log: Path) -> None:
    append(
        log,
        line(),
        line(uri=f"/DeviceUpdateFiles_Ext/{FOLDER}/CPE.nbt", remote_addr="2001:DB8::0:7"),
    )
    result = read(log)
    assert events() == [
        ("fe01.example.org", AT, "10.0.0.7", FOLDER, "CPE.nbt"),
        ("fe01.example.org", AT, "2001:db8::7", FOLDER, "CPE.nbt"),
    ]
    assert (result.lines, result.recorded, result.ignored, result.malformed) == (2, 2, 0, 0)
    assert (result.offset, result.more, result.rotated) == (log.stat().st_size, False, False)
    assert position(log)["offset"] == log.stat().st_size


URL = f"/DeviceUpdateFiles_Int/{FOLDER}"
NO_DOWNLOAD = {
    "cut-short": {"completion": "", "body_bytes_sent": "1048576"},
    "range": {"status": "206", "body_bytes_sent": "1000", "content_length": "1000"},
    "head": {"method": "HEAD", "body_bytes_sent": "0"},
    "not-modified": {"status": "304", "body_bytes_sent": "0", "content_length": ""},
    "404": {"status": "404", "uri": f"{URL}/none.nbt"},
    "fewer-bytes-than-the-length": {"body_bytes_sent": str(SIZE - 1)},
    "catalog": {"uri": f"{URL}/CPE.cat"},
    "description": {"uri": f"{URL}/CPE.xml"},
    "unknown-file": {"uri": f"{URL}/other.nbt"},
    "outside-the-downloads": {"uri": f"/Other/{FOLDER}/CPE.nbt"},
}


@pytest.mark.parametrize("changes", NO_DOWNLOAD.values(), ids=NO_DOWNLOAD.keys())
def test_anything_but_a_whole_image_sent_is_no_download(
    image: str, log: Path, changes: dict[str, str]
) -> None:
    append(log, line(**changes))
    result = read(log)
    assert events() == []
    assert (result.lines, result.recorded, result.ignored, result.malformed) == (1, 0, 1, 0)
    assert position(log)["offset"] == log.stat().st_size


def test_the_address_is_nginxs_peer_never_a_forwarded_one(image: str, log: Path) -> None:
    # The update check records nginx's $remote_addr (the proxy snippet forwards just
    # that), so a download from a trusted proxy's address keeps that address; a header
    # a client sent is not even in the format, and extra fields change nothing.
    append(
        log,
        line(remote_addr="127.0.0.1", forwarded_for="10.9.9.9"),
        line(remote_addr="unix:"),
    )
    read(log)
    assert [(row[2]) for row in events()] == ["127.0.0.1", None]


def test_a_second_run_goes_on_from_the_saved_position(image: str, log: Path) -> None:
    append(log, line(remote_addr="10.0.0.1"))
    assert read(log).recorded == 1
    append(log, line(remote_addr="10.0.0.2"), line(remote_addr="10.0.0.3"))
    result = read(log)
    assert (result.lines, result.recorded) == (2, 2)
    assert [row[2] for row in events()] == ["10.0.0.1", "10.0.0.2", "10.0.0.3"]


def test_a_run_with_nothing_new_records_nothing_again(image: str, log: Path) -> None:
    append(log, line())
    read(log)
    before = position(log)
    result = read(log)
    assert (result.lines, result.recorded, result.offset) == (0, 0, log.stat().st_size)
    assert len(events()) == 1
    assert position(log) == before


def test_a_line_still_being_written_waits_for_the_next_run(image: str, log: Path) -> None:
    whole = line()
    append(log, whole[:40])
    result = read(log)
    assert (result.lines, result.offset, events()) == (0, 0, [])
    append(log, whole[40:])
    assert read(log).recorded == 1
    assert len(events()) == 1


def test_after_a_rotation_the_rest_of_the_old_file_then_the_new_one(image: str, log: Path) -> None:
    append(log, line(remote_addr="10.0.0.1"))
    read(log)
    log.rename(log.with_name("downloads.log.1"))
    # nginx writes to the renamed file until it reopens its logs.
    append(log.with_name("downloads.log.1"), line(remote_addr="10.0.0.2"))
    append(log, line(remote_addr="10.0.0.3"))
    result = read(log)
    assert (result.rotated, result.recorded, result.offset, result.more) == (True, 1, 0, True)
    assert position(log)["offset"] == 0
    result = read(log)
    assert (result.rotated, result.recorded, result.more) == (False, 1, False)
    assert [row[2] for row in events()] == ["10.0.0.1", "10.0.0.2", "10.0.0.3"]


def test_a_rotated_file_ending_in_half_a_line_does_not_hold_the_reader_back(
    image: str, log: Path
) -> None:
    append(log, line(remote_addr="10.0.0.1"))
    read(log)
    log.rename(log.with_name("downloads.log.1"))
    append(log.with_name("downloads.log.1"), line(remote_addr="10.0.0.2")[:30])
    append(log, line(remote_addr="10.0.0.3"))
    result = read(log)
    assert (result.lines, result.recorded, result.malformed, result.offset) == (1, 0, 1, 0)
    assert read(log).recorded == 1
    assert [row[2] for row in events()] == ["10.0.0.1", "10.0.0.3"]


def test_a_new_file_without_the_old_one_is_read_from_its_start(image: str, log: Path) -> None:
    append(log, line(remote_addr="10.0.0.1"), line(remote_addr="10.0.0.1"))
    read(log)
    log.unlink()
    append(log, line(remote_addr="10.0.0.2"))
    result = read(log)
    assert (result.rotated, result.recorded) == (True, 1)
    assert [row[2] for row in events()] == ["10.0.0.1", "10.0.0.1", "10.0.0.2"]


def test_a_file_truncated_in_place_is_read_from_its_start(image: str, log: Path) -> None:
    append(log, line(remote_addr="10.0.0.1"), line(remote_addr="10.0.0.1"))
    read(log)
    log.write_bytes(line(remote_addr="10.0.0.2"))  # copytruncate, then one new line
    result = read(log)
    assert (result.rotated, result.recorded) == (True, 1)
    assert [row[2] for row in events()] == ["10.0.0.1", "10.0.0.1", "10.0.0.2"]


def test_malformed_lines_are_counted_and_skipped(image: str, log: Path) -> None:
    append(
        log,
        b"not json at all\n",
        line(remote_addr="10.0.0.1"),
        b'["a", "list"]\n',
        line(status="two hundred"),
        line(msec="nan"),
        b'{"msec": "1714564800.250"}\n',
        b'{"uri": "/DeviceUpdateFiles_Int/\xff\xfe"}\n',
        b"\n",
        line(remote_addr="10.0.0.2"),
    )
    result = read(log)
    assert (result.lines, result.recorded, result.ignored, result.malformed) == (9, 2, 0, 6)
    assert [row[2] for row in events()] == ["10.0.0.1", "10.0.0.2"]
    assert position(log)["offset"] == log.stat().st_size


def test_each_run_reads_at_most_max_lines(image: str, log: Path) -> None:
    append(log, *(line(remote_addr=f"10.0.0.{n}") for n in range(1, 6)))
    assert [(r.recorded, r.more) for r in (read(log, max_lines=2) for _ in range(3))] == [
        (2, True),
        (2, True),
        (1, False),
    ]
    assert [row[2] for row in events()] == [f"10.0.0.{n}" for n in range(1, 6)]


def test_each_run_reads_at_most_max_bytes_and_skips_a_longer_line(image: str, log: Path) -> None:
    size = len(line())
    append(
        log, line(remote_addr="10.0.0.1"), b"x" * (size * 3) + b"\n", line(remote_addr="10.0.0.2")
    )
    results = [read(log, max_bytes=size * 2) for _ in range(4)]
    assert [(r.recorded, r.malformed, r.more) for r in results] == [
        (1, 0, True),  # the first line; the long one does not fit after it
        (0, 1, True),  # the first max_bytes of the long line
        (0, 1, True),  # its rest up to the next newline
        (1, 0, False),
    ]
    assert [row[2] for row in events()] == ["10.0.0.1", "10.0.0.2"]


def test_a_run_while_another_holds_the_log_reads_nothing(image: str, log: Path) -> None:
    append(log, line())
    fd = os.open(log.with_name("downloads.log.lock"), os.O_RDWR | os.O_CREAT)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        result = read(log)
    finally:
        os.close(fd)
    assert (result.busy, result.lines, events()) == (True, 0, [])
    assert not log.with_name("downloads.log.position").exists()
    assert read(log).recorded == 1


def test_an_unreadable_position_starts_the_file_over(image: str, log: Path) -> None:
    append(log, line())
    log.with_name("downloads.log.position").write_text("{broken")
    assert read(log).recorded == 1
    assert position(log)["offset"] == log.stat().st_size


def test_without_the_log_directory_there_is_nothing_to_read(tmp_path: Path) -> None:
    result = read(tmp_path / "missing" / "downloads.log")
    assert result == DownloadLogResult()
    assert list(tmp_path.iterdir()) == []


def test_without_the_log_file_nothing_is_read_or_saved(log: Path) -> None:
    assert read(log) == DownloadLogResult()
    assert sorted(path.name for path in log.parent.iterdir()) == ["downloads.log.lock"]


def test_the_task_reads_this_servers_log(
    image: str, log: Path, server: Server, settings: Settings
) -> None:
    settings.DOWNLOAD_ACCESS_LOG = log
    append(log, line(), line(method="HEAD"), b"garbage\n")
    assert tasks.server_download_log_read_task(server_fqdn=server.fqdn) == {
        "lines": 3,
        "recorded": 1,
        "ignored": 1,
        "malformed": 1,
        "offset": log.stat().st_size,
        "more": 0,
        "busy": 0,
    }
    assert events() == [(server.fqdn, AT, "10.0.0.7", FOLDER, "CPE.nbt")]


def test_the_task_for_another_server_reads_nothing(
    image: str, log: Path, settings: Settings
) -> None:
    settings.DOWNLOAD_ACCESS_LOG = log
    append(log, line())
    assert tasks.server_download_log_read_task(server_fqdn="other.example.org") is None
    assert events() == []
    assert not log.with_name("downloads.log.position").exists()


def test_beat_sends_one_task_to_each_servers_queue(
    server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    Server.objects.create(fqdn="fe02.example.org", pool=server.pool)
    sent: list[dict[str, str]] = []
    monkeypatch.setattr(
        tasks.server_download_log_read_task, "delay", lambda **kwargs: sent.append(kwargs)
    )
    assert tasks.download_logs_read_task() == 2
    assert sorted(kwargs["server_fqdn"] for kwargs in sent) == sorted(
        [server.fqdn, "fe02.example.org"]
    )
    assert route_task(
        "phones.tasks.server_download_log_read_task", (), {"server_fqdn": "fe02.example.org"}, {}
    ) == {"queue": "server.fe02.example.org"}
