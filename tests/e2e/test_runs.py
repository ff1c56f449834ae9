"""Runs under faults (runs.md §3), with real workers started from the CLI.

Each task appends its number to a ledger when it starts, so an execution is
seen even when its result never reaches the database. What must hold:

- a child killed in the middle of a long run: the task it had begun ends on
  the crash path; the tasks it had not begun return to PENDING and run once,
  elsewhere;
- the main process killed with runs outstanding: no task runs twice; of each
  child's tasks that never started, at most the allowance ends WORKER_CRASHED,
  the rest return to PENDING (a reaper's T15) and complete;
- SIGTERM with runs outstanding: the children finish the task they are in,
  the unstarted tasks are returned before the worker exits 0.
"""

from __future__ import annotations

import os
import signal
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from horsies.worker.main import START_ALLOWANCE
from tests.workers import app_module_at

REPO = Path(__file__).resolve().parents[2]
APP = "tests.integration.runs_apps:app"
STEP_SECONDS = 0.01


@pytest.fixture
def runs(pg_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    yield from app_module_at("tests.integration.runs_apps", pg_url, monkeypatch)


def query(url: str, sql: str, params: Any = None) -> list[tuple[Any, ...]]:
    with psycopg.connect(url, autocommit=True) as conn:
        return conn.execute(sql, params).fetchall()


def wait_until(check: Callable[[], bool], what: str, timeout: float = 90.0) -> None:
    end = time.monotonic() + timeout
    while not check():
        if time.monotonic() > end:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def executions(ledger: Path) -> Counter[int]:
    return Counter(int(n) for n in ledger.read_text().split()) if ledger.exists() else Counter()


def send_steps(runs: Any, ledger: Path, total: int) -> dict[str, int]:
    """task id -> its number"""
    handles = runs.step.send_many([(str(ledger), n, STEP_SECONDS)
                                   for n in range(total)]).ok_value
    return {h.task_id: n for h, n in zip(handles, range(total), strict=True)}


def all_terminal(url: str) -> bool:
    return query(url, "SELECT count(*) FROM horsies_tasks WHERE status NOT IN "
                      "('COMPLETED', 'FAILED', 'CANCELLED', 'EXPIRED')")[0][0] == 0


def outcome(url: str) -> dict[str, tuple[str, str | None, int | None]]:
    return {task_id: (status, code, pid) for task_id, status, code, pid in query(
        url, "SELECT id::text, status, error_code, worker_pid FROM horsies_tasks")}


def assigned_to(url: str, pid: int) -> set[str]:
    return {row[0] for row in query(url, "SELECT id::text FROM horsies_tasks WHERE "
                                         "status = 'RUNNING' AND worker_pid = %s", (pid,))}


def children_of(pid: int) -> list[int]:
    found = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return [int(child) for child in found]


def test_a_child_killed_mid_run_loses_one_task_and_its_run_runs_elsewhere(
    runs: Any, pg_url: str, worker_env: dict[str, str], start_worker: Any, tmp_path: Path
) -> None:
    ledger = tmp_path / "executions"
    numbers = send_steps(runs, ledger, 600)
    worker = start_worker([APP, "--processes=1"], worker_env, cwd=REPO)
    wait_until(lambda: sum(executions(ledger).values()) >= 60, "a long run under way")
    [child] = children_of(worker.proc.pid)
    held = assigned_to(pg_url, child)
    assert len(held) > 1, held  # a run: tasks handed to the child and not begun
    os.kill(child, signal.SIGKILL)
    wait_until(lambda: all_terminal(pg_url), "every task to end")
    assert worker.stop() == 0
    ran = executions(ledger)
    assert max(ran.values()) == 1  # no task ran twice
    ended = outcome(pg_url)
    crashed = [t for t, (status, _, _) in ended.items() if status != "COMPLETED"]
    # The task the child was in; and, if the kill fell in the microseconds between
    # a task's end and the sending of its result, that one too. Both had started.
    assert len(crashed) <= 2 and all(ended[t][1] == "WORKER_CRASHED" for t in crashed)
    assert all(ran[numbers[t]] == 1 for t in crashed)
    assert sorted(ran) == sorted(numbers.values())  # everything else ran, once
    # the run's unstarted tasks went back and ran on the replacement child
    moved = [t for t in held if ended[t][0] == "COMPLETED" and ended[t][2] != child]
    assert moved, "no task of the killed child's run ran elsewhere"


def test_the_main_process_killed_with_runs_outstanding(
    runs: Any, pg_url: str, worker_env: dict[str, str], start_worker: Any, tmp_path: Path
) -> None:
    ledger = tmp_path / "executions"
    numbers = send_steps(runs, ledger, 1500)
    first = start_worker([APP, "--processes=2"], worker_env, cwd=REPO)
    wait_until(lambda: sum(executions(ledger).values()) >= 100, "runs under way")
    children = children_of(first.proc.pid)
    held = {child: assigned_to(pg_url, child) for child in children}
    os.kill(first.proc.pid, signal.SIGKILL)  # the main process only: children see it die
    first.proc.wait(10)
    wait_until(lambda: not any(Path(f"/proc/{c}").exists() for c in children),
               "the children to exit on their own")
    second = start_worker([APP, "--processes=2"], worker_env, cwd=REPO)
    wait_until(lambda: all_terminal(pg_url), "every task to end")
    assert second.stop() == 0
    ran = executions(ledger)
    assert max(ran.values()) == 1  # no task ran twice
    ended = outcome(pg_url)
    for child, tasks in held.items():
        crashed = {t for t in tasks if ended[t][0] != "COMPLETED"}
        assert all(ended[t][1] == "WORKER_CRASHED" for t in crashed)
        never_started = {t for t in crashed if numbers[t] not in ran}
        assert len(never_started) <= START_ALLOWANCE, (child, len(never_started))
    crashed_all = {t for t, (status, _, _) in ended.items() if status != "COMPLETED"}
    # the rest complete: every task that is not on the crash path ran, once
    assert {n for t, n in numbers.items() if t not in crashed_all} <= set(ran)
    returned = sum(len(tasks) for tasks in held.values()) - len(
        crashed_all & set().union(*held.values()))
    assert returned > 0  # beyond each child's mark, its tasks went back to PENDING
    assert any("Reaper returned" in line for line in second.lines), second.lines[-20:]


def test_sigterm_returns_the_unstarted_tasks_of_the_runs(
    runs: Any, pg_url: str, worker_env: dict[str, str], start_worker: Any, tmp_path: Path
) -> None:
    ledger = tmp_path / "executions"
    numbers = send_steps(runs, ledger, 1000)
    first = start_worker([APP, "--processes=2"], worker_env, cwd=REPO)
    wait_until(lambda: sum(executions(ledger).values()) >= 100, "runs under way")
    assert query(pg_url, "SELECT count(*) FROM horsies_tasks WHERE status = 'RUNNING'"
                 )[0][0] > 2  # more assigned than the children are in
    assert first.stop(signal.SIGTERM) == 0
    statuses = dict(query(pg_url, "SELECT status, count(*) FROM horsies_tasks GROUP BY 1"))
    ran = executions(ledger)
    # every task begun was finished and written; the others are back, unowned
    assert statuses.get("COMPLETED", 0) == sum(ran.values())
    assert statuses.get("PENDING", 0) == len(numbers) - sum(ran.values()) > 0
    assert query(pg_url, "SELECT count(*) FROM horsies_tasks WHERE status = 'PENDING' "
                         "AND claimed_by_worker_id IS NOT NULL")[0][0] == 0
    second = start_worker([APP, "--processes=2"], worker_env, cwd=REPO)
    wait_until(lambda: all_terminal(pg_url), "every task to end")
    assert second.stop() == 0
    ran = executions(ledger)
    assert sorted(ran) == sorted(numbers.values()) and max(ran.values()) == 1
