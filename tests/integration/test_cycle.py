"""The cycle statement against a real database (runs.md §1-§4).

Rows are placed with SQL; the statement is built by the worker's own
`Statement` and run exactly as a worker runs it.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import psycopg
import pytest

from horsies import TaskHandle, TaskStatus
from horsies.sql import cycle_statement, queries
from horsies.worker.endings import Statement

WORKER = "worker-a"
OK = '{"__task_result__":true,"ok":1,"err":null}'
ERR = ('{"__task_result__":true,"ok":null,"err":{"__task_error__":true,'
       '"error_code":"X","message":"boom","data":null}}')


@pytest.fixture
def conn(pg_url: str) -> Iterator[psycopg.Connection[Any]]:
    with psycopg.connect(pg_url, autocommit=True) as c:
        yield c


def running(conn: psycopg.Connection[Any], *, worker: str = WORKER, pid: int = 7,
            seq: int = 1, **columns: Any) -> str:
    task_id = str(uuid.uuid4())
    values = {"id": task_id, "task_name": "add", "queue_name": "default", "enqueue_sha": "x",
              "status": "RUNNING", "claimed_by_worker_id": worker, "worker_pid": pid,
              "worker_hostname": "host", "worker_process_name": f"worker-{pid}",
              "started_at": datetime.now(UTC) - timedelta(seconds=5), "run_seq": seq,
              "claimed_at": datetime.now(UTC) - timedelta(seconds=5), **columns}
    conn.execute(f"INSERT INTO horsies_tasks ({', '.join(values)}) "
                 f"VALUES ({', '.join(['%s'] * len(values))})", list(values.values()))
    return task_id


def cycle(conn: psycopg.Connection[Any], stmt: Statement, worker: str = WORKER
          ) -> list[tuple[Any, ...]]:
    return conn.execute(cycle_statement(512),
                        stmt.params(worker, "host", ["default"])).fetchall()


def task(conn: psycopg.Connection[Any], task_id: str, columns: str) -> tuple[Any, ...]:
    row = conn.execute(f"SELECT {columns} FROM horsies_tasks WHERE id = %s", (task_id,))
    found = row.fetchone()
    assert found is not None
    return found


def attempts(conn: psycopg.Connection[Any], task_id: str) -> list[tuple[Any, ...]]:
    return conn.execute("SELECT attempt, outcome, will_retry, error_code FROM "
                        "horsies_task_attempts WHERE task_id = %s ORDER BY attempt",
                        (task_id,)).fetchall()


# -- guards: the owner and the child -------------------------------------------------


def test_a_late_result_never_ends_another_workers_or_childs_attempt(
    conn: psycopg.Connection[Any]
) -> None:
    # Reaped and retried elsewhere: now RUNNING under worker B; and one under another child.
    elsewhere = running(conn, worker="worker-b", pid=7)
    other_child = running(conn, pid=8)
    mine = running(conn, pid=7)
    stmt = Statement()
    for task_id in (elsewhere, other_child, mine):
        stmt.complete(task_id, 7, OK, time.time())
    stmt.fail(elsewhere, 7, ERR, "X", "boom", None, None, None)
    rows = cycle(conn, stmt)
    assert [row[2] for row in rows if row[0] == "Z"] == [1]
    assert [row for row in rows if row[0] == "F"] == []
    assert task(conn, mine, "status") == ("COMPLETED",)
    for untouched in (elsewhere, other_child):
        assert task(conn, untouched, "status, result") == ("RUNNING", None)
        assert attempts(conn, untouched) == []


# -- endings ---------------------------------------------------------------------------


def test_a_success_writes_the_reported_start_and_no_attempt_row(
    conn: psycopg.Connection[Any], apps: Any
) -> None:
    task_id = running(conn, retry_count=1, max_retries=2)
    conn.execute("INSERT INTO horsies_task_attempts (task_id, attempt, outcome, will_retry, "
                 "started_at, finished_at, error_code) VALUES (%s, 1, 'FAILED', TRUE, "
                 "now() - interval '1 minute', now() - interval '1 minute', 'X')", (task_id,))
    began = time.time() - 1.5
    stmt = Statement()
    stmt.complete(task_id, 7, OK, began)
    cycle(conn, stmt)
    status, started_at, completed_at = task(conn, task_id, "status, started_at, completed_at")
    assert status == "COMPLETED" and abs(started_at.timestamp() - began) < 0.001
    assert attempts(conn, task_id) == [(1, "FAILED", True, "X")]
    # info() shows the final success, built from the row, after the stored attempt
    handle: TaskHandle[Any] = TaskHandle(task_id, apps.app, broker_mode=True)
    shown = handle.info(include_attempts=True).ok_value
    assert shown.status is TaskStatus.COMPLETED
    assert [(a.attempt, a.outcome.value, a.worker_id) for a in shown.attempts or []] == [
        (2, "COMPLETED", WORKER), (1, "FAILED", None)]
    assert shown.attempts and shown.attempts[0].finished_at == completed_at


@pytest.mark.parametrize(("deadline_s", "retried"), [(None, True), (60, True), (29, False),
                                                     (-1, False)])
def test_a_retry_must_fall_before_good_until(
    conn: psycopg.Connection[Any], deadline_s: int | None, retried: bool
) -> None:
    deadline = None if deadline_s is None else datetime.now(UTC) + timedelta(seconds=deadline_s)
    task_id = running(conn, max_retries=3, good_until=deadline)
    stmt = Statement()
    stmt.fail(task_id, 7, ERR, "X", "boom", None, 30.0, None)
    [row] = [r for r in cycle(conn, stmt) if r[0] == "F"]
    status, retry_count, error_code, owner, result = task(
        conn, task_id, "status, retry_count, error_code, claimed_by_worker_id, result")
    if retried:
        assert (status, retry_count, error_code, owner, result) == ("PENDING", 1, None, None,
                                                                     None)
        assert row[8] == 1 and row[11] is not None  # the retry's time, for its timer
    else:  # the deadline wins: the task ends with its own error
        assert (status, retry_count, error_code, owner) == ("FAILED", 0, "X", WORKER)
        assert orjson.loads(result)["err"]["message"] == "boom"
    assert attempts(conn, task_id) == [(1, "FAILED", retried, "X")]


def test_a_crash_writes_a_worker_failure_attempt(conn: psycopg.Connection[Any]) -> None:
    task_id = running(conn)
    stmt = Statement()
    stmt.fail(task_id, 7, ERR, "WORKER_CRASHED", "gone", "gone", None, None)
    cycle(conn, stmt)
    assert task(conn, task_id, "status, error_code, failed_reason") == (
        "FAILED", "WORKER_CRASHED", "gone")
    assert attempts(conn, task_id) == [(1, "WORKER_FAILURE", False, "WORKER_CRASHED")]


def test_tasks_never_started_go_back_with_their_place(conn: psycopg.Connection[Any]) -> None:
    enqueued = datetime.now(UTC) - timedelta(hours=1)
    task_id = running(conn, enqueued_at=enqueued, retry_count=1, max_retries=2, seq=9)
    stmt = Statement()
    stmt.give_back(task_id, 7)
    cycle(conn, stmt)
    assert task(conn, task_id, "status, enqueued_at, retry_count, claimed_by_worker_id, "
                               "claimed_at, run_seq") == ("PENDING", enqueued, 1, None, None,
                                                          None)
    assert attempts(conn, task_id) == []  # not an attempt, not a retry


# -- starts and marks --------------------------------------------------------------------


def pending(conn: psycopg.Connection[Any], n: int, **columns: Any) -> list[str]:
    ids = []
    for i in range(n):
        task_id = str(uuid.uuid4())
        values = {"id": task_id, "task_name": "add", "queue_name": "default",
                  "enqueue_sha": "x", "args": f"[{i}]", **columns}
        conn.execute(f"INSERT INTO horsies_tasks ({', '.join(values)}) "
                     f"VALUES ({', '.join(['%s'] * len(values))})", list(values.values()))
        ids.append(task_id)
    return ids


def test_a_run_is_started_in_claim_order_for_its_child(conn: psycopg.Connection[Any]) -> None:
    ids = pending(conn, 5)
    later = pending(conn, 1, enqueued_at=datetime.now(UTC) + timedelta(hours=1))
    gone = pending(conn, 1, good_until=datetime.now(UTC) - timedelta(seconds=1))
    stmt = Statement()
    stmt.slot_pids += [7, 8, 7, 8]
    stmt.slot_seqs += [1, 1, 2, 2]
    stmt.mark_pids += [7, 8]
    stmt.mark_limits += [10, 10]
    rows = cycle(conn, stmt)
    started = sorted((row[1], row[2], row[3]) for row in rows if row[0] == "S")
    assert started == sorted([(7, 1, ids[0]), (8, 1, ids[1]), (7, 2, ids[2]), (8, 2, ids[3])])
    for pid, seq, task_id in started:
        assert task(conn, task_id, "status, worker_pid, run_seq, claimed_by_worker_id") == (
            "RUNNING", pid, seq, WORKER)
    for untouched in (ids[4], *later, *gone):
        assert task(conn, untouched, "status") == ("PENDING",)
    assert sorted(row[1] for row in rows if row[0] == "M") == [7, 8]


def test_a_revoked_mark_is_never_raised_again(conn: psycopg.Connection[Any]) -> None:
    conn.execute("INSERT INTO horsies_child_marks (worker_id, pid, start_limit, revoked) "
                 "VALUES (%s, 7, 4, TRUE)", (WORKER,))
    stmt = Statement()
    stmt.mark_pids += [7, 8]
    stmt.mark_limits += [20, 20]
    rows = cycle(conn, stmt)
    assert [row[1] for row in rows if row[0] == "M"] == [8]
    assert conn.execute("SELECT pid, start_limit FROM horsies_child_marks ORDER BY pid"
                        ).fetchall() == [(7, 4), (8, 20)]
    gone = Statement()
    gone.gone_pids.append(8)
    cycle(conn, gone)
    assert conn.execute("SELECT pid FROM horsies_child_marks").fetchall() == [(7,)]
