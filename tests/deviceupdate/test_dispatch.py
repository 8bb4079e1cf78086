"""Queueing a task by name: after commit by default, at once for recovery jobs; the
registered task's own ``delay``, so its route is the one the settings give its name."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from unittest import mock

import pytest
from django.db import transaction

from deviceupdate.dispatch import enqueue, enqueue_now

pytestmark = pytest.mark.django_db

CHECK_STORE = "portal.tasks.server_check_store_task"


def test_a_task_is_sent_once_the_transaction_commits(
    django_capture_on_commit_callbacks: Callable[..., Any],
) -> None:
    with (
        mock.patch("portal.tasks.server_check_store_task.delay") as delay,
        django_capture_on_commit_callbacks(execute=True) as callbacks,
    ):
        enqueue(CHECK_STORE, server_fqdn="fe01.example.org", full=True)
        delay.assert_not_called()  # still inside the transaction
    assert len(callbacks) == 1
    delay.assert_called_once_with(server_fqdn="fe01.example.org", full=True)


def test_a_rolled_back_transaction_sends_nothing(
    django_capture_on_commit_callbacks: Callable[..., Any],
) -> None:
    def refused_after_queueing() -> None:
        with transaction.atomic():
            enqueue(CHECK_STORE, server_fqdn="fe01.example.org")
            raise RuntimeError("refused")

    with (
        mock.patch("portal.tasks.server_check_store_task.delay") as delay,
        django_capture_on_commit_callbacks(execute=True) as callbacks,
        pytest.raises(RuntimeError, match="^refused$"),
    ):
        refused_after_queueing()
    assert callbacks == []
    delay.assert_not_called()


def test_enqueue_now_sends_inside_a_transaction_at_once(
    django_capture_on_commit_callbacks: Callable[..., Any],
) -> None:
    with (
        mock.patch("portal.tasks.package_import_task.delay") as delay,
        django_capture_on_commit_callbacks(execute=False) as callbacks,
    ):
        enqueue_now("portal.tasks.package_import_task", job_id=7)
        delay.assert_called_once_with(job_id=7)
    assert callbacks == []


def test_a_wrong_task_name_fails_at_the_call_not_after_commit(
    django_capture_on_commit_callbacks: Callable[..., Any],
) -> None:
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        with pytest.raises(KeyError):
            enqueue("portal.tasks.server_check_store", server_fqdn="fe01.example.org")
        with pytest.raises(ModuleNotFoundError):
            enqueue("portal.no_tasks.server_check_store_task", server_fqdn="fe01.example.org")
    assert callbacks == []
