"""Task metadata records (`TaskInfo`, `TaskAttemptInfo`) and broker results."""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING, Any, TypeAlias, TypeVar, Union

from horsies.result import Err, Ok
from horsies.states import TaskAttemptOutcome, TaskStatus

if TYPE_CHECKING:
    from horsies.task_result import TaskError, TaskResult

__all__ = [
    "TaskInfo",
    "TaskAttemptInfo",
    "BrokerErrorCode",
    "BrokerOperationError",
    "BrokerResult",
]

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class TaskAttemptInfo:
    """One finished execution attempt of a task."""

    task_id: str
    attempt: int
    outcome: TaskAttemptOutcome
    will_retry: bool
    started_at: datetime.datetime
    finished_at: datetime.datetime
    error_code: str | None = None
    error_message: str | None = None
    failed_reason: str | None = None
    worker_id: str | None = None
    worker_hostname: str | None = None
    worker_pid: int | None = None
    worker_process_name: str | None = None


@dataclass(frozen=True, slots=True)
class TaskInfo:
    """Read-only metadata of one task, as returned by `handle.info()`."""

    task_id: str
    task_name: str
    status: TaskStatus
    queue_name: str
    priority: int
    retry_count: int
    max_retries: int
    next_retry_at: datetime.datetime | None
    sent_at: datetime.datetime | None
    enqueued_at: datetime.datetime
    claimed_at: datetime.datetime | None
    started_at: datetime.datetime | None
    completed_at: datetime.datetime | None
    failed_at: datetime.datetime | None
    worker_hostname: str | None
    worker_pid: int | None
    worker_process_name: str | None
    error_code: str | None = None
    result: TaskResult[Any, TaskError] | None = None
    failed_reason: str | None = None
    attempts: list[TaskAttemptInfo] | None = None


class BrokerErrorCode(str, Enum):
    """What a broker operation failed at; value = name."""

    SCHEMA_INIT_FAILED = "SCHEMA_INIT_FAILED"
    ENQUEUE_FAILED = "ENQUEUE_FAILED"
    PAYLOAD_MISMATCH = "PAYLOAD_MISMATCH"
    TASK_INFO_QUERY_FAILED = "TASK_INFO_QUERY_FAILED"
    MONITORING_QUERY_FAILED = "MONITORING_QUERY_FAILED"
    CLEANUP_FAILED = "CLEANUP_FAILED"
    CLOSE_FAILED = "CLOSE_FAILED"
    LISTENER_START_FAILED = "LISTENER_START_FAILED"
    LISTENER_SUBSCRIBE_FAILED = "LISTENER_SUBSCRIBE_FAILED"
    NO_BROKER = "NO_BROKER"

    def __str__(self) -> str:
        return str(self.value)

    def __format__(self, format_spec: str) -> str:
        return format(str(self.value), format_spec)


@dataclass(frozen=True, slots=True)
class BrokerOperationError:
    """The error of a failed broker operation; `retryable` for transient connection problems."""

    code: BrokerErrorCode
    message: str
    retryable: bool
    exception: BaseException | None = None


BrokerResult: TypeAlias = Union[Ok[T], Err[BrokerOperationError]]
"""`Result[T, BrokerOperationError]`."""
