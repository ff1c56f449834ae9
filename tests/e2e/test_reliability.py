"""Reliability end to end: retries, deadlines, crashes, dead workers, lost connections.

Every test runs real `horsies worker` processes against a real PostgreSQL and
checks from the database what happened to every task.
"""

from __future__ import annotations

import os
import signal
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import msgspec
import psycopg
import pytest

from horsies import OperationalErrorCode, TaskStatus

REPO = Path(__file__).resolve().parents[2]
APP = "tests.integration.reliability_apps:app"
TERMINAL = ("COMPLETED", "FAILED", "CANCELLED", "EXPIRED")


@pytest.fixture
def rapps(pg_url: str, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("HORSIES_DATABASE_URL", pg_url)
    import tests.integration.reliability_apps as module

    # Imported once per session: point the app at this test's database.
    module.app.config = module.make_config(pg_url)
    module.app._broker = None
    yield module
    if module.app._broker is not None:
        module.app.get_broker().close()
        module.app._broker = None


def query(url: str, sql: str, params: Any = None) -> list[tuple[Any, ...]]:
    with psycopg.connect(url, autocommit=True) as conn:
        return conn.execute(sql, params).fetchall()


def counts(url: str) -> dict[str, int]:
    return dict(query(url, "SELECT status, count(*) FROM horsies_tasks GROUP BY status"))


def attempts(url: str, task_id: str) -> list[tuple[Any, ...]]:
    return query(url, "SELECT outcome, will_retry, error_code, started_at, finished_at, "
                      "failed_reason, worker_id FROM horsies_task_attempts "
                      "WHERE task_id = %s ORDER BY attempt", (task_id,))


def wait_until(check: Any, timeout: float = 30.0, what: str = "condition") -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if check():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def test_fails_twice_then_succeeds_with_three_attempts(
    rapps: Any, pg_url: str, worker_env: dict[str, str], start_worker: Any, tmp_path: Path
) -> None:
    worker = start_worker([APP, "--processes=2"], worker_env, cwd=REPO)
    worker.wait_for("Worker started")
    handle = rapps.flaky.send(str(tmp_path / "count"), 2).ok_value
    assert handle.get(timeout_ms=20_000).ok_value == 3
    rows = attempts(pg_url, handle.task_id)
    assert [(r[0], r[1], r[2]) for r in rows] == [
        ("FAILED", True, "FLAKY"), ("FAILED", True, "FLAKY"), ("COMPLETED", False, None)]
    # fixed([1, 1]) without jitter: each retry starts about 1 s after the failure
    for previous, following in zip(rows, rows[1:], strict=False):
        gap = (following[3] - previous[4]).total_seconds()
        assert 0.9 <= gap <= 2.0, gap
    info = handle.info(include_attempts=True).ok_value
    assert info.status is TaskStatus.COMPLETED and info.retry_count == 2
    assert info.error_code is None
    assert worker.stop() == 0
    assert any("for retry #2 at" in line for line in worker.lines)


def test_retry_capped_by_good_until(
    rapps: Any, pg_url: str, worker_env: dict[str, str], start_worker: Any, tmp_path: Path
) -> None:
    worker = start_worker([APP, "--processes=1"], worker_env, cwd=REPO)
    worker.wait_for("Worker started")
    deadline = datetime.now(UTC) + timedelta(seconds=3)  # shorter than the 5 s retry delay
    handle = rapps.flaky_slow_retry.with_options(good_until=deadline).send(
        str(tmp_path / "count")).ok_value
    error = handle.get(timeout_ms=15_000).err_value
    assert error.error_code == "FLAKY" and error.message == "attempt 1 failed"
    info = handle.info(include_attempts=True).ok_value
    assert info.status is TaskStatus.FAILED and info.retry_count == 0
    assert [(r[0], r[1]) for r in attempts(pg_url, handle.task_id)] == [("FAILED", False)]
    assert worker.stop() == 0


def test_crashed_attempt_is_retried_by_policy(
    rapps: Any, pg_url: str, worker_env: dict[str, str], start_worker: Any, tmp_path: Path
) -> None:
    worker = start_worker([APP, "--processes=1"], worker_env, cwd=REPO)
    worker.wait_for("Worker started")
    handle = rapps.die_once.send(str(tmp_path / "count")).ok_value
    assert handle.get(timeout_ms=20_000).ok_value == 2
    rows = attempts(pg_url, handle.task_id)
    assert [(r[0], r[1], r[2]) for r in rows] == [
        ("WORKER_FAILURE", True, "WORKER_CRASHED"), ("COMPLETED", False, None)]
    assert "exited with code 9 while running the task" in rows[0][5]
    assert worker.stop() == 0


def test_sigkill_of_worker_main_process_is_recovered_by_another_worker(
    rapps: Any, pg_url: str, worker_env: dict[str, str], start_worker: Any
) -> None:
    first = start_worker([APP, "--processes=2"], worker_env, cwd=REPO)
    first.wait_for("Worker started")
    running = [rapps.nap.send(60).ok_value for _ in range(2)]
    wait_until(lambda: counts(pg_url).get("RUNNING", 0) == 2, what="2 RUNNING")
    waiting = [rapps.plus.send(i, 1).ok_value for i in range(2)]  # prefetched: CLAIMED
    wait_until(lambda: counts(pg_url).get("CLAIMED", 0) == 2, what="2 CLAIMED")
    dead_id = query(pg_url, "SELECT DISTINCT claimed_by_worker_id FROM horsies_tasks")[0][0]
    time.sleep(2.5)  # longer than the stale-claim threshold: heartbeats keep them live
    assert counts(pg_url) == {"RUNNING": 2, "CLAIMED": 2}
    os.kill(first.proc.pid, signal.SIGKILL)
    first.proc.wait(10)

    second = start_worker([APP, "--processes=2"], worker_env, cwd=REPO)
    second.wait_for("Reaper requeued 2 stale CLAIMED task(s)", timeout=30)
    assert [h.get(timeout_ms=20_000).ok_value for h in waiting] == [1, 2]
    second.wait_for("Reaper recovered 2 stale RUNNING task(s)", timeout=30)
    assert counts(pg_url) == {"FAILED": 2, "COMPLETED": 2}
    for handle in running:
        error = handle.get(timeout_ms=0).err_value
        assert error.error_code == OperationalErrorCode.WORKER_CRASHED
        assert error.message == "Worker process crashed (no runner heartbeat for 3000ms = 3.0s)"
        assert error.data["stale_threshold_ms"] == 3000
        rows = attempts(pg_url, handle.task_id)
        assert [(r[0], r[1], r[6]) for r in rows] == [("WORKER_FAILURE", False, dead_id)]
    for handle in waiting:  # ran once, on the second worker
        rows = attempts(pg_url, handle.task_id)
        assert len(rows) == 1 and rows[0][0] == "COMPLETED" and rows[0][6] != dead_id
    assert second.stop() == 0


def test_forced_shutdown_follows_the_crash_path(
    rapps: Any, pg_url: str, worker_env: dict[str, str], start_worker: Any
) -> None:
    worker = start_worker([APP, "--processes=2"], worker_env, cwd=REPO)
    worker.wait_for("Worker started")
    handles = [rapps.nap.send(60).ok_value for _ in range(2)]
    wait_until(lambda: counts(pg_url).get("RUNNING", 0) == 2, what="2 RUNNING")
    pids = {row[0] for row in query(pg_url, "SELECT worker_pid FROM horsies_tasks")}
    worker.proc.send_signal(signal.SIGTERM)
    worker.wait_for("Received interrupt signal, stopping worker...")
    assert worker.stop(signal.SIGTERM) == 0
    assert any("Forced shutdown: terminating 2 running task(s)" in line
               for line in worker.lines)
    assert counts(pg_url) == {"FAILED": 2}
    for handle in handles:
        error = handle.get(timeout_ms=0).err_value
        assert error.error_code == OperationalErrorCode.WORKER_CRASHED
        rows = attempts(pg_url, handle.task_id)
        assert [(r[0], r[1]) for r in rows] == [("WORKER_FAILURE", False)]
        assert rows[0][5] in {f"Worker child process {pid} terminated by forced shutdown"
                              for pid in pids}


def test_every_backend_terminated_while_tasks_are_in_flight(
    rapps: Any, pg_url: str, worker_env: dict[str, str], start_worker: Any
) -> None:
    total = 1500
    sent = rapps.plus.send_many([(i, 1) for i in range(total)]).ok_value
    assert len(sent) == total
    workers = [start_worker([APP, "--processes=2"], worker_env, cwd=REPO) for _ in range(2)]
    terminated = 0
    for threshold in (150, 600, 1050):
        wait_until(lambda t=threshold: counts(pg_url).get("COMPLETED", 0) >= t, timeout=60,
                   what=f"{threshold} completed")
        terminated += query(pg_url, "SELECT count(*) FROM (SELECT pg_terminate_backend(pid) "
                                    "FROM pg_stat_activity WHERE datname = current_database() "
                                    "AND pid <> pg_backend_pid()) AS t")[0][0]
    assert terminated >= 8  # both workers' connections, each time
    wait_until(lambda: sum(counts(pg_url).get(s, 0) for s in TERMINAL) == total, timeout=60,
               what="every task terminal")
    lost = total - counts(pg_url).get("COMPLETED", 0)
    twice = query(pg_url, "SELECT count(*) FROM (SELECT task_id FROM horsies_task_attempts "
                          "GROUP BY task_id HAVING count(*) > 1) AS t")[0][0]
    odd = query(pg_url, "SELECT id, status, error_code, failed_reason FROM horsies_tasks "
                        "WHERE status <> 'COMPLETED'")
    ids = [str(row[0]) for row in odd]
    logs = [line for w in workers for line in w.lines
            if "CLAIM_LOST" in line or "finalize" in line or any(i in line for i in ids)]
    assert (lost, twice) == (0, 0), (odd, logs[-20:])
    assert query(pg_url, "SELECT count(*) FROM horsies_task_attempts "
                         "WHERE outcome = 'COMPLETED'")[0][0] == total
    for worker in workers:
        assert worker.proc.poll() is None  # both survived
        assert worker.stop() == 0


def test_app_config_keeps_reliability_settings(rapps: Any) -> None:
    config = rapps.app.config
    assert config.recovery.running_stale_threshold_ms == 3000
    assert msgspec.structs.asdict(config.resilience)["db_retry_initial_ms"] == 200
