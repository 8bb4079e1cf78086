"""The audit stream: every committed audit row as one JSON line to syslog (RFC 5424 over
UDP, or TCP with octet counting; receivers on loopback) or a file; a sink that fails
never fails the audited change, and is counted and logged once."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from django.db import transaction
from pytest_django.fixtures import Settings

from deviceupdate.syslog import parse_host_port
from portal.models import AuditEntry
from portal.services import audit_stream
from portal.services.signin import signin_lockout_record
from tests.conftest import free_port, wait_until
from tests.receivers import tcp_syslog_receiver, udp_syslog_receiver

pytestmark = pytest.mark.django_db

Capture = Callable[..., Any]
FQDN = "fe01.example.org"


@pytest.fixture(autouse=True)
def stream(settings: Settings) -> Iterator[None]:
    settings.SERVER_FQDN = FQDN
    settings.AUDIT_SYSLOG_FACILITY = "local0"
    audit_stream._state.update(failures=0, failing=False, retry_at=0.0)
    yield
    audit_stream._state.update(failures=0, failing=False, retry_at=0.0)


def lock_out(capture: Capture, username: str = "mallory") -> AuditEntry:
    """An audited change (a sign-in lockout), committed."""
    with capture(execute=True):
        signin_lockout_record(username=username, address="192.0.2.7", failures=5)
    return AuditEntry.objects.filter(object_repr=username).get()


def expected_json(entry: AuditEntry, username: str = "mallory") -> str:
    return (
        '{"action":"portal.signin.locked_out","actor":"sign-in lockout",'
        '"changes":{"address":[null,"192.0.2.7"],"cooloff_minutes":[null,15],'
        f'"failures":[null,5]}},"created_at":"{entry.created_at.isoformat()}",'
        f'"id":{entry.pk},"object":"{username}","object_id":"None","object_type":"auth.user"}}'
    )


def expected_syslog(entry: AuditEntry, *, pri: int = 133, username: str = "mallory") -> bytes:
    stamp = entry.created_at.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    line = f"<{pri}>1 {stamp} {FQDN} deviceupdate {os.getpid()} audit - "
    return (line + expected_json(entry, username)).encode()


def test_udp_syslog_gets_the_exact_rfc5424_line(
    settings: Settings, django_capture_on_commit_callbacks: Capture
) -> None:
    with udp_syslog_receiver() as receiver:
        settings.AUDIT_SINK = "syslog"
        settings.AUDIT_SYSLOG_PROTOCOL = "udp"
        settings.AUDIT_SYSLOG_ADDRESS = receiver.address
        entry = lock_out(django_capture_on_commit_callbacks)
        wait_until(lambda: len(receiver.messages) == 1, "one syslog datagram")
    assert entry.created_at.utcoffset() is not None
    assert receiver.messages == [expected_syslog(entry)]
    assert audit_stream.audit_stream_failures() == 0


def test_tcp_syslog_gets_octet_counted_lines_in_order_escaped_to_ascii(
    settings: Settings, django_capture_on_commit_callbacks: Capture
) -> None:
    with tcp_syslog_receiver() as receiver:
        settings.AUDIT_SINK = "syslog"
        settings.AUDIT_SYSLOG_PROTOCOL = "tcp"
        settings.AUDIT_SYSLOG_ADDRESS = receiver.address
        settings.AUDIT_SYSLOG_FACILITY = "local4"
        first = lock_out(django_capture_on_commit_callbacks)
        second = lock_out(django_capture_on_commit_callbacks, username="mårten")
        wait_until(lambda: len(receiver.messages) == 2, "two syslog frames")
    assert receiver.messages == [
        expected_syslog(first, pri=165),
        expected_syslog(second, pri=165, username="m\\u00e5rten"),
    ]


def test_the_file_sink_appends_one_line_per_row(
    settings: Settings, tmp_path: Path, django_capture_on_commit_callbacks: Capture
) -> None:
    settings.AUDIT_SINK = "file"
    settings.AUDIT_FILE = tmp_path / "logs" / "audit.jsonl"
    first = lock_out(django_capture_on_commit_callbacks)
    second = lock_out(django_capture_on_commit_callbacks, username="eve")
    assert (tmp_path / "logs" / "audit.jsonl").read_text() == (
        f"{expected_json(first)}\n{expected_json(second, 'eve')}\n"
    )


def test_a_rolled_back_change_is_not_streamed(
    settings: Settings, tmp_path: Path, django_capture_on_commit_callbacks: Capture
) -> None:
    settings.AUDIT_SINK = "file"
    settings.AUDIT_FILE = tmp_path / "audit.jsonl"

    def refused_after_the_audit() -> None:
        with transaction.atomic():
            signin_lockout_record(username="mallory", address="192.0.2.7", failures=5)
            raise RuntimeError("refused")

    with (
        django_capture_on_commit_callbacks(execute=True) as callbacks,
        pytest.raises(RuntimeError, match="^refused$"),
    ):
        refused_after_the_audit()
    assert callbacks == []
    assert not (tmp_path / "audit.jsonl").exists()


def test_no_sink_by_default_queues_nothing(
    settings: Settings, django_capture_on_commit_callbacks: Capture
) -> None:
    assert settings.AUDIT_SINK == "none"
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        signin_lockout_record(username="mallory", address="192.0.2.7", failures=5)
    # (The lockout's webhook event is queued on commit too; no audit line is.)
    assert [c.func.__name__ for c in callbacks] == ["_queue_deliveries"]
    assert AuditEntry.objects.count() == 1


def test_a_failing_sink_keeps_the_change_counts_and_logs_once_and_pauses(
    settings: Settings, django_capture_on_commit_callbacks: Capture, caplog: Any
) -> None:
    settings.AUDIT_SINK = "syslog"
    settings.AUDIT_SYSLOG_PROTOCOL = "tcp"
    settings.AUDIT_SYSLOG_ADDRESS = ("127.0.0.1", free_port())  # nothing listens
    with caplog.at_level(logging.WARNING, logger="portal.services.audit_stream"):
        lock_out(django_capture_on_commit_callbacks)
        lock_out(django_capture_on_commit_callbacks, username="eve")
    assert AuditEntry.objects.count() == 2
    assert audit_stream.audit_stream_failures() == 2
    assert [record.getMessage() for record in caplog.records] == [
        "the audit stream (syslog) failed, lines are being lost until it works again: "
        "[Errno 111] Connection refused"
    ]
    # It works again, but is not tried until the pause after the failure is over.
    with tcp_syslog_receiver() as receiver, caplog.at_level(logging.WARNING):
        settings.AUDIT_SYSLOG_ADDRESS = receiver.address
        lock_out(django_capture_on_commit_callbacks, username="trent")
        assert audit_stream.audit_stream_failures() == 3
        audit_stream._state["retry_at"] = 0.0  # the pause is over
        trudy = lock_out(django_capture_on_commit_callbacks, username="trudy")
        wait_until(lambda: len(receiver.messages) == 1, "one syslog frame")
    assert receiver.messages[0].endswith(
        f'"id":{trudy.pk},"object":"trudy","object_id":"None","object_type":"auth.user"}}'.encode()
    )
    assert caplog.records[-1].getMessage() == "the audit stream (syslog) works again"
    assert audit_stream.audit_stream_failures() == 3


@pytest.mark.parametrize(
    ("value", "parsed"),
    [("siem.example.org:6514", ("siem.example.org", 6514)), ("[::1]:514", ("::1", 514))],
)
def test_the_syslog_address_is_host_and_port(value: str, parsed: tuple[str, int]) -> None:
    assert parse_host_port(value) == parsed


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("siem.example.org", "'siem.example.org' is not host:port"),
        ("siem.example.org:0", "'siem.example.org:0': the port must be a number from 1 to 65535"),
        ("siem.example.org:x", "'siem.example.org:x': the port must be a number from 1 to 65535"),
        ("a b:514", "'a b:514': 'a b' is not a host name or address"),
    ],
)
def test_a_bad_syslog_address_is_one_line(value: str, message: str) -> None:
    with pytest.raises(ValueError, match=f"^{message.replace('(', '.').replace(')', '.')}$"):
        parse_host_port(value)
