"""Apps for the paths no notification announces and for unusual queue names.

Importable by real workers; HORSIES_DATABASE_URL (set by the tests) replaces
the placeholder URL.
"""

from __future__ import annotations

from horsies import (
    AppConfig,
    CustomQueueConfig,
    Horsies,
    PostgresConfig,
    QueueMode,
    TaskError,
    TaskResult,
)
from horsies.config import WorkerResilienceConfig

_URL = "postgresql://unused@localhost/unused"
POLL_MS = 1_000
# A queue name that is not an SQL identifier: a double quote, a semicolon, a space.
WEIRD_QUEUE = 'we"ird; drop'

# The shortest fallback poll, so that a test of the poll waits seconds, not minutes.
polled = Horsies(AppConfig(
    broker=PostgresConfig(database_url=_URL),
    resilience=WorkerResilienceConfig(notify_poll_interval_ms=POLL_MS),
))


@polled.task("polled_add")
def polled_add(a: int, b: int) -> TaskResult[int, TaskError]:
    return TaskResult(ok=a + b)


# A capped queue (max_concurrency 5 by default), so its worker claims in claim
# passes; the longest fallback poll, so that every task must be started by a
# notification: its send, or the end of the task before it.
LONGEST_POLL_MS = 300_000
weird = Horsies(AppConfig(
    broker=PostgresConfig(database_url=_URL),
    queue_mode=QueueMode.CUSTOM,
    custom_queues=[CustomQueueConfig(name=WEIRD_QUEUE)],
    resilience=WorkerResilienceConfig(notify_poll_interval_ms=LONGEST_POLL_MS),
))


@weird.task("weird_add", queue_name=WEIRD_QUEUE)
def weird_add(a: int, b: int) -> TaskResult[int, TaskError]:
    return TaskResult(ok=a + b)


# The default queue (no cap: children get runs) with the longest fallback poll:
# every task must be started by its own notification.
unpolled = Horsies(AppConfig(
    broker=PostgresConfig(database_url=_URL),
    resilience=WorkerResilienceConfig(notify_poll_interval_ms=LONGEST_POLL_MS),
))


@unpolled.task("unpolled_add")
def unpolled_add(a: int, b: int) -> TaskResult[int, TaskError]:
    return TaskResult(ok=a + b)
