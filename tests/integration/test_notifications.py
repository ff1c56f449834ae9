"""Notifications sent by horsies' own statements (runs.md §5).

One notification per statement and channel: a send announces its row on its
queue's channel, a bulk insert announces the batch once, a cycle names every
task it ended in `task_done` payloads of at most 200 ids, and rows that become
claimable again wake their queues. Nothing is sent by triggers, so a status
changed by hand with SQL announces nothing (test_schema.py).
"""

from __future__ import annotations

import secrets
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import psycopg
import pytest
from psycopg import sql

from horsies import Horsies
from horsies.sql import cycle_statement, queries
from horsies.worker.endings import Statement

SENTINEL = "horsies_test_sentinel"
CHANNELS = ("task_new", "task_queue_default", "horsies_task_status", "task_done")
WORKER = "cycle-test-worker"


class Listener:
    def __init__(self, url: str) -> None:
        self.conn = psycopg.connect(url, autocommit=True)
        for channel in (*CHANNELS, SENTINEL):
            self.conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(channel)))

    def collect(self, sender: psycopg.Connection[Any]) -> list[tuple[str, str]]:
        """Everything committed so far by `sender`, in delivery order."""
        token = secrets.token_hex(4)
        sender.execute("SELECT pg_notify(%s, %s)", (SENTINEL, token))
        got: list[tuple[str, str]] = []
        for note in self.conn.notifies(timeout=30):
            if note.channel == SENTINEL and note.payload == token:
                return got
            if note.channel != SENTINEL:
                got.append((note.channel, note.payload))
        raise AssertionError(f"sentinel not received; got {got}")


@pytest.fixture
def conn(pg_url: str) -> Iterator[psycopg.Connection[Any]]:
    with psycopg.connect(pg_url, autocommit=True) as c:
        yield c


@pytest.fixture
def listener(pg_url: str) -> Iterator[Listener]:
    lis = Listener(pg_url)
    yield lis
    lis.conn.close()


@pytest.fixture
def app(apps: Any) -> Horsies:
    app: Horsies = apps.app
    app.get_broker().ensure_schema()
    return app


# -- producers ---------------------------------------------------------------------


def test_a_send_announces_its_row_on_its_queue_only(
    app: Horsies, conn: psycopg.Connection[Any], listener: Listener
) -> None:
    handle = app.tasks["add"].send(1, 2).ok_value
    assert listener.collect(conn) == [("task_queue_default", handle.task_id)]


def test_a_delayed_send_and_a_replayed_send_announce_nothing(
    app: Horsies, conn: psycopg.Connection[Any], listener: Listener
) -> None:
    app.tasks["add"].schedule(60, 1, 2).ok_value
    assert listener.collect(conn) == []
    task_id = app.tasks["add"].send(1, 2).ok_value.task_id
    listener.collect(conn)
    conn.execute(queries["task_insert"], {
        "id": task_id, "task_name": "add", "queue_name": "default", "priority": 100,
        "args": None, "kwargs": None, "sent_at": datetime.now(UTC), "delay_seconds": 0, "good_until": None,
        "task_options": None, "max_retries": 0, "enqueue_sha": "x"})
    assert listener.collect(conn) == []  # ON CONFLICT DO NOTHING inserted nothing


def test_a_transactional_send_announces_at_commit_only(
    app: Horsies, pg_url: str, conn: psycopg.Connection[Any], listener: Listener
) -> None:
    with psycopg.connect(pg_url) as own:
        kept = app.tasks["add"].with_options(connection=own).send(1, 2).ok_value
        assert listener.collect(conn) == []
        own.commit()
        assert listener.collect(conn) == [("task_queue_default", kept.task_id)]
        app.tasks["add"].with_options(connection=own).send(3, 4).ok_value
        own.rollback()
    assert listener.collect(conn) == []


# -- a worker's cycle ------------------------------------------------------------------


def _running(conn: psycopg.Connection[Any], n: int, pid: int = 7) -> list[str]:
    ids = [str(uuid.uuid4()) for _ in range(n)]
    with conn.cursor().copy("COPY horsies_tasks (id, task_name, queue_name, enqueue_sha, "
                            "status, claimed_by_worker_id, worker_pid, started_at, run_seq) "
                            "FROM STDIN") as copy:
        for seq, task_id in enumerate(ids, 1):
            copy.write_row((task_id, "add", "default", "x", "RUNNING", WORKER, pid,
                            "2026-01-01T00:00:00Z", seq))
    return ids


def _cycle(conn: psycopg.Connection[Any], stmt: Statement) -> list[tuple[Any, ...]]:
    return conn.execute(cycle_statement(512),
                        stmt.params(WORKER, "host", ["default"])).fetchall()


def test_a_cycle_names_every_task_it_ended_in_payloads_of_at_most_200(
    conn: psycopg.Connection[Any], listener: Listener
) -> None:
    ids = _running(conn, 450)
    listener.collect(conn)
    stmt = Statement()
    for task_id in ids:
        stmt.complete(task_id, 7, '{"__task_result__":true,"ok":1,"err":null}', time.time())
    _cycle(conn, stmt)
    got = listener.collect(conn)
    done = [payload for channel, payload in got if channel == "task_done"]
    assert len(done) == 3 and all(len(p) <= 7_900 for p in done)
    assert sorted(i for p in done for i in p.split(",")) == sorted(ids)
    assert [c for c in got if c[0] != "task_done"] == [("horsies_task_status", "batch:450")]


def test_a_retry_is_not_an_end_and_a_failure_is(
    conn: psycopg.Connection[Any], listener: Listener
) -> None:
    retried, failed = _running(conn, 2)
    listener.collect(conn)
    stmt = Statement()
    stmt.fail(retried, 7, "{}", "X", "boom", None, 30.0, None)
    stmt.fail(failed, 7, "{}", "X", "boom", None, None, None)
    conn.execute("UPDATE horsies_tasks SET max_retries = 1 WHERE id = %s", (retried,))
    _cycle(conn, stmt)
    assert sorted(listener.collect(conn)) == [("horsies_task_status", "batch:2"),
                                              ("task_done", failed)]


def test_tasks_returned_unstarted_wake_their_queue(
    conn: psycopg.Connection[Any], listener: Listener
) -> None:
    ids = _running(conn, 3)
    listener.collect(conn)
    stmt = Statement()
    for task_id in ids:
        stmt.give_back(task_id, 7)
    _cycle(conn, stmt)
    assert sorted(listener.collect(conn)) == [("horsies_task_status", "batch:3"),
                                              ("task_new", "batch:3"),
                                              ("task_queue_default", "batch:3")]


def test_a_cycle_that_changes_nothing_announces_nothing(
    conn: psycopg.Connection[Any], listener: Listener
) -> None:
    (task_id,) = _running(conn, 1)
    listener.collect(conn)
    stmt = Statement()
    stmt.complete(task_id, 8, "{}", time.time())  # another child's task: guarded
    rows = _cycle(conn, stmt)
    assert ("Z", 0) in [(row[0], row[2]) for row in rows]
    assert listener.collect(conn) == []


# -- claims, expiry ------------------------------------------------------------------


def test_released_claims_wake_their_queue(
    app: Horsies, conn: psycopg.Connection[Any], listener: Listener
) -> None:
    ids = [app.tasks["add"].send(i, i).ok_value.task_id for i in range(2)]
    conn.execute("UPDATE horsies_tasks SET status = 'CLAIMED', claimed = TRUE, "
                 "claimed_at = now(), claimed_by_worker_id = %s, "
                 "claim_expires_at = now() + interval '1 minute'", (WORKER,))
    listener.collect(conn)
    conn.execute(queries["task_release_many"], {"ids": ids, "worker_id": WORKER})
    assert sorted(listener.collect(conn)) == [("task_new", "batch:2"),
                                              ("task_queue_default", "batch:2")]


def test_expired_pending_tasks_wake_their_waiters(
    app: Horsies, conn: psycopg.Connection[Any], listener: Listener
) -> None:
    task_id = app.tasks["add"].send(1, 2).ok_value.task_id
    conn.execute("UPDATE horsies_tasks SET good_until = now() - interval '1 second'")
    listener.collect(conn)
    assert conn.execute(queries["task_expire_pending"]).fetchone()[0] == 1
    assert listener.collect(conn) == [("task_done", task_id)]
