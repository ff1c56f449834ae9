"""Queue modes and custom queue definitions (queues-and-concurrency.md §2, §3)."""

from __future__ import annotations

from enum import Enum
from typing import Final

import msgspec

from horsies.config._check import Collector, str_problem
from horsies.errors import ErrorCode

__all__ = [
    "QUEUE_MAX_CONCURRENCY_MAX",
    "QUEUE_NAME_MAX_BYTES",
    "QUEUE_PRIORITY_MAX",
    "QUEUE_PRIORITY_MIN",
    "CustomQueueConfig",
    "QueueMode",
]

# A queue's channel is ``task_queue_<name>``; PostgreSQL identifiers stop at 63
# bytes and the prefix takes 11 of them.
QUEUE_NAME_MAX_BYTES: Final = 52
QUEUE_PRIORITY_MIN: Final = 1
QUEUE_PRIORITY_MAX: Final = 100
QUEUE_MAX_CONCURRENCY_MAX: Final = 2_147_483_647  # PostgreSQL int4


class QueueMode(Enum):
    """A single ``"default"`` queue, or named custom queues."""

    DEFAULT = "default"
    CUSTOM = "custom"


def queue_name_problem(name: object) -> str | None:
    """Why ``name`` cannot be a queue name, or ``None``."""
    problem = str_problem("name", name)
    if problem is not None:
        return problem
    assert isinstance(name, str)
    if "\x00" in name:
        return "name must not contain a NUL character"
    try:
        size = len(name.encode("utf-8"))
    except UnicodeEncodeError:
        return "name must be valid UTF-8 text"
    if not 1 <= size <= QUEUE_NAME_MAX_BYTES:
        return f"name must be between 1 and {QUEUE_NAME_MAX_BYTES} bytes of UTF-8 (got {size})"
    return None


class CustomQueueConfig(msgspec.Struct, kw_only=True, frozen=True):
    """One named queue of CUSTOM mode."""

    name: str
    priority: int = 1
    # None: no per-queue cap, so a worker serving only uncapped queues (and no
    # cluster_wide_cap) hands its children runs of tasks (runs.md §1).
    max_concurrency: int | None = 5

    def __post_init__(self) -> None:
        checks = Collector("CustomQueueConfig", ErrorCode.CONFIG_INVALID_QUEUE_MODE)
        checks.add(queue_name_problem(self.name))
        checks.check_int("priority", self.priority, QUEUE_PRIORITY_MIN, QUEUE_PRIORITY_MAX)
        if self.max_concurrency is not None:
            checks.check_int("max_concurrency", self.max_concurrency, 1,
                             QUEUE_MAX_CONCURRENCY_MAX)
        checks.raise_if_any()
