"""Bad input on the send paths against a real PostgreSQL: an error value, no row written.

Each case hands one bad input to a send entry point, then checks that the
tasks table is still empty and that the same task still sends normally, so a
bad input neither writes a partial batch nor breaks the app or the caller's
transaction.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any

import psycopg
import pytest

from horsies import (
    AppConfig,
    Call,
    Err,
    Horsies,
    Ok,
    PostgresConfig,
    TaskError,
    TaskResult,
    TaskSendError,
    TaskSendErrorCode,
)

INVALID = TaskSendErrorCode.VALIDATION_FAILED


def add(a: int, b: int = 0) -> TaskResult[int, TaskError]:
    return TaskResult(ok=a + b)


@pytest.fixture
def app(pg_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Horsies]:
    monkeypatch.delenv("HORSIES_DATABASE_URL", raising=False)
    monkeypatch.delenv("HORSIES_SUPPRESS_SENDS", raising=False)
    application = Horsies(AppConfig(broker=PostgresConfig(database_url=pg_url)))
    application.task("add", add)
    yield application
    application.get_broker().close()


def task_count(url: str) -> int:
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute("SELECT count(*) FROM horsies_tasks").fetchone()
    assert row is not None
    return int(row[0])


def run(coro: Any) -> Any:
    return asyncio.run(coro)


# Each case: (send entry point applied to the task, fragment of the error message).
Case = Callable[[Any], Any]
CASES: dict[str, tuple[Case, str]] = {
    "priority 0": (lambda t: t.with_options(priority=0).send(1), "priority"),
    "naive good_until (async)": (
        lambda t: run(t.with_options(good_until=datetime(2030, 1, 1)).send_async(1)),
        "good_until",
    ),
    "negative delay": (lambda t: t.schedule(-1, 1), "delay"),
    "delay past the year 9999": (lambda t: t.schedule(10**12, 1), "year 10000"),
    "delay of 2**64 (async)": (lambda t: run(t.schedule_async(2**64, 1)), "year 10000"),
    "NaN argument": (lambda t: t.send(math.nan), "Non-finite float at args[0]"),
    "unknown keyword": (lambda t: t.send(1, c=2), "c"),
    "bulk, last item unencodable": (
        lambda t: t.send_many([(1,), (2, 3), Call(4, b=2**64)]),
        'item 2: Integer out of range at kwargs["b"]',
    ),
    "bulk, last item a list (async)": (
        lambda t: run(t.send_many_async([(1,), (2,), [3]])), "item 2: ",
    ),
    "replay of a validation error": (
        lambda t: t.retry_send(t.send(math.inf).err_value), "ENQUEUE_FAILED",
    ),
}


def check_case(task: Any, url: str, send: Case, fragment: str) -> str | None:
    """What went wrong with one case, or None."""
    before = task_count(url)
    result = send(task)
    if not isinstance(result, Err) or not isinstance(result.err_value, TaskSendError):
        return f"not a send error: {result!r}"
    error = result.err_value
    if (error.code, error.retryable, error.task_id) != (INVALID, False, None):
        return f"wrong error: {error.code} retryable={error.retryable} id={error.task_id}"
    if fragment not in error.message:
        return f"message {error.message!r} lacks {fragment!r}"
    if task_count(url) != before:
        return "a row was written"
    if not isinstance(task.send(1, 2), Ok) or task_count(url) != before + 1:
        return "the next valid send failed"
    return None


def test_bad_input_writes_nothing(app: Horsies, pg_url: str) -> None:
    # One database for the whole table: cloning one per case costs more than the cases.
    task = app.tasks["add"]
    problems = {name: problem for name, (send, fragment) in CASES.items()
                if (problem := check_case(task, pg_url, send, fragment)) is not None}
    assert problems == {}
    assert task_count(pg_url) == len(CASES)  # only the valid sends


def test_bad_transactional_sends_leave_the_callers_transaction_usable(
    app: Horsies, pg_url: str
) -> None:
    task = app.tasks["add"]
    with psycopg.connect(pg_url) as conn:
        conn.execute("CREATE TABLE caller_rows (n int)")
        conn.commit()
        conn.execute("INSERT INTO caller_rows VALUES (1)")
        bad = [
            task.with_options(connection=conn, priority=101).send(1),
            task.with_options(connection=conn).send_many([(1,), (2,), ("x", 1, 2)]),
            task.with_options(connection=conn).schedule(10**12, 1),
        ]
        for result in bad:
            assert isinstance(result, Err) and result.err_value.code is INVALID, result
        good = task.with_options(connection=conn).send(5)
        assert isinstance(good, Ok)
        conn.commit()
        assert conn.execute("SELECT count(*) FROM caller_rows").fetchone() == (1,)
    assert task_count(pg_url) == 1  # only the good send


def test_closed_connection_is_refused_without_writing(app: Horsies, pg_url: str) -> None:
    conn = psycopg.connect(pg_url)
    conn.close()
    task = app.tasks["add"]
    for result in (task.with_options(connection=conn).send(1),
                   task.with_options(connection=conn).send_many([(1,)])):
        assert isinstance(result, Err) and "connection is closed" in result.err_value.message
    assert task_count(pg_url) == 0
