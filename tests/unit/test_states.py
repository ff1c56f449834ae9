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


# -- records of horsies.info (results-and-errors.md §9, §10) --------------------------------

import dataclasses  # noqa: E402
import datetime  # noqa: E402

from horsies.info import (  # noqa: E402
    BrokerErrorCode,
    BrokerOperationError,
    BrokerResult,
    TaskAttemptInfo,
    TaskInfo,
)
from horsies.result import Err, Ok  # noqa: E402

NOW = datetime.datetime(2024, 1, 1, tzinfo=datetime.timezone.utc)


def test_task_info_field_order() -> None:
    assert [f.name for f in dataclasses.fields(TaskInfo)] == [
        "task_id", "task_name", "status", "queue_name", "priority", "retry_count",
        "max_retries", "next_retry_at", "sent_at", "enqueued_at", "claimed_at", "started_at",
        "completed_at", "failed_at", "worker_hostname", "worker_pid", "worker_process_name",
        "error_code", "result", "failed_reason", "attempts",
    ]


def test_task_attempt_info_field_order() -> None:
    assert [f.name for f in dataclasses.fields(TaskAttemptInfo)] == [
        "task_id", "attempt", "outcome", "will_retry", "started_at", "finished_at",
        "error_code", "error_message", "failed_reason", "worker_id", "worker_hostname",
        "worker_pid", "worker_process_name",
    ]


def make_info(**overrides: object) -> TaskInfo:
    values: dict[str, object] = dict(
        task_id="t", task_name="n", status=TaskStatus.PENDING, queue_name="default",
        priority=100, retry_count=0, max_retries=0, next_retry_at=None, sent_at=NOW,
        enqueued_at=NOW, claimed_at=None, started_at=None, completed_at=None, failed_at=None,
        worker_hostname=None, worker_pid=None, worker_process_name=None,
    )
    values.update(overrides)
    return TaskInfo(**values)  # type: ignore[arg-type]


def test_task_info_read_only_and_defaults() -> None:
    info = make_info()
    assert info.error_code is None and info.result is None
    assert info.failed_reason is None and info.attempts is None
    with pytest.raises(dataclasses.FrozenInstanceError):
        info.status = TaskStatus.RUNNING  # type: ignore[misc]


def test_task_attempt_info() -> None:
    attempt = TaskAttemptInfo(
        task_id="t", attempt=1, outcome=TaskAttemptOutcome.FAILED, will_retry=True,
        started_at=NOW, finished_at=NOW, error_code="X",
    )
    assert attempt.error_message is None and attempt.worker_pid is None
    with pytest.raises(dataclasses.FrozenInstanceError):
        attempt.attempt = 2  # type: ignore[misc]


def test_broker_error_code() -> None:
    assert [m.value for m in BrokerErrorCode] == [
        "SCHEMA_INIT_FAILED", "ENQUEUE_FAILED", "PAYLOAD_MISMATCH", "TASK_INFO_QUERY_FAILED",
        "MONITORING_QUERY_FAILED", "CLEANUP_FAILED", "CLOSE_FAILED", "LISTENER_START_FAILED",
        "LISTENER_SUBSCRIBE_FAILED", "NO_BROKER",
    ]
    for member in BrokerErrorCode:
        assert member == member.name


def test_broker_operation_error() -> None:
    error = BrokerOperationError(code=BrokerErrorCode.NO_BROKER, message="m", retryable=False)
    assert error.exception is None
    assert not hasattr(error, "__dict__")  # slotted
    with pytest.raises(dataclasses.FrozenInstanceError):
        error.message = "x"  # type: ignore[misc]
    result: BrokerResult[int] = Err(error)
    assert result.err_value is error
    assert BrokerResult[int] == (Ok[int] | Err[BrokerOperationError])
