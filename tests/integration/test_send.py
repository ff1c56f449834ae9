"""Sending against a real PostgreSQL: rows written, errors returned as values."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest

from horsies import (
    AppConfig,
    Err,
    Horsies,
    Ok,
    PostgresConfig,
    RetrievalCode,
    TaskError,
    TaskResult,
    TaskSendErrorCode,
)


def make_app(url: str, **broker: Any) -> Horsies:
    return Horsies(AppConfig(broker=PostgresConfig(database_url=url, **broker)))


@pytest.fixture
def app(pg_url: str, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.delenv("HORSIES_DATABASE_URL", raising=False)
    application = make_app(pg_url)

    @application.task("add")
    def add(a: int, b: int) -> TaskResult[int, TaskError]:
        return TaskResult(ok=a + b)

    yield application
    application.get_broker().close()


def row_of(url: str, task_id: str) -> tuple[Any, ...] | None:
    with psycopg.connect(url) as conn:
        return conn.execute(
            "SELECT task_name, queue_name, priority, args, kwargs, status, max_retries, "
            "enqueue_sha, good_until FROM horsies_tasks WHERE id = %s", (task_id,)
        ).fetchone()


def test_send_writes_one_pending_row(app: Horsies, pg_url: str) -> None:
    sent = app.tasks["add"].send(2, b=3)
    assert isinstance(sent, Ok)
    row = row_of(pg_url, sent.ok_value.task_id)
    assert row is not None
    name, queue, priority, args, kwargs, status, max_retries, sha, good_until = row
    assert (name, queue, priority, status, max_retries) == ("add", "default", 100, "PENDING", 0)
    assert (args, kwargs) == ("[2]", '{"b":3}')
    assert len(sha) == 64 and good_until is None


def test_send_async_writes_row(app: Horsies, pg_url: str) -> None:
    import asyncio

    sent = asyncio.run(app.tasks["add"].send_async(1, 1))
    assert sent.is_ok()
    assert row_of(pg_url, sent.ok_value.task_id) is not None


def test_unserializable_argument_is_validation_failed(app: Horsies, pg_url: str) -> None:
    sent = app.tasks["add"].send({1, 2}, 3)
    assert isinstance(sent, Err)
    error = sent.err_value
    assert error.code is TaskSendErrorCode.VALIDATION_FAILED
    assert error.task_id is None and error.payload is None and not error.retryable
    assert "args[0]" in error.message


def test_naive_good_until_is_validation_failed(app: Horsies) -> None:
    naive = datetime.now() + timedelta(minutes=5)  # noqa: DTZ005 - the point of the test
    sent = app.tasks["add"].with_options(good_until=naive).send(1, 2)
    assert isinstance(sent, Err)
    assert sent.err_value.code is TaskSendErrorCode.VALIDATION_FAILED
    assert "timezone-aware" in sent.err_value.message


def test_aware_good_until_and_priority_are_stored(app: Horsies, pg_url: str) -> None:
    deadline = datetime.now(UTC) + timedelta(minutes=5)
    sent = app.tasks["add"].with_options(good_until=deadline, priority=7).send(1, 2)
    row = row_of(pg_url, sent.ok_value.task_id)
    assert row is not None and row[2] == 7 and row[8] == deadline


def test_arguments_that_do_not_bind(app: Horsies) -> None:
    sent = app.tasks["add"].send(1, 2, 3)
    assert isinstance(sent, Err)
    assert sent.err_value.code is TaskSendErrorCode.VALIDATION_FAILED
    assert "too many positional arguments" in sent.err_value.message


def test_unreachable_database_is_enqueue_failed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HORSIES_DATABASE_URL", raising=False)
    app = make_app("postgresql://nobody@127.0.0.1:1/none", pool_timeout=2)

    @app.task("noop")
    def noop() -> TaskResult[None, TaskError]:
        return TaskResult(ok=None)

    started = time.monotonic()
    sent = noop.send()
    elapsed = time.monotonic() - started
    app.get_broker().close()
    assert isinstance(sent, Err)
    error = sent.err_value
    assert error.code is TaskSendErrorCode.ENQUEUE_FAILED
    assert error.retryable and error.task_id is not None and error.payload is not None
    assert elapsed < 2 + 5  # the pool timeout, plus slack for the connect attempt


def test_retry_send_replays_the_same_id(app: Horsies, pg_url: str) -> None:
    down = make_app("postgresql://nobody@127.0.0.1:1/none", pool_timeout=1)

    @down.task("add")
    def add(a: int, b: int) -> TaskResult[int, TaskError]:
        return TaskResult(ok=a + b)

    failed = add.send(4, 5)
    down.get_broker().close()
    assert isinstance(failed, Err)
    replayed = app.tasks["add"].retry_send(failed.err_value)
    assert isinstance(replayed, Ok)
    assert replayed.ok_value.task_id == failed.err_value.task_id
    again = app.tasks["add"].retry_send(failed.err_value)  # committed already: same id, Ok
    assert again.ok_value.task_id == failed.err_value.task_id
    with psycopg.connect(pg_url) as conn:
        count = conn.execute("SELECT count(*) FROM horsies_tasks").fetchone()[0]
    assert count == 1


def test_get_without_worker_times_out(app: Horsies) -> None:
    handle = app.tasks["add"].send(1, 2).ok_value
    started = time.monotonic()
    result = handle.get(timeout_ms=300)
    assert time.monotonic() - started >= 0.3
    assert result.is_err()
    assert result.err_value.error_code == RetrievalCode.WAIT_TIMEOUT
    assert result.err_value.data == {"task_id": handle.task_id, "timeout_ms": 300}


def test_get_unknown_task_is_not_found(app: Horsies) -> None:
    from horsies import TaskHandle

    result = TaskHandle("0190f1a2-0000-7000-8000-000000000000", app, broker_mode=True).get()
    assert result.err_value.error_code == RetrievalCode.TASK_NOT_FOUND
    assert TaskHandle("not-a-uuid", app, broker_mode=True).get().err_value.error_code == (
        RetrievalCode.TASK_NOT_FOUND
    )


def test_get_returns_result_written_by_another_connection(app: Horsies, pg_url: str) -> None:
    handle = app.tasks["add"].send(1, 2).ok_value
    stored = '{"__task_result__":true,"ok":3,"err":null}'

    import threading

    def finish() -> None:
        time.sleep(0.3)
        with psycopg.connect(pg_url, autocommit=True) as conn:
            conn.execute(
                "UPDATE horsies_tasks SET status='COMPLETED', completed_at=now(), result=%s "
                "WHERE id=%s", (stored, handle.task_id))

    threading.Thread(target=finish).start()
    result = handle.get(timeout_ms=10_000)
    assert result.is_ok() and result.ok_value == 3


def test_send_many_keeps_input_order(app: Horsies, pg_url: str) -> None:
    sent = app.tasks["add"].send_many([(i, i) for i in range(500)])
    assert isinstance(sent, Ok)
    ids = [h.task_id for h in sent.ok_value]
    assert ids == sorted(ids)
    with psycopg.connect(pg_url) as conn:
        rows = conn.execute("SELECT id::text, args FROM horsies_tasks ORDER BY id").fetchall()
    assert [r[0] for r in rows] == ids
    assert rows[7][1] == "[7,7]"


def test_send_many_invalid_item_writes_nothing(app: Horsies, pg_url: str) -> None:
    sent = app.tasks["add"].send_many([(1, 2), (3, {4})])
    assert isinstance(sent, Err)
    assert sent.err_value.index == 1 and sent.err_value.message.startswith("item 1:")
    with psycopg.connect(pg_url) as conn:
        assert conn.execute("SELECT count(*) FROM horsies_tasks").fetchone()[0] == 0


def test_transactional_send_exists_only_after_commit(app: Horsies, pg_url: str) -> None:
    with psycopg.connect(pg_url) as conn:
        with conn.transaction():
            sent = app.tasks["add"].with_options(connection=conn).send(1, 2)
            task_id = sent.ok_value.task_id
            assert row_of(pg_url, task_id) is None  # invisible to others before commit
        assert row_of(pg_url, task_id) is not None
        with conn.transaction(force_rollback=True):
            gone = app.tasks["add"].with_options(connection=conn).send(1, 2).ok_value.task_id
        assert row_of(pg_url, gone) is None


def test_transactional_send_on_an_idle_connection_waits_for_the_callers_commit(
    app: Horsies, pg_url: str
) -> None:
    # psycopg would give a bare transaction() block on an idle connection its own
    # COMMIT; the send must join the caller's implicit transaction instead.
    with psycopg.connect(pg_url) as conn:
        task_id = app.tasks["add"].with_options(connection=conn).send(1, 2).ok_value.task_id
        assert row_of(pg_url, task_id) is None
        conn.commit()
        assert row_of(pg_url, task_id) is not None
        gone = app.tasks["add"].with_options(connection=conn).send(3, 4).ok_value.task_id
        conn.rollback()
        assert row_of(pg_url, gone) is None


def test_transactional_send_async_on_an_idle_connection(app: Horsies, pg_url: str) -> None:
    import asyncio

    async def scenario() -> tuple[bool, bool]:
        async with await psycopg.AsyncConnection.connect(pg_url) as conn:
            sent = await app.tasks["add"].with_options(connection=conn).send_async(1, 2)
            task_id = sent.ok_value.task_id
            before = row_of(pg_url, task_id) is not None
            await conn.commit()
            return before, row_of(pg_url, task_id) is not None

    assert asyncio.run(scenario()) == (False, True)
