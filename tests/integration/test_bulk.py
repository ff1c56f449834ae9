"""send_many against a real PostgreSQL: one COPY, all or nothing, one wake-up per batch."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from horsies import (
    AppConfig,
    Call,
    Err,
    Horsies,
    Ok,
    PostgresConfig,
    TaskError,
    TaskResult,
    TaskSendErrorCode,
)
from horsies.tasks.bulk import Batch
from horsies.tasks.send_types import canonical_send_json, enqueue_sha, enqueue_sha_many


def make_app(url: str) -> Horsies:
    return Horsies(AppConfig(broker=PostgresConfig(database_url=url)))


@pytest.fixture
def app(pg_url: str, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.delenv("HORSIES_DATABASE_URL", raising=False)
    application = make_app(pg_url)

    @application.task("add")
    def add(a: int, b: int = 0) -> TaskResult[int, TaskError]:
        return TaskResult(ok=a + b)

    yield application
    application.get_broker().close()


def count_rows(url: str) -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT count(*) FROM horsies_tasks").fetchone()
    assert row is not None
    return int(row[0])


def rows_by_id(url: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(url) as conn:
        return conn.execute(
            "SELECT id::text, args, kwargs, priority, good_until, enqueue_sha, sent_at, "
            "task_options, status, queue_name FROM horsies_tasks ORDER BY id"
        ).fetchall()


def assert_batch_written(url: str, handles: list[Any], n: int) -> None:
    ids = [h.task_id for h in handles]
    assert len(ids) == n and ids == sorted(ids) and len(set(ids)) == n
    rows = rows_by_id(url)
    assert [r[0] for r in rows] == ids
    # Input i was (i, i): the rows in id order are the inputs in input order.
    assert [r[1] for r in rows[:3]] == ["[0,0]", "[1,1]", "[2,2]"]
    assert rows[-1][1] == f"[{n - 1},{n - 1}]"
    assert len({r[6] for r in rows}) == 1  # one shared sent_at


# -- volume and order ----------------------------------------------------------------


def test_send_many_20000_in_input_order(app: Horsies, pg_url: str) -> None:
    sent = app.tasks["add"].send_many([(i, i) for i in range(20_000)])
    assert isinstance(sent, Ok)
    assert_batch_written(pg_url, sent.ok_value, 20_000)


def test_send_many_async_20000_in_input_order(app: Horsies, pg_url: str) -> None:
    sent = asyncio.run(app.tasks["add"].send_many_async((i, i) for i in range(20_000)))
    assert isinstance(sent, Ok)
    assert_batch_written(pg_url, sent.ok_value, 20_000)


def test_rows_carry_the_fingerprint_of_the_reference(app: Horsies, pg_url: str) -> None:
    sent = app.tasks["add"].send_many([(1, 2), Call(3, b=4), ("é\\\t\n", 0)])
    assert isinstance(sent, Ok)
    for _id, args, kwargs, priority, good_until, sha, sent_at, options, status, queue in (
        rows_by_id(pg_url)
    ):
        assert status == "PENDING" and queue == "default"
        assert sha == enqueue_sha(
            task_name="add", queue_name=queue, priority=priority, args_json=args,
            kwargs_json=kwargs, sent_at=sent_at, good_until=good_until,
            enqueue_delay_seconds=None, task_options=options,
        )
    assert [r[1] for r in rows_by_id(pg_url)][2] == '["é\\\\\\t\\n",0]'


# -- all or nothing ------------------------------------------------------------------


@pytest.mark.parametrize("bad", [[1, 2], (), ({1, 2}, 3), Call(1, c=3), (1, 2, 3), "ab"])
def test_invalid_item_fails_whole_batch(app: Horsies, pg_url: str, bad: Any) -> None:
    calls: list[Any] = [(i, i) for i in range(500)]
    calls.insert(321, bad)
    sent = app.tasks["add"].send_many(calls)
    assert isinstance(sent, Err)
    error = sent.err_value
    assert error.code is TaskSendErrorCode.VALIDATION_FAILED
    assert error.index == 321 and error.message.startswith("item 321:")
    assert error.task_id is None and error.payload is None
    assert count_rows(pg_url) == 0


def test_invalid_item_fails_whole_batch_async(app: Horsies, pg_url: str) -> None:
    calls: list[Any] = [(i, i) for i in range(100)]
    calls.insert(7, ({1}, 1))
    sent = asyncio.run(app.tasks["add"].send_many_async(calls))
    assert isinstance(sent, Err)
    assert sent.err_value.index == 7 and sent.err_value.message.startswith("item 7:")
    assert "args[0]" in sent.err_value.message
    assert count_rows(pg_url) == 0


def test_not_an_iterable_and_empty(app: Horsies, pg_url: str) -> None:
    for calls in ("ab", {"a": 1}, 5):
        sent = app.tasks["add"].send_many(calls)  # type: ignore[arg-type]
        assert isinstance(sent, Err) and sent.err_value.index is None
    assert app.tasks["add"].send_many([]) == Ok([])
    assert count_rows(pg_url) == 0


# -- calls, options ------------------------------------------------------------------


def test_call_and_task_call_with_keywords(app: Horsies, pg_url: str) -> None:
    add = app.tasks["add"]
    sent = add.send_many([Call(1, b=2), add.call(a=5), add.call(7, b=8), (9,)])
    assert isinstance(sent, Ok)
    got = [(r[1], r[2]) for r in rows_by_id(pg_url)]
    assert got == [("[1]", '{"b":2}'), (None, '{"a":5}'), ("[7]", '{"b":8}'), ("[9]", None)]


def test_with_options_applies_to_every_row(app: Horsies, pg_url: str) -> None:
    deadline = datetime.now(UTC) + timedelta(minutes=10)
    sent = app.tasks["add"].with_options(good_until=deadline, priority=7).send_many(
        [(i, i) for i in range(50)]
    )
    assert isinstance(sent, Ok)
    rows = rows_by_id(pg_url)
    assert len(rows) == 50
    assert {r[3] for r in rows} == {7}
    assert {r[4] for r in rows} == {deadline}
    assert all(f'"good_until":"{deadline.isoformat()}"' in r[7] for r in rows)


def test_bad_option_is_validation_failed(app: Horsies, pg_url: str) -> None:
    sent = app.tasks["add"].with_options(priority=0).send_many([(1, 1)])
    assert isinstance(sent, Err) and sent.err_value.index is None
    assert sent.err_value.code is TaskSendErrorCode.VALIDATION_FAILED


# -- transactional -------------------------------------------------------------------


def test_transactional_send_many_commit_and_rollback(app: Horsies, pg_url: str) -> None:
    add = app.tasks["add"]
    with psycopg.connect(pg_url) as conn:
        sent = add.with_options(connection=conn).send_many([(i, i) for i in range(100)])
        assert isinstance(sent, Ok) and len(sent.ok_value) == 100
        assert count_rows(pg_url) == 0  # another connection sees nothing yet
        assert sent.ok_value[0].info() == Ok(None)
        conn.commit()
    assert count_rows(pg_url) == 100

    with psycopg.connect(pg_url) as conn:
        sent = add.with_options(connection=conn).send_many([(1, 1)] * 10)
        assert isinstance(sent, Ok)
        conn.rollback()
    assert count_rows(pg_url) == 100


def test_transactional_send_many_async_commit_and_rollback(app: Horsies, pg_url: str) -> None:
    add = app.tasks["add"]

    async def scenario() -> None:
        async with await psycopg.AsyncConnection.connect(pg_url) as conn:
            async with conn.transaction():
                sent = await add.with_options(connection=conn).send_many_async(
                    [(i, i) for i in range(100)])
                assert isinstance(sent, Ok)
                assert count_rows(pg_url) == 0
            assert count_rows(pg_url) == 100
            with pytest.raises(RuntimeError):
                async with conn.transaction():
                    sent = await add.with_options(connection=conn).send_many_async([(1, 1)])
                    assert isinstance(sent, Ok)
                    raise RuntimeError("roll back")
            # Idle, not autocommit: the send opens the implicit transaction, never commits it.
            sent = await add.with_options(connection=conn).send_many_async([(2, 2)] * 5)
            assert isinstance(sent, Ok) and count_rows(pg_url) == 100
            await conn.rollback()
        assert count_rows(pg_url) == 100

    asyncio.run(scenario())


def test_transactional_failure_keeps_caller_transaction(
    app: Horsies, pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    add = app.tasks["add"]
    first = add.send_many([(1, 1)])
    assert isinstance(first, Ok)
    taken = first.ok_value[0].task_id
    with psycopg.connect(pg_url) as conn:
        conn.execute("CREATE TABLE marker (x int)")
        conn.execute("INSERT INTO marker VALUES (1)")
        # Force an id that exists: the COPY fails inside the library's savepoint.
        monkeypatch.setattr("horsies.tasks.bulk.new_task_ids", lambda n: [taken] * n)
        sent = add.with_options(connection=conn).send_many([(2, 2)])
        assert isinstance(sent, Err)
        error = sent.err_value
        assert error.code is TaskSendErrorCode.ENQUEUE_FAILED and not error.retryable
        assert error.task_ids == (taken,) and error.payload is None
        conn.commit()  # the caller's own work survives
    with psycopg.connect(pg_url) as conn:
        assert conn.execute("SELECT count(*) FROM marker").fetchone() == (1,)
    assert count_rows(pg_url) == 1


def test_sync_method_refuses_async_connection(app: Horsies, pg_url: str) -> None:
    async def scenario() -> Any:
        async with await psycopg.AsyncConnection.connect(pg_url) as conn:
            return app.tasks["add"].with_options(connection=conn).send_many([(1, 1)])

    sent = asyncio.run(scenario())
    assert isinstance(sent, Err) and sent.err_value.code is TaskSendErrorCode.VALIDATION_FAILED


# -- one wake-up per batch -----------------------------------------------------------


def test_batch_wakes_workers_once(app: Horsies, pg_url: str) -> None:
    app.get_broker().ensure_schema()
    with psycopg.connect(pg_url, autocommit=True) as listener:
        listener.execute("LISTEN task_new")
        listener.execute("LISTEN task_queue_default")
        sent = app.tasks["add"].send_many([(i, i) for i in range(1000)])
        assert isinstance(sent, Ok)
        got = [(n.channel, n.payload) for n in listener.notifies(timeout=1.0)]
    # One notification per statement (runs.md §5): on the queue's channel only.
    assert got == [("task_queue_default", "batch:1000")]


# -- the fingerprint shortcut is byte-identical to the reference ---------------------

_text = st.one_of(st.none(), st.text(max_size=30))
_when = st.datetimes(
    min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30),
    timezones=st.sampled_from([UTC, None]).map(lambda tz: tz or UTC)
    | st.timezones(),
)


@settings(max_examples=300, deadline=None)
@given(
    name=st.text(min_size=1, max_size=20),
    queue=st.text(min_size=1, max_size=20),
    priority=st.integers(1, 100),
    arguments=st.lists(st.tuples(_text, _text), min_size=1, max_size=5),
    sent_at=_when,
    good_until=st.none() | _when,
    delay=st.none() | st.integers(0, 10**6),
    options=_text,
)
def test_enqueue_sha_many_matches_enqueue_sha(
    name: str, queue: str, priority: int, arguments: list[tuple[str | None, str | None]],
    sent_at: datetime, good_until: datetime | None, delay: int | None, options: str | None,
) -> None:
    shared = dict(task_name=name, queue_name=queue, priority=priority, sent_at=sent_at,
                  good_until=good_until, enqueue_delay_seconds=delay, task_options=options)
    many = enqueue_sha_many(arguments=arguments, **shared)  # type: ignore[arg-type]
    assert many == [
        enqueue_sha(args_json=a, kwargs_json=k, **shared)  # type: ignore[arg-type]
        for a, k in arguments
    ]


def test_batch_ids_completed_for_errors() -> None:
    now = datetime.now(UTC)
    batch = Batch([("[1]", None)] * 12, ("t", "q", 1, now, None, "{}", 0))
    rows = batch.rows(chunk=5)
    first = next(rows)
    assert len(batch.ids) == 5 and first[0] == uuid.UUID(batch.ids[0]).bytes
    assert len(batch.complete().ids) == 12 and batch.ids == sorted(batch.ids)
    assert len(batch.shas) == 12


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(st.none(), st.text(), st.integers(-(2**63), 2**63 - 1)), max_size=9))
def test_canonical_json_is_the_stdlib_bytes(values: list[Any]) -> None:
    expected = json.dumps(values, separators=(",", ":"), ensure_ascii=True).encode("ascii")
    assert canonical_send_json(values) == expected


def test_del_character_is_escaped_on_both_paths() -> None:
    # orjson writes DEL raw; the canonical form (json.dumps, ensure_ascii) escapes it.
    assert canonical_send_json(["\x7f"]) == b'["\\u007f"]'
    assert canonical_send_json(["\x7f", "é"]) == b'["\\u007f","\\u00e9"]'
