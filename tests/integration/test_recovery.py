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
from types import SimpleNamespace
from typing import Any

import orjson
import psycopg
import pytest

from horsies.config import RecoveryConfig
from horsies.info import BrokerErrorCode
from horsies.worker import recovery
from horsies.worker.recovery import (
    Reaper,
    expire_pending_tasks,
    mark_stale_tasks_as_failed,
    prune_retention,
    requeue_stale_claimed,
    stale_reason,
)

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


def sql(url: str, text: str, params: Any = None) -> list[tuple[Any, ...]]:
    with psycopg.connect(url, autocommit=True) as conn:
        cur = conn.execute(text, params)
        return cur.fetchall() if cur.description else []


def insert_task(url: str, status: str = "PENDING", **columns: Any) -> str:
    """One horsies_tasks row; `columns` values are SQL expressions."""
    task_id = str(uuid.uuid4())
    values = {"id": f"'{task_id}'", "queue_name": "'default'", "task_name": "'add'",
              "enqueue_sha": "'x'", "status": f"'{status}'", **columns}
    sql(url, f"INSERT INTO horsies_tasks ({', '.join(values)}) "
             f"VALUES ({', '.join(values.values())})")
    return task_id


def beat(url: str, task_id: str, role: str, age: str) -> None:
    sql(url, "INSERT INTO horsies_heartbeats (task_id, sent_at, sender_id, role) "
             "VALUES (%s, now() - %s::interval, 'w1', %s)", (task_id, age, role))


def row(url: str, task_id: str, columns: str) -> tuple[Any, ...]:
    return sql(url, f"SELECT {columns} FROM horsies_tasks WHERE id = %s", (task_id,))[0]


def n_attempts(url: str, task_id: str | None = None) -> int:
    if task_id is None:
        return sql(url, "SELECT count(*) FROM horsies_task_attempts")[0][0]
    return sql(url, "SELECT count(*) FROM horsies_task_attempts WHERE task_id = %s",
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


def test_stale_claims_requeued_by_greatest_of_heartbeat_and_claimed_at(pg_url: str) -> None:
    claimed = {"claimed": "TRUE", "claimed_by_worker_id": "'w1'",
               "claim_expires_at": "now() + interval '1 hour'"}
    old = "now() - interval '10 seconds'"
    stale = insert_task(pg_url, "CLAIMED", claimed_at=old, **claimed)
    # an old claim kept fresh by a recent claimer heartbeat
    beaten = insert_task(pg_url, "CLAIMED", claimed_at=old, **claimed)
    beat(pg_url, beaten, "claimer", "1 second")
    # a fresh claim with only a heartbeat left over from an earlier claim
    reclaimed = insert_task(pg_url, "CLAIMED", claimed_at="now()", **claimed)
    beat(pg_url, reclaimed, "claimer", "1 hour")
    # a runner heartbeat does not keep a claim alive
    runner_only = insert_task(pg_url, "CLAIMED", claimed_at=old, **claimed)
    beat(pg_url, runner_only, "runner", "0 seconds")
    running = insert_task(pg_url, "RUNNING", claimed_at=old, started_at=old,
                          claimed_by_worker_id="'w1'")

    assert run(requeue_stale_claimed(make_tx(pg_url), 5_000)).ok_value == 2
    columns = "status, claimed, claimed_at, claimed_by_worker_id, claim_expires_at"
    for task_id in (stale, runner_only):
        assert row(pg_url, task_id, columns) == ("PENDING", False, None, None, None)
    for task_id in (beaten, reclaimed):
        assert row(pg_url, task_id, "status, claimed_by_worker_id") == ("CLAIMED", "w1")
    assert row(pg_url, running, "status") == ("RUNNING",)
    assert n_attempts(pg_url) == 0  # user code never ran


# -- stale runs (crash path) -----------------------------------------------------------


def _running(url: str, **columns: Any) -> str:
    return insert_task(url, "RUNNING", claimed_at="now() - interval '20 s'",
                       claimed_by_worker_id="'w1'", started_at="now() - interval '10 s'",
                       worker_pid="4242", worker_hostname="'host-a'",
                       worker_process_name="'worker-4242'", **columns)


def test_stale_run_fails_with_worker_crashed(pg_url: str) -> None:
    stale = _running(pg_url)
    fresh = _running(pg_url)
    beat(pg_url, fresh, "runner", "1 second")
    # a fresh attempt with a runner heartbeat left over from an earlier attempt
    restarted = _running(pg_url, retry_count="1", max_retries="1")
    sql(pg_url, "UPDATE horsies_tasks SET started_at = now() WHERE id = %s", (restarted,))
    beat(pg_url, restarted, "runner", "1 hour")
    plans: list[Any] = []

    assert run(mark_stale_tasks_as_failed(make_tx(pg_url), 5_000, plans.append)).ok_value == 1
    assert len(plans) == 1
    reason = stale_reason(5_000)
    assert reason == "Worker process crashed (no runner heartbeat for 5000ms = 5.0s)"
    status, error_code, failed_reason, result, failed_at = row(
        pg_url, stale, "status, error_code, failed_reason, result, failed_at")
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
    attempts = sql(pg_url, "SELECT attempt, outcome, will_retry, error_code, error_message, "
                           "failed_reason, worker_id FROM horsies_task_attempts "
                           "WHERE task_id = %s", (stale,))
    assert attempts == [(1, "WORKER_FAILURE", False, "WORKER_CRASHED", reason, reason, "w1")]
    for alive in (fresh, restarted):
        assert row(pg_url, alive, "status") == ("RUNNING",)
        assert n_attempts(pg_url, alive) == 0


def test_stale_run_retried_when_policy_lists_worker_crashed(pg_url: str) -> None:
    policy = {"retry_policy": {"max_retries": 2, "intervals": [2], "backoff_strategy": "fixed",
                               "jitter": False, "auto_retry_for": ["WORKER_CRASHED"]}}
    options = "'" + orjson.dumps(policy).decode() + "'"
    retried = _running(pg_url, max_retries="2", task_options=options)
    plans: list[Any] = []
    assert run(mark_stale_tasks_as_failed(make_tx(pg_url), 5_000, plans.append)).ok_value == 1
    assert [t for t, _, _ in plans[0].retries] == [retried]
    status, retry_count, error_code, claimed_by, delay = row(
        pg_url, retried, "status, retry_count, error_code, claimed_by_worker_id, "
                         "extract(epoch FROM next_retry_at - now())")
    assert (status, retry_count, error_code, claimed_by) == ("PENDING", 1, None, None)
    assert 0.5 < float(delay) <= 2.0
    attempts = sql(pg_url, "SELECT attempt, outcome, will_retry, error_code "
                           "FROM horsies_task_attempts WHERE task_id = %s", (retried,))
    assert attempts == [(1, "WORKER_FAILURE", True, "WORKER_CRASHED")]


# -- retention -------------------------------------------------------------------------


def test_retention_deletes_old_rows_and_cascades_attempts(pg_url: str) -> None:
    old, new = "now() - interval '3 hours'", "now() - interval '30 minutes'"
    old_done = insert_task(pg_url, "COMPLETED", updated_at=old, completed_at=old)
    new_done = insert_task(pg_url, "FAILED", updated_at=new, error_code="'X'")
    old_pending = insert_task(pg_url, "PENDING", updated_at=old)
    for task_id in (old_done, new_done):
        sql(pg_url, "INSERT INTO horsies_task_attempts (task_id, started_at, finished_at, "
                    "attempt, outcome) VALUES (%s, now(), now(), 1, 'COMPLETED')", (task_id,))
    beat(pg_url, old_done, "runner", "3 hours")
    beat(pg_url, new_done, "runner", "30 minutes")
    for age in ("3 hours", "30 minutes"):
        sql(pg_url, "INSERT INTO horsies_worker_states (snapshot_at, worker_started_at, pid, "
                    "processes, max_claim_batch, max_claim_per_worker, worker_id, hostname, "
                    "queues) VALUES (now() - %s::interval, now(), 1, 1, 1, 1, 'w1', 'h', "
                    "'{default}')", (age,))
    config = RecoveryConfig(heartbeat_retention_hours=1, worker_state_retention_hours=1,
                            terminal_record_retention_hours=1)

    deleted = run(prune_retention(make_tx(pg_url), config)).ok_value
    assert deleted is not None
    assert (deleted["heartbeats"], deleted["worker_states"], deleted["tasks"]) == (1, 1, 1)
    ids = {r[0] for r in sql(pg_url, "SELECT id::text FROM horsies_tasks")}
    assert ids == {new_done, old_pending}  # non-terminal rows are never pruned
    assert sql(pg_url, "SELECT task_id::text FROM horsies_task_attempts") == [(new_done,)]
    assert sql(pg_url, "SELECT count(*) FROM horsies_heartbeats")[0][0] == 1
    assert sql(pg_url, "SELECT count(*) FROM horsies_worker_states")[0][0] == 1
    # the advisory lock was released: a second pass runs (and finds nothing)
    again = run(prune_retention(make_tx(pg_url), config)).ok_value
    assert again is not None and not any(again.values())


def test_retention_none_disables_a_category(pg_url: str) -> None:
    done = insert_task(pg_url, "COMPLETED", updated_at="now() - interval '3 hours'",
                       completed_at="now()")
    beat(pg_url, done, "runner", "3 hours")
    config = RecoveryConfig(heartbeat_retention_hours=None, worker_state_retention_hours=None,
                            terminal_record_retention_hours=None)
    deleted = run(prune_retention(make_tx(pg_url), config)).ok_value
    assert deleted is not None and not any(deleted.values())
    assert sql(pg_url, "SELECT count(*) FROM horsies_tasks")[0][0] == 1
    assert sql(pg_url, "SELECT count(*) FROM horsies_heartbeats")[0][0] == 1
    only_beats = RecoveryConfig(heartbeat_retention_hours=1, worker_state_retention_hours=None,
                                terminal_record_retention_hours=None)
    deleted = run(prune_retention(make_tx(pg_url), only_beats)).ok_value
    assert deleted is not None and deleted["heartbeats"] == 1 and deleted["tasks"] == 0
    assert sql(pg_url, "SELECT count(*) FROM horsies_tasks")[0][0] == 1


def test_retention_skipped_while_another_holds_the_lock(pg_url: str) -> None:
    with psycopg.connect(pg_url, autocommit=True) as holder:
        holder.execute("SELECT pg_advisory_lock(%s)", (recovery.RETENTION_LOCK_KEY,))
        outcome = run(prune_retention(make_tx(pg_url), RecoveryConfig()))
    assert outcome.is_ok() and outcome.ok_value is None


# -- permanent failures ----------------------------------------------------------------


def test_three_permanent_failures_disable_an_operation(
    pg_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    # A real, permanent failure: the column the stale-claim query needs is gone.
    sql(pg_url, "ALTER TABLE horsies_heartbeats RENAME COLUMN role TO role_gone")
    config = RecoveryConfig(check_interval_ms=1_000)
    worker = SimpleNamespace(app=SimpleNamespace(config=SimpleNamespace(recovery=config)),
                             service_tx=make_tx(pg_url), stopping=False,
                             _after_finalize=lambda plan: None, wake=asyncio.Event(),
                             db_lost_at=None)
    reaper = Reaper(worker)  # type: ignore[arg-type]
    reaper.next_retention = float("inf")  # retention is not under test here
    direct = run(requeue_stale_claimed(make_tx(pg_url), 1_000))
    error = direct.err_value
    assert error.code is BrokerErrorCode.CLEANUP_FAILED and not error.retryable
    caplog.set_level(logging.ERROR, logger="horsies.worker")
    for n in range(1, 4):
        run(reaper.run_pass())
        assert reaper.failures["requeue_stale_claimed"] == n
    assert reaper.disabled == {"requeue_stale_claimed", "mark_stale_tasks_as_failed"}
    critical = [r.getMessage() for r in caplog.records if r.levelno == logging.CRITICAL]
    assert len(critical) == 2
    assert critical[0].startswith("Reaper requeue_stale_claimed disabled after 3 consecutive "
                                  "permanent failures. Last error: requeue_stale_claimed failed:")
    assert critical[0].endswith("Requires deploy or manual intervention.")
    # a disabled operation is no longer attempted; the others keep running
    pending = insert_task(pg_url, good_until="now() - interval '1 second'")
    run(reaper.run_pass())
    assert reaper.failures["requeue_stale_claimed"] == 3
    assert row(pg_url, pending, "status") == ("EXPIRED",)


def test_a_success_resets_the_permanent_failure_count(pg_url: str) -> None:
    sql(pg_url, "ALTER TABLE horsies_heartbeats RENAME COLUMN role TO role_gone")
    config = RecoveryConfig(check_interval_ms=1_000)
    worker = SimpleNamespace(app=SimpleNamespace(config=SimpleNamespace(recovery=config)),
                             service_tx=make_tx(pg_url), stopping=False,
                             _after_finalize=lambda plan: None, wake=asyncio.Event(),
                             db_lost_at=None)
    reaper = Reaper(worker)  # type: ignore[arg-type]
    reaper.next_retention = float("inf")
    for _ in range(2):
        run(reaper.run_pass())
    assert reaper.failures["requeue_stale_claimed"] == 2
    sql(pg_url, "ALTER TABLE horsies_heartbeats RENAME COLUMN role_gone TO role")
    run(reaper.run_pass())
    assert reaper.failures == {"requeue_stale_claimed": 0, "mark_stale_tasks_as_failed": 0}
    assert not reaper.disabled
