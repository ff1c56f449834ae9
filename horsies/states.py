"""Task states and attempt outcomes (the values stored in the database)."""

from __future__ import annotations

from enum import Enum
from typing import Final

__all__ = ["TaskStatus", "TaskAttemptOutcome", "TASK_TERMINAL_STATES"]


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
