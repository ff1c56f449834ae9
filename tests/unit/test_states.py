"""TaskStatus and TaskAttemptOutcome (lifecycle-and-schema.md §1)."""

from __future__ import annotations

from enum import Enum

import pytest

from horsies.states import TASK_TERMINAL_STATES, TaskAttemptOutcome, TaskStatus


def test_task_status_members() -> None:
    assert [m.name for m in TaskStatus] == [
        "PENDING", "CLAIMED", "RUNNING", "COMPLETED", "FAILED", "CANCELLED", "EXPIRED",
    ]
    for member in TaskStatus:
        assert member.value == member.name
        assert TaskStatus(member.value) is member


def test_task_status_is_plain_enum() -> None:
    assert not issubclass(TaskStatus, str)
    assert TaskStatus.PENDING != "PENDING"
    assert TaskStatus.PENDING.value == "PENDING"


def test_terminal_states() -> None:
    assert TASK_TERMINAL_STATES == frozenset(
        {TaskStatus.COMPLETED, TaskStatus.FAILED, TaskStatus.CANCELLED, TaskStatus.EXPIRED}
    )
    assert isinstance(TASK_TERMINAL_STATES, frozenset)


@pytest.mark.parametrize("status", list(TaskStatus))
def test_is_terminal(status: TaskStatus) -> None:
    assert status.is_terminal is (status in TASK_TERMINAL_STATES)


def test_non_terminal() -> None:
    assert not TaskStatus.PENDING.is_terminal
    assert not TaskStatus.CLAIMED.is_terminal
    assert not TaskStatus.RUNNING.is_terminal


def test_attempt_outcome() -> None:
    assert issubclass(TaskAttemptOutcome, str) and issubclass(TaskAttemptOutcome, Enum)
    assert [m.value for m in TaskAttemptOutcome] == ["COMPLETED", "FAILED", "WORKER_FAILURE"]
    assert TaskAttemptOutcome.WORKER_FAILURE == "WORKER_FAILURE"
    assert TaskAttemptOutcome("FAILED") is TaskAttemptOutcome.FAILED
