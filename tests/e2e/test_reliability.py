"""Reliability end to end: retries, deadlines, crashes, dead workers, lost connections.

Every test runs real `horsies worker` processes against a real PostgreSQL and
checks from the database what happened to every task.
"""

from __future__ import annotations

import os
import secrets
import signal
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, NamedTuple

import msgspec
import psycopg
import pytest

from horsies import OperationalErrorCode, TaskStatus

REPO = Path(__file__).resolve().parents[2]
APP = "tests.integration.reliability_apps:app"
BULK_APP = "tests.integration.reliability_apps:bulk_app"
TERMINAL = ("COMPLETED", "FAILED", "CANCELLED", "EXPIRED")


@pytest.fixture
def rapps(pg_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    yield from reliability_apps_at(pg_url, monkeypatch)


def reliability_apps_at(url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """tests.integration.reliability_apps with its app pointed at `url` (a fixture body)."""
    monkeypatch.setenv("HORSIES_DATABASE_URL", url)
    import tests.integration.reliability_apps as module

    # Imported once per session: point the app at this test's database.
    module.app.config = module.make_config(url)
    module.bulk_app.config = module.make_bulk_config(url)
    for app in (module.app, module.bulk_app):
        app._broker = None
    yield module
    for app in (module.app, module.bulk_app):
        if app._broker is not None:
            app.get_broker().close()
            app._broker = None


def query(url: str, sql: str, params: Any = None) -> list[tuple[Any, ...]]:
    with psycopg.connect(url, autocommit=True) as conn:
        return conn.execute(sql, params).fetchall()


def counts(url: str) -> dict[str, int]:
    return dict(query(url, "SELECT status, count(*) FROM horsies_tasks GROUP BY status"))


def attempts(handle: Any) -> list[tuple[Any, ...]]:
    """The task's attempts, oldest first, as `info()` reports them (a final success
    is built from the task row: runs.md §4): (outcome, will_retry, error_code,
    started_at, finished_at, failed_reason, worker_id)."""
    info = handle.info(include_attempts=True).ok_value
    return [(a.outcome.value, a.will_retry, a.error_code, a.started_at, a.finished_at,
             a.failed_reason, a.worker_id) for a in reversed(info.attempts or [])]


def wait_until(check: Any, timeout: float = 30.0, what: str = "condition",
               interval: float = 0.05) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            if check():
                return
        except psycopg.OperationalError:
            pass  # the server is restarting: ask again
        time.sleep(interval)
    raise AssertionError(f"timed out waiting for {what}")


# -- many tasks through connection faults ------------------------------------------

LOAD_TASKS = 5000


class Fault(NamedTuple):
    """One fault: the tasks it hit, when it was over, and what it did."""

    completed: int
    in_flight: int
    over_at: datetime
    detail: str


# Each task takes a few milliseconds: the batch lasts seconds on four children, so
# that every fault lands while tasks are in flight.
MARK_SECONDS = 0.004


def enqueue_marks(rapps: Any, total: int, ledger: Path) -> None:
    """Send `total` mark tasks in one batch; each execution appends its number to `ledger`."""
    sent = rapps.mark.send_many([(str(ledger), n, MARK_SECONDS)
                                 for n in range(total)]).ok_value
    assert len(sent) == total


def start_load_workers(start_worker: Any, env: dict[str, str], tag: str) -> dict[str, Any]:
    """Two workers of two children; PGAPPNAME names each one's database sessions."""
    workers = {}
    for n in (1, 2):
        name = f"horsies-{tag}-{n}-{secrets.token_hex(3)}"
        workers[name] = start_worker([BULK_APP, "--processes=2", "--max-claim-batch=8"],
                                     {**env, "PGAPPNAME": name}, cwd=REPO)
    return workers


def progress(url: str) -> tuple[int, int, datetime]:
    """(COMPLETED, CLAIMED or RUNNING, the server's time), read in one snapshot."""
    row = query(url, "SELECT count(*) FILTER (WHERE status = 'COMPLETED'), "
                     "count(*) FILTER (WHERE status IN ('CLAIMED', 'RUNNING')), now() "
                     "FROM horsies_tasks")[0]
    return row[0], row[1], row[2]


def wait_for_completed(url: str, threshold: int) -> None:
    wait_until(lambda: progress(url)[0] >= threshold, timeout=120,
               what=f"{threshold} completed", interval=0.2)


Session = tuple[int, datetime]  # (pid, backend_start): pids are reused, the pair is not


def worker_backends(url: str, names: list[str]) -> dict[str, set[Session]]:
    rows = query(url, "SELECT application_name, pid, backend_start FROM pg_stat_activity "
                      "WHERE application_name = ANY(%s)", (names,))
    found: dict[str, set[Session]] = {}
    for name, pid, started in rows:
        found.setdefault(name, set()).add((pid, started))
    return found


def wait_for_backends(url: str, names: list[str], baseline: dict[str, int],
                      gone: set[Session]) -> dict[str, set[Session]]:
    """Every worker's sessions, once each has (re)connected as many as at first.

    `gone` are sessions terminated before: none of them may be counted again.
    """
    found: dict[str, set[Session]] = {}

    def connected() -> bool:
        found.clear()
        found.update(worker_backends(url, names))
        return set(found) == set(names) and all(
            len(found[name]) >= baseline.get(name, 1) and not gone & found[name]
            for name in names)

    wait_until(connected, timeout=30, what=f"sessions of {names} (last seen {found})")
    return found


def terminate_backends(
    url: str, backends: dict[str, set[Session]]
) -> tuple[Fault, dict[str, int]]:
    """Terminate the given sessions; also return how many of each worker's went.

    Progress is read in the same statement, so it shows the tasks at that moment.
    """
    pids = [pid for group in backends.values() for pid, _ in group]
    completed, in_flight, now, terminated = query(
        url, "SELECT count(*) FILTER (WHERE status = 'COMPLETED'), "
             "count(*) FILTER (WHERE status IN ('CLAIMED', 'RUNNING')), now(), "
             "(SELECT array_agg(p) FROM unnest(%s::int[]) AS p WHERE pg_terminate_backend(p)) "
             "FROM horsies_tasks", (pids,))[0]
    killed = set(terminated or ())
    per_worker = {name: len(killed & {pid for pid, _ in group})
                  for name, group in backends.items()}
    return Fault(completed, in_flight, now, f"sessions terminated {per_worker}"), per_worker


def settle(url: str, total: int, timeout: float = 120) -> None:
    """Wait until every task is terminal, or the timeout (the figures then tell what is not)."""
    try:
        wait_until(lambda: query(url, "SELECT count(*) FROM horsies_tasks "
                                      "WHERE status = ANY(%s)", (list(TERMINAL),))[0][0] == total,
                   timeout=timeout, what="every task terminal", interval=0.2)
    except AssertionError:
        pass


def fault_figures(url: str, total: int, ledger: Path, since: datetime) -> dict[str, int]:
    """What happened to `total` tasks, from the database and the execution ledger.

    lost: sent but not terminal (or no row); run_twice: executed more than once
    (the ledger has one line per execution); not_completed: terminal but not
    COMPLETED; workers_after_faults: workers that completed tasks started after
    `since`.
    """
    rows, terminal, completed = query(
        url, "SELECT count(*), count(*) FILTER (WHERE status = ANY(%s)), "
             "count(*) FILTER (WHERE status = 'COMPLETED') FROM horsies_tasks",
        (list(TERMINAL),))[0]
    retried = query(url, "SELECT count(*) FROM horsies_tasks WHERE retry_count > 0")[0][0]
    workers, workers_after = query(
        url, "SELECT count(DISTINCT claimed_by_worker_id), count(DISTINCT claimed_by_worker_id) "
             "FILTER (WHERE started_at > %s) FROM horsies_tasks WHERE status = 'COMPLETED'",
        (since,))[0]
    runs = Counter(ledger.read_text().split()) if ledger.exists() else Counter()
    executed_twice = sum(1 for n in runs.values() if n > 1)
    return {
        "tasks": total, "rows": rows, "completed": completed,
        "lost": total - terminal, "not_completed": terminal - completed,
        "run_twice": executed_twice, "tasks_with_retries": retried,
        "executions": sum(runs.values()), "workers_used": workers,
        "workers_after_faults": workers_after,
    }


def report(label: str, figures: dict[str, int], faults: list[Fault],
           workers: dict[str, Any], url: str | None = None) -> None:
    """Print the figures (shown with -s, -rP, or on failure), and with `url` every
    task that did not complete, with its attempts."""
    print(f"\n{label}: lost={figures['lost']} run_twice={figures['run_twice']} {figures}")
    if url is not None:
        for row in query(url, UNFINISHED_DETAIL):
            print(f"  not completed: {row}")
    for fault in faults:
        print(f"  fault with {fault.completed} completed, {fault.in_flight} in flight: "
              f"{fault.detail}")
    for name, worker in workers.items():
        trouble = [line for line in worker.lines if "WARNING" in line or "ERROR" in line]
        print(f"  {name}: {len(trouble)} warning/error lines, e.g. {trouble[:3]}")


UNFINISHED_DETAIL = """
SELECT t.id, t.status, t.error_code, t.failed_reason, t.started_at, t.updated_at,
       (SELECT array_agg(a.outcome || ' ' || coalesce(a.failed_reason, '') || ' '
                         || a.started_at::text || '..' || a.finished_at::text
                         ORDER BY a.attempt)
        FROM horsies_task_attempts a WHERE a.task_id = t.id) AS attempts
FROM horsies_tasks t WHERE t.status <> 'COMPLETED' LIMIT 10
"""


def assert_no_task_lost_or_run_twice(
    figures: dict[str, int], faults: list[Fault], workers: dict[str, Any]
) -> None:
    total = figures["tasks"]
    logs = [line for w in workers.values() for line in w.lines
            if "error" in line.lower() or "lost" in line or "finalize" in line]
    assert figures == {
        **figures, "rows": total, "completed": total, "lost": 0, "not_completed": 0,
        "run_twice": 0, "tasks_with_retries": 0,
        "executions": total, "workers_used": 2, "workers_after_faults": 2,
    }, (figures, logs[-30:])
    for fault in faults:  # each fault hit work in flight
        assert 0 < fault.completed < total and fault.in_flight > 0, faults
    for worker in workers.values():
        assert worker.proc.poll() is None, "".join(worker.lines[-30:])  # both survived
        assert worker.stop() == 0


def test_fails_twice_then_succeeds_with_three_attempts(
    rapps: Any, pg_url: str, worker_env: dict[str, str], start_worker: Any, tmp_path: Path
) -> None:
    worker = start_worker([APP, "--processes=2"], worker_env, cwd=REPO)
    worker.wait_for("Worker started")
    handle = rapps.flaky.send(str(tmp_path / "count"), 2).ok_value
    assert handle.get(timeout_ms=20_000).ok_value == 3
    rows = attempts(handle)
    assert [(r[0], r[1], r[2]) for r in rows] == [
        ("FAILED", True, "FLAKY"), ("FAILED", True, "FLAKY"), ("COMPLETED", False, None)]
    # fixed([1, 1]) without jitter: no retry starts before its delay has passed
    # (how much later depends on the machine's load, so it is not asserted)
    for previous, following in zip(rows, rows[1:], strict=False):
        gap = (following[3] - previous[4]).total_seconds()
        assert gap >= 0.9, gap
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
    assert [(r[0], r[1]) for r in attempts(handle)] == [("FAILED", False)]
    assert worker.stop() == 0


def test_crashed_attempt_is_retried_by_policy(
    rapps: Any, pg_url: str, worker_env: dict[str, str], start_worker: Any, tmp_path: Path
) -> None:
    worker = start_worker([APP, "--processes=1"], worker_env, cwd=REPO)
    worker.wait_for("Worker started")
    handle = rapps.die_once.send(str(tmp_path / "count")).ok_value
    assert handle.get(timeout_ms=20_000).ok_value == 2
    rows = attempts(handle)
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
        rows = attempts(handle)
        assert [(r[0], r[1], r[6]) for r in rows] == [("WORKER_FAILURE", False, dead_id)]
    for handle in waiting:  # ran once, on the second worker
        rows = attempts(handle)
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
        rows = attempts(handle)
        assert [(r[0], r[1]) for r in rows] == [("WORKER_FAILURE", False)]
        assert rows[0][5] in {f"Worker child process {pid} terminated by forced shutdown"
                              for pid in pids}


def test_every_backend_terminated_while_tasks_are_in_flight(
    rapps: Any, pg_url: str, worker_env: dict[str, str], start_worker: Any, tmp_path: Path
) -> None:
    ledger = tmp_path / "executions"
    enqueue_marks(rapps, LOAD_TASKS, ledger)
    workers = start_load_workers(start_worker, worker_env, "terminate")
    faults: list[Fault] = []
    baseline: dict[str, int] = {}
    gone: set[Session] = set()
    for share in (0.1, 0.35, 0.6):
        wait_for_completed(pg_url, int(LOAD_TASKS * share))
        backends = wait_for_backends(pg_url, list(workers), baseline, gone)
        baseline = baseline or {name: len(group) for name, group in backends.items()}
        fault, per_worker = terminate_backends(pg_url, backends)
        # every session of both workers, as many as each held at first
        assert per_worker == {name: len(group) for name, group in backends.items()}, backends
        assert all(per_worker[name] >= baseline[name] for name in workers), baseline
        faults.append(fault)
        gone.update(session for group in backends.values() for session in group)
    settle(pg_url, LOAD_TASKS)
    figures = fault_figures(pg_url, LOAD_TASKS, ledger, faults[-1].over_at)
    report(f"{LOAD_TASKS} tasks, every backend terminated {len(faults)} times", figures, faults,
           workers, pg_url)
    assert_no_task_lost_or_run_twice(figures, faults, workers)


def test_app_config_keeps_reliability_settings(rapps: Any) -> None:
    config = rapps.app.config
    assert config.recovery.running_stale_threshold_ms == 3000
    assert msgspec.structs.asdict(config.resilience)["db_retry_initial_ms"] == 200
