"""Tasks for the reliability tests: retries, deadlines, crashes, recovery.

The app uses the smallest recovery thresholds, so that a dead worker's tasks
are recovered within seconds, and a prefetch buffer, so that a worker holds
CLAIMED tasks that are not running yet (a cap, so runs of one task).
`bulk_app`, with the same thresholds and no cap, runs the thousands of tasks
of the fault tests in runs (runs.md).
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from horsies import (
    AppConfig,
    Horsies,
    PostgresConfig,
    RecoveryConfig,
    RetryPolicy,
    TaskError,
    TaskResult,
    WorkerResilienceConfig,
)

RECOVERY = RecoveryConfig(
    claimed_stale_threshold_ms=2_000,
    claimer_heartbeat_interval_ms=1_000,
    running_stale_threshold_ms=3_000,
    runner_heartbeat_interval_ms=1_000,
    check_interval_ms=1_000,
)
RESILIENCE = WorkerResilienceConfig(db_retry_initial_ms=200, db_retry_max_ms=2_000,
                                    notify_poll_interval_ms=1_000)


def make_config(url: str) -> AppConfig:
    return AppConfig(broker=PostgresConfig(database_url=url), recovery=RECOVERY,
                     resilience=RESILIENCE, prefetch_buffer=2, claim_lease_ms=30_000)


def make_bulk_config(url: str) -> AppConfig:
    """For thousands of short tasks: no cap, so children get runs of tasks."""
    return AppConfig(broker=PostgresConfig(database_url=url), recovery=RECOVERY,
                     resilience=RESILIENCE)


# HORSIES_DATABASE_URL (set by the tests) replaces these placeholder URLs.
app = Horsies(make_config("postgresql://unused@localhost/unused"))
bulk_app = Horsies(make_bulk_config("postgresql://unused@localhost/unused"))


def _bump(path: str) -> int:
    """Count this attempt in a file (attempts may run in different processes)."""
    counter = Path(path)
    n = int(counter.read_text()) + 1 if counter.exists() else 1
    counter.write_text(str(n))
    return n


@app.task("flaky", retry_policy=RetryPolicy.fixed([1, 1], auto_retry_for=["FLAKY"],
                                                  jitter=False))
def flaky(path: str, failures: int) -> TaskResult[int, TaskError]:
    n = _bump(path)
    if n <= failures:
        return TaskResult(err=TaskError(error_code="FLAKY", message=f"attempt {n} failed"))
    return TaskResult(ok=n)


@app.task("flaky_slow_retry", retry_policy=RetryPolicy.fixed([5], auto_retry_for=["FLAKY"],
                                                             jitter=False))
def flaky_slow_retry(path: str) -> TaskResult[int, TaskError]:
    n = _bump(path)
    return TaskResult(err=TaskError(error_code="FLAKY", message=f"attempt {n} failed"))


@app.task("die_once", retry_policy=RetryPolicy.fixed([1], auto_retry_for=["WORKER_CRASHED"],
                                                     jitter=False))
def die_once(path: str) -> TaskResult[int, TaskError]:
    if _bump(path) == 1:
        os._exit(9)
    return TaskResult(ok=2)


@app.task("nap")
def nap(seconds: float) -> TaskResult[int, TaskError]:
    time.sleep(seconds)
    return TaskResult(ok=os.getpid())


@app.task("plus")
def plus(a: int, b: int) -> TaskResult[int, TaskError]:
    return TaskResult(ok=a + b)


@bulk_app.task("mark")
def mark(path: str, n: int, seconds: float = 0.0) -> TaskResult[int, TaskError]:
    """Append `n` to a file shared by all workers, to count executions per task,
    then take `seconds` (so that a batch lasts long enough to be faulted).

    One small O_APPEND write is atomic, so concurrent children never interleave.
    """
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)
    try:
        os.write(fd, f"{n}\n".encode())
    finally:
        os.close(fd)
    if seconds:
        time.sleep(seconds)
    return TaskResult(ok=n)


app.discover_tasks(["tests.integration.reliability_apps"])
bulk_app.discover_tasks(["tests.integration.reliability_apps"])
