"""The broker's inspection and recovery methods against a real PostgreSQL (monitoring.md §2).

Tasks are written by real sends; their states are then set with SQL, with
timestamps placed well clear of the thresholds so that no test depends on
timing. A database that is down is a closed port.
"""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import psycopg
import pytest

from horsies import (
    AppConfig,
    BrokerErrorCode,
    Err,
    Horsies,
    Ok,
    OperationalErrorCode,
    OutcomeCode,
    PostgresConfig,
    RetrievalCode,
    TaskAttemptOutcome,
    TaskError,
    TaskResult,
    TaskStatus,
)
from horsies.codec import dumps_json
from horsies.db.broker import PostgresBroker
from tests.conftest import DOWN_URL, drop_database, query, read_only, with_database

STALE_KEYS = {"id", "worker_hostname", "worker_pid", "worker_process_name", "last_heartbeat",
              "started_at", "task_name"}
STATS_KEYS = {"worker_hostname", "worker_pid", "worker_process_name", "active_tasks",
              "oldest_task_start", "latest_heartbeat"}
EXPIRED_KEYS = {"id", "task_name", "queue_name", "priority", "sent_at", "enqueued_at",
                "good_until", "expired_for"}


def make_app(url: str, **broker: Any) -> Horsies:
    application = Horsies(AppConfig(broker=PostgresConfig(database_url=url, **broker)))

    @application.task("add")
    def add(a: int, b: int) -> TaskResult[int, TaskError]:
        return TaskResult(ok=a + b)

    return application


@pytest.fixture
def app(pg_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Horsies]:
    monkeypatch.delenv("HORSIES_DATABASE_URL", raising=False)
    application = make_app(pg_url)
    yield application
    application.get_broker().close()


@pytest.fixture
def broker(app: Horsies) -> PostgresBroker:
    return app.get_broker()


@pytest.fixture
def down(monkeypatch: pytest.MonkeyPatch) -> Iterator[PostgresBroker]:
    monkeypatch.delenv("HORSIES_DATABASE_URL", raising=False)
    application = make_app(DOWN_URL, pool_timeout=1)
    yield application.get_broker()
    application.get_broker().close()



def send(app: Horsies, **options: Any) -> str:
    task = app.tasks["add"]
    sent = (task.with_options(**options) if options else task).send(1, 2)
    assert isinstance(sent, Ok)
    return sent.ok_value.task_id


def stored(result: TaskResult[Any, TaskError]) -> str:
    return str(dumps_json(result).ok_value)


def finish(url: str, task_id: str, status: str, result: str | None = None,
           notify: bool = False) -> None:
    """End a task by hand; `notify` sends the task_done a worker's cycle would."""
    query(url, "UPDATE horsies_tasks SET status = %s, result = %s, started_at = now(), "
             "completed_at = CASE WHEN %s = 'COMPLETED' THEN now() END, "
             "failed_at = CASE WHEN %s <> 'COMPLETED' THEN now() END WHERE id = %s",
        (status, result, status, status, task_id))
    if notify:
        query(url, "SELECT pg_notify('task_done', %s)", (task_id,))


def running(url: str, app: Horsies, *, worker: str = "w1", pid: int = 100,
            started: str = "1 hour", host: str | None = "host-a") -> str:
    """A sent task made RUNNING on child `pid` of `worker`, started `started` ago."""
    task_id = send(app)
    query(url, "UPDATE horsies_tasks SET status = 'RUNNING', claimed = FALSE, "
             "claimed_at = now() - %(age)s::interval, started_at = now() - %(age)s::interval, "
             "claimed_by_worker_id = %(worker)s, worker_pid = %(pid)s, worker_hostname = %(host)s, "
             "worker_process_name = %(name)s WHERE id = %(id)s",
        {"age": started, "worker": worker, "pid": pid, "host": host,
         "name": f"worker-{pid}", "id": task_id})
    return task_id


def runner_beat(url: str, worker: str, pid: int, age: str) -> None:
    query(url, "INSERT INTO horsies_heartbeats (sent_at, sender_id, role, pid) "
             "VALUES (now() - %s::interval, %s, 'runner', %s)", (age, f"{worker}:{pid}", pid))


def status_of(url: str, task_id: str) -> str:
    return str(query(url, "SELECT status FROM horsies_tasks WHERE id = %s", (task_id,))[0][0])


def assert_err(outcome: Any, code: BrokerErrorCode, retryable: bool) -> None:
    assert isinstance(outcome, Err), outcome
    assert outcome.err_value.code is code
    assert outcome.err_value.retryable is retryable


def error_code(result: TaskResult[Any, TaskError]) -> Any:
    assert result.is_err(), result
    return result.unwrap_err().error_code


# -- get_result ---------------------------------------------------------------


def test_get_result_returns_stored_results_without_caching(app: Horsies, pg_url: str) -> None:
    broker = app.get_broker()
    task_id = send(app)
    finish(pg_url, task_id, "COMPLETED", stored(TaskResult(ok={"a": 5})))
    assert broker.get_result(task_id, timeout_ms=0).unwrap() == {"a": 5}
    # a second read sees the row as it is now: nothing was cached
    query(pg_url, "UPDATE horsies_tasks SET result = %s WHERE id = %s",
        (stored(TaskResult(ok=7)), task_id))
    assert broker.get_result(task_id).unwrap() == 7
    assert asyncio.run(broker.get_result_async(task_id, timeout_ms=0)).unwrap() == 7


def test_get_result_errors_by_status(app: Horsies, broker: PostgresBroker, pg_url: str) -> None:
    failed = send(app)
    finish(pg_url, failed, "FAILED", stored(TaskResult(err=TaskError(error_code="BOOM"))))
    no_result = send(app)
    finish(pg_url, no_result, "EXPIRED")
    garbled = send(app)
    finish(pg_url, garbled, "COMPLETED", "{not json")
    cancelled = send(app)
    finish(pg_url, cancelled, "CANCELLED")
    expected = {
        failed: "BOOM",
        no_result: RetrievalCode.RESULT_NOT_AVAILABLE,
        garbled: OperationalErrorCode.RESULT_DESERIALIZATION_ERROR,
        cancelled: OutcomeCode.TASK_CANCELLED,
        str(uuid.uuid4()): RetrievalCode.TASK_NOT_FOUND,
        "not-a-uuid": RetrievalCode.TASK_NOT_FOUND,
    }
    for task_id, code in expected.items():
        assert error_code(broker.get_result(task_id, timeout_ms=0)) == code, task_id
        assert error_code(asyncio.run(broker.get_result_async(task_id))) == code, task_id
    assert broker.get_result(no_result).unwrap_err().data == {"task_id": no_result,
                                                               "status": "EXPIRED"}


def test_get_result_times_out_on_a_pending_task(app: Horsies, broker: PostgresBroker) -> None:
    task_id = send(app)
    for timeout_ms in (0, -5, 300):
        started = time.monotonic()
        result = broker.get_result(task_id, timeout_ms=timeout_ms)
        assert error_code(result) == RetrievalCode.WAIT_TIMEOUT
        assert result.unwrap_err().data == {"task_id": task_id, "timeout_ms": timeout_ms}
        assert time.monotonic() - started < 10
    late = asyncio.run(broker.get_result_async(task_id, timeout_ms=200))
    assert error_code(late) == RetrievalCode.WAIT_TIMEOUT


def test_get_result_wakes_when_the_task_finishes(app: Horsies, broker: PostgresBroker,
                                                 pg_url: str) -> None:
    task_id = send(app)
    finisher = threading.Timer(0.5, finish, (pg_url, task_id, "COMPLETED",
                                             stored(TaskResult(ok=3)), True))
    finisher.start()
    try:
        assert broker.get_result(task_id, timeout_ms=30_000).unwrap() == 3
    finally:
        finisher.join()
    other = send(app)

    async def wait_and_finish() -> TaskResult[Any, TaskError]:
        waiter = asyncio.ensure_future(broker.get_result_async(other, timeout_ms=30_000))
        await asyncio.sleep(0.5)
        await asyncio.to_thread(finish, pg_url, other, "COMPLETED", stored(TaskResult(ok=4)),
                                True)
        return await waiter

    assert asyncio.run(wait_and_finish()).unwrap() == 4


def test_get_result_rejects_a_timeout_of_the_wrong_type(broker: PostgresBroker) -> None:
    with pytest.raises(TypeError):
        broker.get_result(str(uuid.uuid4()), timeout_ms="5")  # type: ignore[arg-type]


def test_get_result_async_cancellation_propagates(app: Horsies, broker: PostgresBroker) -> None:
    task_id = send(app)

    async def cancel() -> None:
        waiter = asyncio.ensure_future(broker.get_result_async(task_id))
        await asyncio.sleep(0.3)
        waiter.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiter

    asyncio.run(cancel())
    assert broker.listener._waiters == {}  # the subscription was released


# -- get_task_info --------------------------------------------------------------


def test_get_task_info_fields_and_options(app: Horsies, broker: PostgresBroker,
                                          pg_url: str) -> None:
    task_id = send(app, priority=7)
    finish(pg_url, task_id, "FAILED", stored(TaskResult(err=TaskError(error_code="BOOM"))))
    query(pg_url, "UPDATE horsies_tasks SET failed_reason = 'why', error_code = 'BOOM', "
                "worker_hostname = 'h', worker_pid = 9 WHERE id = %s", (task_id,))
    plain = broker.get_task_info(task_id).unwrap()
    assert plain is not None
    assert (plain.task_id, plain.task_name, plain.status, plain.queue_name, plain.priority) == (
        task_id, "add", TaskStatus.FAILED, "default", 7)
    assert (plain.error_code, plain.worker_hostname, plain.worker_pid) == ("BOOM", "h", 9)
    assert plain.failed_at is not None and plain.enqueued_at is not None
    assert (plain.result, plain.failed_reason, plain.attempts) == (None, None, None)
    full = broker.get_task_info(task_id, include_result=True, include_failed_reason=True,
                                include_attempts=True).unwrap()
    assert full is not None
    assert full.result is not None and error_code(full.result) == "BOOM"
    assert (full.failed_reason, full.attempts) == ("why", [])
    same = asyncio.run(broker.get_task_info_async(task_id, include_result=True,
                                                  include_failed_reason=True,
                                                  include_attempts=True)).unwrap()
    assert same == full


def test_get_task_info_missing_and_invalid_ids_are_none(broker: PostgresBroker,
                                                        down: PostgresBroker) -> None:
    assert broker.get_task_info(str(uuid.uuid4())).unwrap() is None
    assert asyncio.run(broker.get_task_info_async(str(uuid.uuid4()))).unwrap() is None
    # not a UUID: answered without a query, so even a broker whose database is down says None
    for bad in ("nope", "", "123"):
        assert down.get_task_info(bad).unwrap() is None
        assert asyncio.run(down.get_task_info_async(bad)).unwrap() is None
        assert error_code(down.get_result(bad)) == RetrievalCode.TASK_NOT_FOUND


def test_get_task_info_attempts_newest_first(app: Horsies, broker: PostgresBroker,
                                             pg_url: str) -> None:
    task_id = send(app)
    for attempt in (1, 2):
        query(pg_url, "INSERT INTO horsies_task_attempts (task_id, attempt, outcome, will_retry, "
                    "started_at, finished_at, error_code, worker_id) VALUES "
                    "(%s, %s, 'FAILED', TRUE, now(), now(), 'BOOM', 'w1')", (task_id, attempt))
    query(pg_url, "UPDATE horsies_tasks SET retry_count = 2, max_retries = 3, "
                "claimed_by_worker_id = 'w2' WHERE id = %s", (task_id,))
    finish(pg_url, task_id, "COMPLETED", stored(TaskResult(ok=3)))
    info = broker.get_task_info(task_id, include_attempts=True).unwrap()
    assert info is not None and info.attempts is not None
    # the final success writes no row of its own; it is built from the task row
    assert [(a.attempt, a.outcome, a.will_retry, a.worker_id) for a in info.attempts] == [
        (3, TaskAttemptOutcome.COMPLETED, False, "w2"),
        (2, TaskAttemptOutcome.FAILED, True, "w1"),
        (1, TaskAttemptOutcome.FAILED, True, "w1"),
    ]


def test_get_task_info_undecodable_result(app: Horsies, broker: PostgresBroker,
                                          pg_url: str) -> None:
    task_id = send(app)
    finish(pg_url, task_id, "COMPLETED", "{not json")
    assert broker.get_task_info(task_id).unwrap() is not None  # the result was not asked for
    assert_err(broker.get_task_info(task_id, include_result=True),
               BrokerErrorCode.TASK_INFO_QUERY_FAILED, retryable=False)
    assert_err(asyncio.run(broker.get_task_info_async(task_id, include_result=True)),
               BrokerErrorCode.TASK_INFO_QUERY_FAILED, retryable=False)


def test_handle_info_is_get_task_info(app: Horsies, broker: PostgresBroker,
                                      pg_url: str) -> None:
    sent = app.tasks["add"].send(1, 2)
    handle = sent.unwrap()
    finish(pg_url, handle.task_id, "COMPLETED", stored(TaskResult(ok=3)))
    options = {"include_result": True, "include_failed_reason": True, "include_attempts": True}
    assert handle.info(**options) == broker.get_task_info(handle.task_id, **options)
    assert asyncio.run(handle.info_async(**options)) == broker.get_task_info(handle.task_id,
                                                                             **options)


# -- get_stale_tasks, get_worker_stats, get_expired_tasks -----------------------


def test_get_stale_tasks_orders_tasks_without_heartbeat_first(app: Horsies,
                                                              broker: PostgresBroker,
                                                              pg_url: str) -> None:
    silent = running(pg_url, app, pid=101)                   # no beat at all
    old_beat = running(pg_url, app, pid=102)
    runner_beat(pg_url, "w1", 102, "30 minutes")
    older_beat = running(pg_url, app, pid=103)
    runner_beat(pg_url, "w1", 103, "50 minutes")
    beating = running(pg_url, app, pid=104)                  # its child beat just now
    runner_beat(pg_url, "w1", 104, "1 second")
    fresh = running(pg_url, app, pid=105, started="1 second")  # old beat, fresh start
    runner_beat(pg_url, "w1", 105, "1 hour")
    other_worker = running(pg_url, app, worker="w2", pid=104)  # same pid, another worker
    send(app)  # PENDING: never stale

    rows = asyncio.run(broker.get_stale_tasks(stale_threshold_minutes=5)).unwrap()
    # no heartbeat first (then by started_at), then the oldest heartbeat
    assert [r["id"] for r in rows] == [silent, other_worker, older_beat, old_beat]
    assert all(set(r) == STALE_KEYS for r in rows)
    first = next(r for r in rows if r["id"] == silent)
    assert first["last_heartbeat"] is None and first["worker_pid"] == 101
    assert (first["worker_hostname"], first["worker_process_name"], first["task_name"]) == (
        "host-a", "worker-101", "add")
    assert rows[2]["last_heartbeat"] < rows[3]["last_heartbeat"]
    assert {beating, fresh}.isdisjoint(r["id"] for r in rows)
    # with the default threshold of 2 minutes the same tasks are stale
    assert len(asyncio.run(broker.get_stale_tasks()).unwrap()) == 4
    assert asyncio.run(broker.get_stale_tasks(stale_threshold_minutes=120)).unwrap() == []


def test_get_worker_stats_groups_running_tasks_by_process(app: Horsies,
                                                          broker: PostgresBroker,
                                                          pg_url: str) -> None:
    busy = [running(pg_url, app, pid=201, started=age) for age in ("10 minutes", "20 minutes")]
    runner_beat(pg_url, "w1", 201, "2 minutes")
    runner_beat(pg_url, "w1", 201, "5 minutes")
    running(pg_url, app, pid=202, host="host-b")
    running(pg_url, app, pid=203, host=None)  # no hostname: left out
    stats = asyncio.run(broker.get_worker_stats()).unwrap()
    assert all(set(s) == STATS_KEYS for s in stats)
    assert [(s["worker_hostname"], s["worker_pid"], s["active_tasks"]) for s in stats] == [
        ("host-a", 201, 2), ("host-b", 202, 1)]
    started = query(pg_url, "SELECT min(started_at) FROM horsies_tasks WHERE id = ANY(%s::uuid[])",
                  (busy,))[0][0]
    beat = query(pg_url, "SELECT max(sent_at) FROM horsies_heartbeats WHERE pid = 201")[0][0]
    assert (stats[0]["oldest_task_start"], stats[0]["latest_heartbeat"]) == (started, beat)
    assert stats[0]["worker_process_name"] == "worker-201"
    assert stats[1]["latest_heartbeat"] is None


def test_get_expired_tasks_lists_pending_past_good_until(app: Horsies, broker: PostgresBroker,
                                                         pg_url: str) -> None:
    later, earlier, future, started = (send(app) for _ in range(4))
    for task_id, offset in ((later, "-1 minute"), (earlier, "-1 hour"), (future, "1 hour"),
                            (started, "-2 hours")):
        query(pg_url, "UPDATE horsies_tasks SET good_until = now() + %s::interval WHERE id = %s",
            (offset, task_id))
    query(pg_url, "UPDATE horsies_tasks SET status = 'RUNNING', started_at = now(), "
                "claimed_by_worker_id = 'w1' WHERE id = %s", (started,))
    rows = asyncio.run(broker.get_expired_tasks()).unwrap()
    assert [r["id"] for r in rows] == [earlier, later]
    assert all(set(r) == EXPIRED_KEYS for r in rows)
    assert isinstance(rows[0]["expired_for"], timedelta)
    assert timedelta(minutes=59) < rows[0]["expired_for"] < timedelta(hours=2)
    assert (rows[1]["task_name"], rows[1]["queue_name"], rows[1]["priority"]) == (
        "add", "default", 100)
    assert status_of(pg_url, earlier) == "PENDING"  # listed, not expired


def _snapshot(url: str) -> list[Any]:
    return [query(url, f"SELECT * FROM {table} ORDER BY 1")
            for table in ("horsies_tasks", "horsies_task_attempts", "horsies_heartbeats",
                          "horsies_child_marks")]


def test_read_only_methods_write_nothing(app: Horsies, pg_url: str,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    done = send(app)
    finish(pg_url, done, "COMPLETED", stored(TaskResult(ok=3)))
    stale = running(pg_url, app)
    pending = send(app, priority=5)
    query(pg_url, "UPDATE horsies_tasks SET good_until = now() - interval '1 hour' WHERE id = %s",
        (pending,))
    before = _snapshot(pg_url)
    # Every transaction of this broker is read-only: a write would fail the call.
    reader = make_app(read_only(pg_url)).get_broker()

    async def read_all() -> list[Any]:
        return [await reader.get_stale_tasks(), await reader.get_worker_stats(),
                await reader.get_expired_tasks(),
                await reader.get_task_info_async(done, include_attempts=True),
                await reader.get_result_async(done, timeout_ms=0)]

    try:
        outcomes = asyncio.run(read_all())
        outcomes += [reader.get_task_info(stale, include_result=True),
                     reader.get_result(done, timeout_ms=0)]
    finally:
        reader.close()
    stale_rows, stats, expired, info, result, stale_info, sync_result = outcomes
    assert [r["id"] for r in stale_rows.unwrap()] == [stale]
    assert stats.unwrap()[0]["active_tasks"] == 1
    assert [r["id"] for r in expired.unwrap()] == [pending]
    assert info.unwrap().status is TaskStatus.COMPLETED
    assert stale_info.unwrap().status is TaskStatus.RUNNING
    assert result.unwrap() == 3 and sync_result.unwrap() == 3
    assert _snapshot(pg_url) == before
    # the same broker cannot write: a recovery method fails, permanently
    writer = make_app(read_only(pg_url)).get_broker()
    try:
        assert_err(asyncio.run(writer.expire_pending_tasks()), BrokerErrorCode.CLEANUP_FAILED,
                   retryable=False)
    finally:
        writer.close()


# -- recovery -------------------------------------------------------------------


def test_mark_stale_tasks_as_failed_takes_the_crash_path(app: Horsies, broker: PostgresBroker,
                                                         pg_url: str) -> None:
    stale = running(pg_url, app, pid=301, started="10 minutes")
    alive = running(pg_url, app, pid=302, started="10 minutes")
    runner_beat(pg_url, "w1", 302, "1 second")
    assert asyncio.run(broker.mark_stale_tasks_as_failed(5_000)).unwrap() == 1
    status, code, reason = query(pg_url, "SELECT status, error_code, failed_reason "
                                       "FROM horsies_tasks WHERE id = %s", (stale,))[0]
    assert (status, code) == ("FAILED", "WORKER_CRASHED")
    assert reason == "Worker process crashed (no runner heartbeat for 5000ms = 5.0s)"
    assert status_of(pg_url, alive) == "RUNNING"
    assert error_code(broker.get_result(stale, timeout_ms=0)) == "WORKER_CRASHED"
    # defaults: 5 minutes; the task of the beating child is still not stale
    assert asyncio.run(broker.mark_stale_tasks_as_failed()).unwrap() == 0
    info = broker.get_task_info(stale, include_attempts=True).unwrap()
    assert info is not None and info.attempts is not None
    assert [a.outcome for a in info.attempts] == [TaskAttemptOutcome.WORKER_FAILURE]


def test_requeue_stale_claimed(app: Horsies, broker: PostgresBroker, pg_url: str) -> None:
    old, recent = send(app), send(app)
    for task_id, age in ((old, "10 minutes"), (recent, "1 second")):
        query(pg_url, "UPDATE horsies_tasks SET status = 'CLAIMED', claimed = TRUE, "
                    "claimed_at = now() - %s::interval, claimed_by_worker_id = 'w1', "
                    "claim_expires_at = now() - interval '1 minute' WHERE id = %s",
            (age, task_id))
    assert asyncio.run(broker.requeue_stale_claimed()).unwrap() == 1  # default: 2 minutes
    assert (status_of(pg_url, old), status_of(pg_url, recent)) == ("PENDING", "CLAIMED")
    assert asyncio.run(broker.requeue_stale_claimed(stale_threshold_ms=100_000)).unwrap() == 0


def test_expire_pending_tasks_expires_and_notifies(app: Horsies, broker: PostgresBroker,
                                                   pg_url: str) -> None:
    past, future = send(app), send(app)
    query(pg_url, "UPDATE horsies_tasks SET good_until = now() + %s::interval WHERE id = %s",
        ("-1 second", past))
    query(pg_url, "UPDATE horsies_tasks SET good_until = now() + %s::interval WHERE id = %s",
        ("1 hour", future))
    with psycopg.connect(pg_url, autocommit=True) as listener:
        listener.execute("LISTEN task_done")
        assert asyncio.run(broker.expire_pending_tasks()).unwrap() == 1
        payloads = [n.payload for n in listener.notifies(timeout=10, stop_after=1)]
    assert payloads == [past]
    assert (status_of(pg_url, past), status_of(pg_url, future)) == ("EXPIRED", "PENDING")
    assert error_code(broker.get_result(past)) == OutcomeCode.TASK_EXPIRED
    assert asyncio.run(broker.get_expired_tasks()).unwrap() == []
    assert asyncio.run(broker.expire_pending_tasks()).unwrap() == 0


# -- failures and lifetime --------------------------------------------------------


def test_a_database_that_is_down_gives_retryable_errors(down: PostgresBroker) -> None:
    task_id = str(uuid.uuid4())
    result = down.get_result(task_id, timeout_ms=0)
    assert error_code(result) == OperationalErrorCode.BROKER_ERROR
    assert result.unwrap_err().exception is not None
    async_result = asyncio.run(down.get_result_async(task_id, timeout_ms=0))
    assert error_code(async_result) == OperationalErrorCode.BROKER_ERROR
    assert_err(down.get_task_info(task_id), BrokerErrorCode.TASK_INFO_QUERY_FAILED, True)
    assert_err(asyncio.run(down.get_task_info_async(task_id)),
               BrokerErrorCode.TASK_INFO_QUERY_FAILED, True)
    for read in (down.get_stale_tasks, down.get_worker_stats, down.get_expired_tasks):
        assert_err(asyncio.run(read()), BrokerErrorCode.MONITORING_QUERY_FAILED, True)
    for recover in (down.mark_stale_tasks_as_failed, down.requeue_stale_claimed,
                    down.expire_pending_tasks):
        assert_err(asyncio.run(recover()), BrokerErrorCode.CLEANUP_FAILED, True)


def test_a_query_on_a_database_without_schema_is_a_permanent_error(
        pg_server_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HORSIES_DATABASE_URL", raising=False)
    empty = f"horsies_empty_{uuid.uuid4().hex[:8]}"
    query(pg_server_url, f"CREATE DATABASE {empty}")
    url = with_database(pg_server_url, empty)
    try:
        bare = make_app(url).get_broker()
        assert_err(asyncio.run(bare.get_worker_stats()), BrokerErrorCode.MONITORING_QUERY_FAILED,
                   retryable=False)
        assert_err(asyncio.run(bare.requeue_stale_claimed()), BrokerErrorCode.CLEANUP_FAILED,
                   retryable=False)
        bare.close()
        # they did not create the schema (§1.5)
        assert query(url, "SELECT to_regclass('horsies_tasks')") == [(None,)]
    finally:
        with psycopg.connect(pg_server_url, autocommit=True) as admin:
            drop_database(admin, empty)


def test_close_returns_ok_and_the_broker_reopens(app: Horsies, broker: PostgresBroker) -> None:
    task_id = send(app)
    assert broker.close() == Ok(None)
    assert broker.close() == Ok(None)  # closing twice is harmless
    assert broker.get_task_info(task_id).unwrap() is not None

    async def use_then_close() -> Any:
        await broker.get_task_info_async(task_id)
        return await broker.close_async()

    assert asyncio.run(use_then_close()) == Ok(None)
