"""Workers started from the CLI: results, failures, exactly-once, shutdown, child death."""

from __future__ import annotations

import os
import signal
from pathlib import Path
from typing import Any

import psycopg

from horsies import OperationalErrorCode, TaskStatus

REPO = Path(__file__).resolve().parents[2]
APP = "tests.integration.apps:app"
CHILD_READY = " ready"  # the worker's DEBUG line "child <pid> ready"


def counts(url: str) -> dict[str, int]:
    with psycopg.connect(url) as conn:
        rows = conn.execute("SELECT status, count(*) FROM horsies_tasks GROUP BY status")
        return {status: n for status, n in rows}


def test_result_and_unhandled_exception(
    apps: Any, worker_env: dict[str, str], start_worker: Any
) -> None:
    worker = start_worker([APP, "--processes=2"], worker_env, cwd=REPO)
    worker.wait_for("Worker started")
    ok = apps.add.send(20, 22).ok_value
    boom = apps.explode.send("kaboom").ok_value
    none = apps.return_none.send().ok_value
    assert ok.get(timeout_ms=30_000).ok_value == 42
    error = boom.get(timeout_ms=30_000).err_value
    assert error.error_code == OperationalErrorCode.UNHANDLED_EXCEPTION
    assert error.message == "Unhandled exception in task explode: RuntimeError: kaboom"
    assert error.exception["type"] == "RuntimeError"
    assert none.get(timeout_ms=30_000).err_value.error_code == OperationalErrorCode.TASK_EXCEPTION
    info = boom.info(include_attempts=True).ok_value
    assert info.status is TaskStatus.FAILED and info.error_code == "UNHANDLED_EXCEPTION"
    assert [a.outcome.value for a in info.attempts] == ["FAILED"]
    assert worker.stop() == 0


def test_two_workers_run_2000_tasks_exactly_once(
    apps: Any, pg_url: str, worker_env: dict[str, str], start_worker: Any, tmp_path: Path
) -> None:
    ledger = tmp_path / "executions"
    # DEBUG logs each child's readiness: both workers wait with both children
    # ready before the tasks arrive, or one alone drains 2,000 short tasks
    # before the other's children have imported the app.
    args = [APP, "--processes=2", "--loglevel", "DEBUG"]
    first = start_worker(args, worker_env, cwd=REPO)
    second = start_worker(args, worker_env, cwd=REPO)
    for worker in (first, second):
        worker.wait_for("Worker started")
        worker.wait_for(CHILD_READY, count=2)
    sent = apps.record.send_many([(str(ledger), i) for i in range(2000)]).ok_value
    results = [h.get(timeout_ms=120_000) for h in sent]
    assert [r.ok_value for r in results] == list(range(2000))
    assert first.stop() == 0 and second.stop() == 0
    with psycopg.connect(pg_url) as conn:
        owners = conn.execute(
            "SELECT count(DISTINCT claimed_by_worker_id) FROM horsies_tasks").fetchone()[0]
    assert counts(pg_url) == {"COMPLETED": 2000}
    executions = sorted(int(n) for n in ledger.read_text().split())
    assert executions == list(range(2000))  # each ran once: none twice, none lost
    assert owners == 2  # both workers took part


def test_graceful_shutdown_saves_running_results(
    apps: Any, pg_url: str, worker_env: dict[str, str], start_worker: Any
) -> None:
    worker = start_worker([APP, "--processes=2"], worker_env, cwd=REPO)
    worker.wait_for("Worker started")
    handles = [apps.sleepy.send(1.5).ok_value for _ in range(2)]
    _wait_status(pg_url, "RUNNING", 2)
    assert worker.stop(signal.SIGTERM) == 0
    assert counts(pg_url) == {"COMPLETED": 2}
    assert all(h.get(timeout_ms=0).is_ok() for h in handles)


def test_child_death_takes_the_crash_path(
    apps: Any, pg_url: str, worker_env: dict[str, str], start_worker: Any
) -> None:
    worker = start_worker([APP, "--processes=1"], worker_env, cwd=REPO)
    worker.wait_for("Worker started")
    dead = apps.hard_exit.send(3).ok_value
    error = dead.get(timeout_ms=30_000).err_value
    assert error.error_code == OperationalErrorCode.WORKER_CRASHED
    assert "exited with code 3 while running the task" in error.message
    # the replacement child keeps serving
    assert apps.add.send(1, 1).ok_value.get(timeout_ms=30_000).ok_value == 2
    info = dead.info(include_attempts=True, include_failed_reason=True).ok_value
    assert info.attempts[0].outcome.value == "WORKER_FAILURE"
    assert info.failed_reason == error.message
    assert worker.stop() == 0


def test_sigkill_of_worker_leaves_children_exiting(
    apps: Any, pg_url: str, worker_env: dict[str, str], start_worker: Any
) -> None:
    worker = start_worker([APP, "--processes=2"], worker_env, cwd=REPO)
    worker.wait_for("Worker started")
    apps.sleepy.send(60).ok_value
    _wait_status(pg_url, "RUNNING", 1)
    with psycopg.connect(pg_url) as conn:
        pid = conn.execute("SELECT worker_pid FROM horsies_tasks").fetchone()[0]
    os.kill(worker.proc.pid, signal.SIGKILL)
    worker.proc.wait(10)
    _wait_gone(pid)


def _wait_status(url: str, status: str, n: int, timeout: float = 30.0) -> None:
    import time

    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if counts(url).get(status, 0) >= n:
            return
        time.sleep(0.05)
    raise AssertionError(f"never saw {n} {status} tasks: {counts(url)}")


def _wait_gone(pid: int, timeout: float = 10.0) -> None:
    import time

    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.1)
    raise AssertionError(f"child {pid} outlived its worker")
