"""The reaper's operations called directly against a real database (workers.md §11).

Each operation takes a transaction factory; here it opens a fresh connection
per transaction. Rows are written with SQL so that their timestamps can be
placed exactly around the thresholds of lifecycle-and-schema.md §3.3.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import orjson
import psycopg
import pytest

from horsies.config import RecoveryConfig, WorkerResilienceConfig
from horsies.info import BrokerErrorCode
from horsies.worker import recovery
from horsies.worker.connections import Connections
from horsies.worker.recovery import (
    Reaper,
    expire_pending_tasks,
    mark_stale_tasks_as_failed,
    prune_retention,
    requeue_stale_claimed,
    stale_reason,
)
from tests.conftest import query

EXPIRED_RESULT = (
    '{"__task_result__":true,"ok":null,"err":{"__task_error__":true,'
    '"error_code":{"__builtin_task_code__":"TASK_EXPIRED"},'
    '"message":"Task expired: good_until deadline passed before execution started",'
    '"data":null}}'
)


def make_tx(url: str) -> Any:
    @asynccontextmanager
    async def tx() -> AsyncIterator[psycopg.AsyncConnection[Any]]:
        async with await psycopg.AsyncConnection.connect(url) as conn:
            async with conn.transaction():
                yield conn

    return tx


def run(coro: Any) -> Any:
    return asyncio.run(coro)



def insert_task(url: str, status: str = "PENDING", **columns: Any) -> str:
    """One horsies_tasks row; `columns` values are SQL expressions."""
    task_id = str(uuid.uuid4())
    values = {"id": f"'{task_id}'", "queue_name": "'default'", "task_name": "'add'",
              "enqueue_sha": "'x'", "status": f"'{status}'", **columns}
    query(url, f"INSERT INTO horsies_tasks ({', '.join(values)}) "
             f"VALUES ({', '.join(values.values())})")
    return task_id


def row(url: str, task_id: str, columns: str) -> tuple[Any, ...]:
    return query(url, f"SELECT {columns} FROM horsies_tasks WHERE id = %s", (task_id,))[0]


def n_attempts(url: str, task_id: str | None = None) -> int:
    if task_id is None:
        return query(url, "SELECT count(*) FROM horsies_task_attempts")[0][0]
    return query(url, "SELECT count(*) FROM horsies_task_attempts WHERE task_id = %s",
               (task_id,))[0][0]


# -- pending expiry (T9) ---------------------------------------------------------------


def test_pending_expiry_moves_only_past_deadlines(pg_url: str) -> None:
    past = insert_task(pg_url, good_until="now() - interval '1 second'")
    future = insert_task(pg_url, good_until="now() + interval '1 hour'")
    no_deadline = insert_task(pg_url)
    running = insert_task(pg_url, "RUNNING", good_until="now() - interval '1 hour'",
                          started_at="now()", claimed_at="now()",
                          claimed_by_worker_id="'w1'")
    assert run(expire_pending_tasks(make_tx(pg_url))).ok_value == 1
    status, result, error_code, failed_at = row(pg_url, past,
                                                "status, result, error_code, failed_at")
    assert (status, error_code) == ("EXPIRED", "TASK_EXPIRED")
    assert result == EXPIRED_RESULT and failed_at is not None
    assert n_attempts(pg_url) == 0
    for untouched, expected in ((future, "PENDING"), (no_deadline, "PENDING"),
                                (running, "RUNNING")):
        assert row(pg_url, untouched, "status, result, error_code") == (expected, None, None)
    assert run(expire_pending_tasks(make_tx(pg_url))).ok_value == 0  # idempotent


# -- stale claims (T7) -----------------------------------------------------------------


def claimer_beat(url: str, worker_id: str, age: str) -> None:
    query(url, "INSERT INTO horsies_heartbeats (sent_at, sender_id, role) "
             "VALUES (now() - %s::interval, %s, 'claimer')", (age, worker_id))


def runner_beat(url: str, worker_id: str, pid: int, age: str) -> None:
    query(url, "INSERT INTO horsies_heartbeats (sent_at, sender_id, role, pid) "
             "VALUES (now() - %s::interval, %s, 'runner', %s)", (age, f"{worker_id}:{pid}", pid))


def _claimed(url: str, worker_id: str, claimed_at: str) -> str:
    return insert_task(url, "CLAIMED", claimed_at=claimed_at, claimed="TRUE",
                       claimed_by_worker_id=f"'{worker_id}'",
                       claim_expires_at="now() + interval '1 hour'")


def test_stale_claims_requeued_by_greatest_of_heartbeat_and_claimed_at(pg_url: str) -> None:
    old = "now() - interval '10 seconds'"
    stale = _claimed(pg_url, "silent", old)
    # an old claim of a worker whose claimer heartbeat is recent
    claimer_beat(pg_url, "beating", "1 second")
    beaten = _claimed(pg_url, "beating", old)
    # a fresh claim of a worker whose only heartbeat is old
    claimer_beat(pg_url, "reclaiming", "1 hour")
    reclaimed = _claimed(pg_url, "reclaiming", "now()")
    # a runner heartbeat of the worker's child does not keep its claims alive
    runner_beat(pg_url, "runner-only", 7, "0 seconds")
    runner_only = _claimed(pg_url, "runner-only", old)
    running = insert_task(pg_url, "RUNNING", claimed_at=old, started_at=old,
                          claimed_by_worker_id="'silent'")

    assert run(requeue_stale_claimed(make_tx(pg_url), 5_000)).ok_value == 2
    columns = "status, claimed, claimed_at, claimed_by_worker_id, claim_expires_at"
    for task_id in (stale, runner_only):
        assert row(pg_url, task_id, columns) == ("PENDING", False, None, None, None)
    assert row(pg_url, beaten, "status, claimed_by_worker_id") == ("CLAIMED", "beating")
    assert row(pg_url, reclaimed, "status, claimed_by_worker_id") == ("CLAIMED", "reclaiming")
    assert row(pg_url, running, "status") == ("RUNNING",)
    assert n_attempts(pg_url) == 0  # user code never ran


# -- stale runs, per child (crash path and T15) ----------------------------------------


def _running(url: str, pid: int = 4242, seq: int | None = None, worker: str = "w1",
             started: str = "now() - interval '10 s'", **columns: Any) -> str:
    return insert_task(url, "RUNNING", claimed_at="now() - interval '20 s'",
                       claimed_by_worker_id=f"'{worker}'", started_at=started,
                       worker_pid=str(pid), worker_hostname="'host-a'",
                       worker_process_name=f"'worker-{pid}'",
                       run_seq="NULL" if seq is None else str(seq), **columns)


def mark(url: str, worker: str, pid: int, limit: int) -> None:
    query(url, "INSERT INTO horsies_child_marks (worker_id, pid, start_limit) VALUES (%s, %s, %s)",
        (worker, pid, limit))


def test_stale_child_crashes_what_may_have_started_and_returns_the_rest(pg_url: str) -> None:
    mark(pg_url, "w1", 4242, 2)
    began = [_running(pg_url, seq=n) for n in (1, 2)]
    never = [_running(pg_url, seq=n) for n in (3, 4)]
    # a child that beats is alive; a child whose work was assigned just now is not stale
    beating = _running(pg_url, pid=4243, seq=1)
    runner_beat(pg_url, "w1", 4243, "1 second")
    fresh = _running(pg_url, pid=4244, seq=1, started="now()")
    runner_beat(pg_url, "w1", 4244, "1 hour")
    retries: list[Any] = []

    recovered = run(mark_stale_tasks_as_failed(make_tx(pg_url), 5_000,
                                               lambda *a: retries.append(a)))
    assert recovered.ok_value == 4 and retries == []
    reason = stale_reason(5_000)
    assert reason == "Worker process crashed (no runner heartbeat for 5000ms = 5.0s)"
    for task_id in began:
        status, error_code, failed_reason, result, failed_at = row(
            pg_url, task_id, "status, error_code, failed_reason, result, failed_at")
        assert (status, error_code, failed_reason) == ("FAILED", "WORKER_CRASHED", reason)
        assert failed_at is not None
        err = orjson.loads(result)["err"]
        assert err["message"] == reason
        assert err["error_code"] == {"__builtin_task_code__": "WORKER_CRASHED"}
        data = err["data"]
        assert data["worker_id"] == "w1" and data["worker_hostname"] == "host-a"
        assert data["worker_pid"] == 4242
        assert data["stale_threshold_ms"] == 5_000 and data["stale_threshold_seconds"] == 5.0
        assert data["started_at"] and data["detected_at"]
        attempts = query(pg_url, "SELECT attempt, outcome, will_retry, error_code, error_message, "
                               "failed_reason, worker_id FROM horsies_task_attempts "
                               "WHERE task_id = %s", (task_id,))
        assert attempts == [(1, "WORKER_FAILURE", False, "WORKER_CRASHED", reason, reason, "w1")]
    for task_id in never:  # T15: beyond the mark, they cannot have started
        assert row(pg_url, task_id, "status, claimed_by_worker_id, retry_count") == (
            "PENDING", None, 0)
        assert n_attempts(pg_url, task_id) == 0
    for alive in (beating, fresh):
        assert row(pg_url, alive, "status") == ("RUNNING",)
    # the mark is revoked: the child's worker, were it alive, could not raise it again
    assert query(pg_url, "SELECT revoked FROM horsies_child_marks WHERE pid = 4242") == [(True,)]


def test_a_row_without_run_position_takes_the_crash_path(pg_url: str) -> None:
    # A row started by a worker of schema v1 (no run position, no mark).
    v1 = _running(pg_url, pid=99, seq=None)
    assert run(mark_stale_tasks_as_failed(make_tx(pg_url), 5_000)).ok_value == 1
    assert row(pg_url, v1, "status, error_code") == ("FAILED", "WORKER_CRASHED")


def test_a_child_whose_mark_a_live_cycle_holds_is_left_alone(pg_url: str) -> None:
    mark(pg_url, "w1", 4242, 5)
    task = _running(pg_url, seq=1)
    with psycopg.connect(pg_url) as cycle:  # a cycle of the live worker, in flight
        cycle.execute("SELECT 1 FROM horsies_child_marks WHERE pid = 4242 FOR UPDATE")
        assert run(mark_stale_tasks_as_failed(make_tx(pg_url), 5_000)).ok_value == 0
    assert row(pg_url, task, "status") == ("RUNNING",)
    assert run(mark_stale_tasks_as_failed(make_tx(pg_url), 5_000)).ok_value == 1


def test_stale_run_retried_when_policy_lists_worker_crashed(pg_url: str) -> None:
    policy = {"retry_policy": {"max_retries": 2, "intervals": [2], "backoff_strategy": "fixed",
                               "jitter": False, "auto_retry_for": ["WORKER_CRASHED"]}}
    options = "'" + orjson.dumps(policy).decode() + "'"
    retried = _running(pg_url, max_retries="2", task_options=options)
    retries: list[Any] = []
    assert run(mark_stale_tasks_as_failed(make_tx(pg_url), 5_000,
                                          lambda *a: retries.append(a))).ok_value == 1
    assert [(task_id, queue) for task_id, queue, _ in retries] == [(retried, "default")]
    status, retry_count, error_code, claimed_by, delay = row(
        pg_url, retried, "status, retry_count, error_code, claimed_by_worker_id, "
                         "extract(epoch FROM next_retry_at - now())")
    assert (status, retry_count, error_code, claimed_by) == ("PENDING", 1, None, None)
    assert 0.5 < float(delay) <= 2.0
    attempts = query(pg_url, "SELECT attempt, outcome, will_retry, error_code "
                           "FROM horsies_task_attempts WHERE task_id = %s", (retried,))
    assert attempts == [(1, "WORKER_FAILURE", True, "WORKER_CRASHED")]


# -- retention -------------------------------------------------------------------------


def test_retention_deletes_old_rows_and_cascades_attempts(pg_url: str) -> None:
    old, new = "now() - interval '3 hours'", "now() - interval '30 minutes'"
    old_done = insert_task(pg_url, "COMPLETED", updated_at=old, completed_at=old)
    new_done = insert_task(pg_url, "FAILED", updated_at=new, error_code="'X'")
    old_pending = insert_task(pg_url, "PENDING", updated_at=old)
    for task_id in (old_done, new_done):
        query(pg_url, "INSERT INTO horsies_task_attempts (task_id, started_at, finished_at, "
                    "attempt, outcome) VALUES (%s, now(), now(), 1, 'COMPLETED')", (task_id,))
    runner_beat(pg_url, "w1", 1, "3 hours")
    runner_beat(pg_url, "w1", 1, "30 minutes")
    for age in ("3 hours", "30 minutes"):
        query(pg_url, "INSERT INTO horsies_worker_states (snapshot_at, worker_started_at, pid, "
                    "processes, max_claim_batch, max_claim_per_worker, worker_id, hostname, "
                    "queues) VALUES (now() - %s::interval, now(), 1, 1, 1, 1, 'w1', 'h', "
                    "'{default}')", (age,))
    config = RecoveryConfig(heartbeat_retention_hours=1, worker_state_retention_hours=1,
                            terminal_record_retention_hours=1)

    deleted = run(prune_retention(make_tx(pg_url), config)).ok_value
    assert deleted is not None
    assert (deleted["heartbeats"], deleted["worker_states"], deleted["tasks"]) == (1, 1, 1)
    ids = {r[0] for r in query(pg_url, "SELECT id::text FROM horsies_tasks")}
    assert ids == {new_done, old_pending}  # non-terminal rows are never pruned
    assert query(pg_url, "SELECT task_id::text FROM horsies_task_attempts") == [(new_done,)]
    assert query(pg_url, "SELECT count(*) FROM horsies_heartbeats")[0][0] == 1
    assert query(pg_url, "SELECT count(*) FROM horsies_worker_states")[0][0] == 1
    # the advisory lock was released: a second pass runs (and finds nothing)
    again = run(prune_retention(make_tx(pg_url), config)).ok_value
    assert again is not None and not any(again.values())


def insert_workflow(url: str, status: str, age: str) -> tuple[str, str]:
    """A workflow with one node whose task is COMPLETED; (workflow id, task id)."""
    workflow_id = str(uuid.uuid4())
    task_id = insert_task(url, "COMPLETED", updated_at=f"now() - interval '{age}'",
                          completed_at="now()")
    query(url, "INSERT INTO horsies_workflows (id, name, status, updated_at) "
               "VALUES (%s, 'kept_or_not', %s, now() - %s::interval)",
          (workflow_id, status, age))
    query(url, "INSERT INTO horsies_workflow_tasks (id, workflow_id, task_index, node_id, "
               "task_name, status, task_id) VALUES (%s, %s, 0, 'only', 't', 'COMPLETED', %s)",
          (str(uuid.uuid4()), workflow_id, task_id))
    return workflow_id, task_id


def test_retention_prunes_finished_workflows_and_keeps_live_ones(pg_url: str) -> None:
    """workers.md §11.6: finished workflows past the threshold go with their nodes; a
    live workflow keeps its finished tasks however old they are."""
    old_done, old_done_task = insert_workflow(pg_url, "COMPLETED", "3 hours")
    new_done, new_done_task = insert_workflow(pg_url, "FAILED", "30 minutes")
    old_live, old_live_task = insert_workflow(pg_url, "RUNNING", "3 hours")
    config = RecoveryConfig(terminal_record_retention_hours=1)

    deleted = run(prune_retention(make_tx(pg_url), config)).ok_value
    assert deleted is not None
    assert (deleted["workflows"], deleted["workflow_tasks"], deleted["tasks"]) == (1, 1, 1)
    workflows = {r[0] for r in query(pg_url, "SELECT id::text FROM horsies_workflows")}
    assert workflows == {new_done, old_live}
    nodes = {r[0] for r in query(pg_url, "SELECT workflow_id::text FROM horsies_workflow_tasks")}
    assert nodes == {new_done, old_live}
    tasks = {r[0] for r in query(pg_url, "SELECT id::text FROM horsies_tasks")}
    assert old_done_task not in tasks and {new_done_task, old_live_task} <= tasks


def test_retention_none_disables_a_category(pg_url: str) -> None:
    done = insert_task(pg_url, "COMPLETED", updated_at="now() - interval '3 hours'",
                       completed_at="now()")
    runner_beat(pg_url, "w1", 1, "3 hours")
    config = RecoveryConfig(heartbeat_retention_hours=None, worker_state_retention_hours=None,
                            terminal_record_retention_hours=None)
    deleted = run(prune_retention(make_tx(pg_url), config)).ok_value
    assert deleted is not None and not any(deleted.values())
    assert query(pg_url, "SELECT count(*) FROM horsies_tasks")[0][0] == 1
    assert query(pg_url, "SELECT count(*) FROM horsies_heartbeats")[0][0] == 1
    only_beats = RecoveryConfig(heartbeat_retention_hours=1, worker_state_retention_hours=None,
                                terminal_record_retention_hours=None)
    deleted = run(prune_retention(make_tx(pg_url), only_beats)).ok_value
    assert deleted is not None and deleted["heartbeats"] == 1 and deleted["tasks"] == 0
    assert query(pg_url, "SELECT id::text FROM horsies_tasks") == [(done,)]


def test_retention_skipped_while_another_holds_the_lock(pg_url: str) -> None:
    with psycopg.connect(pg_url, autocommit=True) as holder:
        holder.execute("SELECT pg_advisory_lock(%s)", (recovery.RETENTION_LOCK_KEY,))
        outcome = run(prune_retention(make_tx(pg_url), RecoveryConfig()))
    assert outcome.is_ok() and outcome.ok_value is None


# -- permanent failures ----------------------------------------------------------------


def reaper_passes(url: str, n: int, between: Any = None) -> Reaper:
    """A reaper on a real service connection; `n` passes, `between(i)` after each."""
    async def go() -> Reaper:
        conns = Connections(lambda: url, WorkerResilienceConfig())
        await conns.open(["service"])
        reaper = Reaper(conns, RecoveryConfig(check_interval_ms=1_000),
                        on_retry=lambda *a: None, on_recovered=lambda: None,
                        stopping=lambda: False)
        reaper.next_retention = float("inf")  # retention is not under test here
        try:
            for i in range(n):
                await reaper.run_pass()
                if between is not None:
                    between(i, reaper)
        finally:
            await conns.close()
        return reaper

    return run(go())


def test_three_permanent_failures_disable_an_operation(
    pg_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    # A real, permanent failure: the column the stale-claim query needs is gone.
    query(pg_url, "ALTER TABLE horsies_heartbeats RENAME COLUMN role TO role_gone")
    direct = run(requeue_stale_claimed(make_tx(pg_url), 1_000))
    error = direct.err_value
    assert error.code is BrokerErrorCode.CLEANUP_FAILED and not error.retryable
    caplog.set_level(logging.ERROR, logger="horsies.worker")
    counts: list[int] = []
    reaper = reaper_passes(pg_url, 3, lambda i, r: counts.append(
        r.failures["requeue_stale_claimed"]))
    assert counts == [1, 2, 3]
    assert reaper.disabled == {"requeue_stale_claimed", "mark_stale_tasks_as_failed"}
    critical = [r.getMessage() for r in caplog.records if r.levelno == logging.CRITICAL]
    assert len(critical) == 2
    assert critical[0].startswith("Reaper requeue_stale_claimed disabled after 3 consecutive "
                                  "permanent failures. Last error: requeue_stale_claimed failed:")
    assert critical[0].endswith("Requires deploy or manual intervention.")


def test_a_disabled_operation_is_skipped_and_the_others_keep_running(pg_url: str) -> None:
    query(pg_url, "ALTER TABLE horsies_heartbeats RENAME COLUMN role TO role_gone")
    pending = insert_task(pg_url, good_until="now() - interval '1 second'")

    def expire_after_disabling(i: int, reaper: Reaper) -> None:
        if i == 2:  # now disabled: the next pass skips it and still expires tasks
            assert reaper.disabled
            query(pg_url, "UPDATE horsies_tasks SET status = 'PENDING', error_code = NULL, "
                        "result = NULL, failed_at = NULL WHERE id = %s", (pending,))

    reaper = reaper_passes(pg_url, 4, expire_after_disabling)
    assert reaper.failures["requeue_stale_claimed"] == 3
    assert row(pg_url, pending, "status") == ("EXPIRED",)


def test_a_success_resets_the_permanent_failure_count(pg_url: str) -> None:
    query(pg_url, "ALTER TABLE horsies_heartbeats RENAME COLUMN role TO role_gone")

    def repair(i: int, reaper: Reaper) -> None:
        if i == 1:
            assert reaper.failures["requeue_stale_claimed"] == 2
            query(pg_url, "ALTER TABLE horsies_heartbeats RENAME COLUMN role_gone TO role")

    reaper = reaper_passes(pg_url, 3, repair)
    assert reaper.failures == {"requeue_stale_claimed": 0, "mark_stale_tasks_as_failed": 0,
                               "recover_workflows": 0}
    assert not reaper.disabled
