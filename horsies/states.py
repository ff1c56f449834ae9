"""Task states and attempt outcomes (the values stored in the database)."""

from __future__ import annotations

from enum import Enum, StrEnum
from typing import Final

__all__ = [
    "TaskStatus",
    "TaskAttemptOutcome",
    "TASK_TERMINAL_STATES",
    "WorkflowStatus",
    "WorkflowTaskStatus",
    "WORKFLOW_TERMINAL_STATES",
    "WORKFLOW_TASK_TERMINAL_STATES",
]


class TaskStatus(Enum):
    """State of a task row; a plain Enum (``TaskStatus.PENDING != "PENDING"``)."""

    PENDING = "PENDING"
    CLAIMED = "CLAIMED"
    RUNNING = "RUNNING"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"
    EXPIRED = "EXPIRED"

    @property
    def is_terminal(self) -> bool:
        return self in TASK_TERMINAL_STATES


TASK_TERMINAL_STATES: Final[frozenset[TaskStatus]] = frozenset(
    {TaskStatus.COMPLETED, TaskStatus.FAILED, TaskStatus.CANCELLED, TaskStatus.EXPIRED}
)


class TaskAttemptOutcome(str, Enum):
    """How one execution attempt ended (``horsies_task_attempts.outcome``)."""

    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    WORKER_FAILURE = "WORKER_FAILURE"

    def __str__(self) -> str:
        return str(self.value)

    def __format__(self, format_spec: str) -> str:
        return format(str(self.value), format_spec)


class WorkflowStatus(StrEnum):
    """State of a workflow row (workflows.md §14)."""

    PENDING = "PENDING"  # reserved: the engine inserts RUNNING directly
    RUNNING = "RUNNING"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    PAUSED = "PAUSED"
    CANCELLED = "CANCELLED"

    @property
    def is_terminal(self) -> bool:
        return self in WORKFLOW_TERMINAL_STATES


WORKFLOW_TERMINAL_STATES: Final[frozenset[WorkflowStatus]] = frozenset(
    {WorkflowStatus.COMPLETED, WorkflowStatus.FAILED, WorkflowStatus.CANCELLED}
)


class WorkflowTaskStatus(StrEnum):
    """State of one node of a workflow (workflows.md §14)."""

    PENDING = "PENDING"  # waiting for dependencies
    READY = "READY"  # dependencies satisfied, not yet enqueued
    ENQUEUED = "ENQUEUED"  # task row created
    RUNNING = "RUNNING"  # task executing
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    SKIPPED = "SKIPPED"

    @property
    def is_terminal(self) -> bool:
        return self in WORKFLOW_TASK_TERMINAL_STATES


WORKFLOW_TASK_TERMINAL_STATES: Final[frozenset[WorkflowTaskStatus]] = frozenset(
    {WorkflowTaskStatus.COMPLETED, WorkflowTaskStatus.FAILED, WorkflowTaskStatus.SKIPPED}
)
