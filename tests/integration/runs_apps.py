"""An app whose children get long runs, for the fault tests of runs (runs.md §3).

No cap, so children get runs; `run_target_ms` is large so that tasks of a few
milliseconds come in runs of a couple of hundred; recovery thresholds are the
smallest allowed, so a dead worker's children are recovered within seconds.
HORSIES_DATABASE_URL (set by the tests) replaces the placeholder URL.
"""

from __future__ import annotations

import os
import time

from horsies import (
    AppConfig,
    Horsies,
    PostgresConfig,
    RecoveryConfig,
    TaskError,
    TaskResult,
    WorkerResilienceConfig,
)

app = Horsies(AppConfig(
    broker=PostgresConfig(database_url="postgresql://unused@localhost/unused"),
    recovery=RecoveryConfig(
        claimed_stale_threshold_ms=2_000, claimer_heartbeat_interval_ms=1_000,
        running_stale_threshold_ms=3_000, runner_heartbeat_interval_ms=1_000,
        check_interval_ms=1_000,
    ),
    resilience=WorkerResilienceConfig(db_retry_initial_ms=200, db_retry_max_ms=2_000,
                                      notify_poll_interval_ms=1_000),
    run_target_ms=2_000,
))


@app.task("step")
def step(path: str, n: int, seconds: float) -> TaskResult[int, TaskError]:
    """Append `n` to the ledger at `path` when it starts (one line per execution),
    then take `seconds`. One small O_APPEND write is atomic across processes."""
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)
    try:
        os.write(fd, f"{n}\n".encode())
    finally:
        os.close(fd)
    time.sleep(seconds)
    return TaskResult(ok=n)


app.discover_tasks(["tests.integration.runs_apps"])
