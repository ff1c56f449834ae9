"""Schema creation, versioning, constraints and notifications against a real PostgreSQL.

``pg_url`` is a clone of the template database, which already holds the
schema. Tests that need an empty database create their own PostgreSQL schema
inside that clone and point ``search_path`` at it, so initialization runs
from scratch there (everything horsies creates resolves through
``search_path``).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import secrets
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import psycopg
import pytest
from psycopg import errors, sql
from psycopg.conninfo import make_conninfo

from horsies.db.schema import (
    CURRENT_SCHEMA_VERSION,
    SCHEMA_LOCK_KEY,
    SchemaVersionError,
    ensure_schema_initialized,
    ensure_schema_initialized_async,
    read_schema_version,
    read_schema_version_async,
)
from horsies.errors import ErrorCode, HorsiesError
from horsies.sql import schema_sql

TERMINAL = ("COMPLETED", "FAILED", "CANCELLED", "EXPIRED")
SENTINEL = "horsies_test_sentinel"
CHANNELS = ("task_new", "task_queue_default", "task_queue_other", "horsies_task_status",
            "task_done", "horsies_worker_state")

TABLES = {"horsies_tasks", "horsies_task_attempts", "horsies_heartbeats",
          "horsies_worker_states", "horsies_schema_version", "horsies_child_marks",
          "horsies_schedule_state", "horsies_workflows", "horsies_workflow_tasks"}
INDEXES = {
    "horsies_tasks_pkey", "idx_horsies_tasks_claimable", "idx_horsies_tasks_lease",
    "idx_horsies_tasks_active", "idx_horsies_tasks_deadline",
    "idx_horsies_tasks_updated_brin", "idx_horsies_tasks_error_code",
    "horsies_task_attempts_pkey", "uq_horsies_task_attempts_task_attempt",
    "idx_horsies_task_attempts_error_code", "idx_horsies_task_attempts_finished_at",
    "horsies_heartbeats_pkey", "idx_horsies_heartbeats_sender_role_sent",
    "idx_horsies_heartbeats_sent_brin", "horsies_worker_states_pkey",
    "idx_horsies_worker_states_worker_snapshot", "idx_horsies_worker_states_snapshot_at",
    "horsies_schema_version_pkey", "horsies_child_marks_pkey", "horsies_schedule_state_pkey",
    "idx_horsies_schedule_state_next_run",
    "horsies_workflows_pkey", "idx_horsies_workflows_status", "idx_horsies_workflows_parent",
    "idx_horsies_workflows_root", "idx_horsies_workflows_updated",
    "idx_horsies_workflows_status_updated", "horsies_workflow_tasks_pkey",
    "uq_horsies_workflow_task_index", "idx_horsies_workflow_tasks_node_id",
    "idx_horsies_workflow_tasks_status", "idx_horsies_workflow_tasks_task_id",
    "idx_horsies_workflow_tasks_sub", "idx_horsies_workflow_tasks_deps",
}
TRIGGERS = {
    ("horsies_worker_states", "horsies_worker_state_notify_trigger",
     "horsies_notify_worker_state_change"),
    ("horsies_workflows", "horsies_workflow_notify_trigger", "horsies_notify_workflow_changes"),
}


# -- fixtures and helpers ---------------------------------------------------------


@pytest.fixture
def empty_conninfo(pg_url: str) -> str:
    """Conninfo of an empty PostgreSQL schema first on search_path (inside the clone)."""
    name = f"horsies_empty_{secrets.token_hex(4)}"
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(name)))
    return make_conninfo(pg_url, options=f"-c search_path={name}")


@pytest.fixture
def conn(pg_url: str) -> Iterator[psycopg.Connection[Any]]:
    with psycopg.connect(pg_url, autocommit=True) as c:
        yield c


def _catalog(conninfo: str) -> dict[str, Any]:
    """Names and oids of what horsies created in the first schema of search_path."""
    with psycopg.connect(conninfo, autocommit=True) as c:
        rels = c.execute(
            "SELECT c.relname, c.relkind, c.oid::int FROM pg_class c"
            " WHERE c.relnamespace = current_schema()::regnamespace"
        ).fetchall()
        triggers = c.execute(
            "SELECT t.tgrelid::regclass::text, t.tgname, p.proname, t.oid::int"
            " FROM pg_trigger t JOIN pg_proc p ON p.oid = t.tgfoid"
            " WHERE NOT t.tgisinternal AND p.pronamespace = current_schema()::regnamespace"
        ).fetchall()
        constraints = c.execute(
            "SELECT conname FROM pg_constraint"
            " WHERE connamespace = current_schema()::regnamespace"
        ).fetchall()
    return {
        "tables": {name for name, kind, _ in rels if kind == "r"},
        "indexes": {name for name, kind, _ in rels if kind == "i"},
        "rel_oids": {(name, oid) for name, _, oid in rels},
        "triggers": {(t, name, fn) for t, name, fn, _ in triggers},
        "trigger_oids": {oid for *_, oid in triggers},
        "constraints": {name for (name,) in constraints},
    }


def _version_rows(conninfo: str) -> list[tuple[int]]:
    with psycopg.connect(conninfo, autocommit=True) as c:
        return c.execute("SELECT version FROM horsies_schema_version ORDER BY 1").fetchall()


def _uuid7() -> uuid.UUID:
    ms = time.time_ns() // 1_000_000
    rand = int.from_bytes(secrets.token_bytes(10), "big")
    value = (ms << 80) | (0x7 << 76) | (((rand >> 62) & 0xFFF) << 64) | (0b10 << 62)
    return uuid.UUID(int=value | (rand & ((1 << 62) - 1)))


def _task(**overrides: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "id": _uuid7(), "task_name": "bench.add", "queue_name": "default", "args": "[1,2]",
        "enqueue_sha": hashlib.sha256(secrets.token_bytes(8)).hexdigest(),
    }
    row.update(overrides)
    return row


def _insert(c: psycopg.Connection[Any], *rows: dict[str, Any]) -> list[uuid.UUID]:
    """One multi-row INSERT statement (one transaction in autocommit mode)."""
    columns = list(dict.fromkeys(col for row in rows for col in row))
    values = sql.SQL(", ").join(
        sql.SQL("({})").format(sql.SQL(", ").join(
            sql.Placeholder() if col in row else sql.DEFAULT for col in columns
        ))
        for row in rows
    )
    query = sql.SQL("INSERT INTO horsies_tasks ({}) VALUES {}").format(
        sql.SQL(", ").join(map(sql.Identifier, columns)), values
    )
    c.execute(query, [row[col] for row in rows for col in columns if col in row])
    return [row["id"] for row in rows]


def _waiters(c: psycopg.Connection[Any]) -> int:
    row = c.execute(
        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
        " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
        " AND ((classid::bigint << 32) | objid::bigint) = %s",
        (SCHEMA_LOCK_KEY & 0xFFFFFFFFFFFFFFFF,),
    ).fetchone()
    assert row is not None
    return int(row[0])


def _wait_for(condition: Callable[[], bool], timeout: float = 30.0) -> None:
    end = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > end:
            raise AssertionError("condition not reached")
        time.sleep(0.02)


class Listener:
    """A LISTEN connection that collects notifications up to a sentinel."""

    def __init__(self, url: str) -> None:
        self.conn = psycopg.connect(url, autocommit=True)
        for channel in (*CHANNELS, SENTINEL):
            self.conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(channel)))

    def collect(self, sender: psycopg.Connection[Any]) -> list[tuple[str, str]]:
        """Everything committed by `sender` so far, in delivery order."""
        token = secrets.token_hex(4)
        sender.execute("SELECT pg_notify(%s, %s)", (SENTINEL, token))
        got: list[tuple[str, str]] = []
        for note in self.conn.notifies(timeout=30):
            if note.channel == SENTINEL and note.payload == token:
                return got
            if note.channel != SENTINEL:
                got.append((note.channel, note.payload))
        raise AssertionError(f"sentinel not received; got {got}")

    def close(self) -> None:
        self.conn.close()


@pytest.fixture
def listener(pg_url: str) -> Iterator[Listener]:
    lis = Listener(pg_url)
    yield lis
    lis.close()


# -- versioning and creation ------------------------------------------------------


def test_template_holds_the_current_version(pg_url: str) -> None:
    with psycopg.connect(pg_url) as c:
        assert read_schema_version(c) == CURRENT_SCHEMA_VERSION
        assert c.info.transaction_status == psycopg.pq.TransactionStatus.IDLE


def test_creates_every_object_once_then_is_a_no_op(empty_conninfo: str) -> None:
    with psycopg.connect(empty_conninfo) as c:
        assert read_schema_version(c) is None
        assert ensure_schema_initialized(c) == CURRENT_SCHEMA_VERSION
        assert c.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
        assert c.autocommit is False
    first = _catalog(empty_conninfo)
    assert first["tables"] == TABLES
    assert first["indexes"] == INDEXES
    assert first["triggers"] == TRIGGERS
    assert {"ck_horsies_task_attempts_outcome", "uq_horsies_task_attempts_task_attempt",
            "ck_horsies_tasks_status", "ck_horsies_tasks_priority"} <= first["constraints"]

    with psycopg.connect(empty_conninfo, autocommit=True) as c:
        assert ensure_schema_initialized(c) == CURRENT_SCHEMA_VERSION
        assert read_schema_version(c) == CURRENT_SCHEMA_VERSION
    second = _catalog(empty_conninfo)
    assert second == first  # fast path: not even the triggers were re-created
    assert _version_rows(empty_conninfo) == [(v,) for v in range(1, CURRENT_SCHEMA_VERSION + 1)]


def test_schema_script_itself_can_run_again(empty_conninfo: str) -> None:
    with psycopg.connect(empty_conninfo) as c:
        ensure_schema_initialized(c)
    before = _catalog(empty_conninfo)
    with psycopg.connect(empty_conninfo, autocommit=True) as c:
        c.execute("SET client_min_messages = warning")
        c.execute(schema_sql(), prepare=False)
        c.execute(schema_sql(), prepare=False)
    after = _catalog(empty_conninfo)
    assert after["rel_oids"] == before["rel_oids"]
    assert after["triggers"] == before["triggers"]
    assert after["constraints"] == before["constraints"]


def test_async_initialization(empty_conninfo: str) -> None:
    async def main() -> tuple[int | None, int, int, int | None]:
        async with await psycopg.AsyncConnection.connect(empty_conninfo) as ac:
            before = await read_schema_version_async(ac)
            first = await ensure_schema_initialized_async(ac)
            second = await ensure_schema_initialized_async(ac)
            after = await read_schema_version_async(ac)
            assert ac.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
            return before, first, second, after

    assert asyncio.run(main()) == (None, CURRENT_SCHEMA_VERSION, CURRENT_SCHEMA_VERSION,
                                   CURRENT_SCHEMA_VERSION)
    assert _catalog(empty_conninfo)["triggers"] == TRIGGERS


def test_concurrent_initialization_from_threads(empty_conninfo: str) -> None:
    results: list[int] = []
    failures: list[BaseException] = []

    def run() -> None:
        try:
            with psycopg.connect(empty_conninfo) as c:
                results.append(ensure_schema_initialized(c))
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            failures.append(exc)

    with psycopg.connect(empty_conninfo, autocommit=True) as holder:
        # Hold the lock so every thread is queued on it before any can proceed.
        holder.execute("SELECT pg_advisory_lock(%s)", (SCHEMA_LOCK_KEY,))
        threads = [threading.Thread(target=run) for _ in range(6)]
        for t in threads:
            t.start()
        _wait_for(lambda: _waiters(holder) == 6)
        holder.execute("SELECT pg_advisory_unlock(%s)", (SCHEMA_LOCK_KEY,))
        for t in threads:
            t.join(60)
    assert failures == []
    assert results == [CURRENT_SCHEMA_VERSION] * 6
    assert _version_rows(empty_conninfo) == [(v,) for v in range(1, CURRENT_SCHEMA_VERSION + 1)]
    assert _catalog(empty_conninfo)["triggers"] == TRIGGERS


_CHILD = """
import sys, psycopg
from horsies.db.schema import ensure_schema_initialized
with psycopg.connect(sys.argv[1]) as conn:
    print(ensure_schema_initialized(conn))
"""


def test_concurrent_initialization_from_processes(empty_conninfo: str) -> None:
    with psycopg.connect(empty_conninfo, autocommit=True) as holder:
        holder.execute("SELECT pg_advisory_lock(%s)", (SCHEMA_LOCK_KEY,))
        procs = [
            subprocess.Popen([sys.executable, "-c", _CHILD, empty_conninfo],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            for _ in range(4)
        ]
        try:
            _wait_for(lambda: _waiters(holder) == 4, timeout=60)
        finally:
            holder.execute("SELECT pg_advisory_unlock(%s)", (SCHEMA_LOCK_KEY,))
        outputs = [p.communicate(timeout=120) for p in procs]
    for proc, (out, err) in zip(procs, outputs):
        assert proc.returncode == 0, err
        assert out.strip() == str(CURRENT_SCHEMA_VERSION)
    assert _version_rows(empty_conninfo) == [(v,) for v in range(1, CURRENT_SCHEMA_VERSION + 1)]
    assert _catalog(empty_conninfo)["tables"] == TABLES


def test_refuses_a_newer_schema(pg_url: str) -> None:
    newer = CURRENT_SCHEMA_VERSION + 1
    with psycopg.connect(pg_url, autocommit=True) as c:
        c.execute("INSERT INTO horsies_schema_version (version) VALUES (%s)", (newer,))
        before = _catalog(pg_url)
        with pytest.raises(SchemaVersionError) as info:
            ensure_schema_initialized(c)
        assert c.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
        assert read_schema_version(c) == newer
    error = info.value
    assert isinstance(error, HorsiesError)
    assert error.message == (
        f"database schema v{newer} is newer than this horsies build supports "
        f"(v{CURRENT_SCHEMA_VERSION})"
    )
    assert error.code is ErrorCode.BROKER_INIT_FAILED
    assert error.retryable is False
    assert _catalog(pg_url) == before

    async def main() -> None:
        async with await psycopg.AsyncConnection.connect(pg_url) as ac:
            with pytest.raises(SchemaVersionError, match=f"v{newer} is newer"):
                await ensure_schema_initialized_async(ac)

    asyncio.run(main())


def test_refuses_a_non_versioned_horsies_schema(empty_conninfo: str) -> None:
    with psycopg.connect(empty_conninfo, autocommit=True) as c:
        c.execute("CREATE TABLE horsies_tasks (id varchar(36) PRIMARY KEY)")
        with pytest.raises(SchemaVersionError) as info:
            ensure_schema_initialized(c)
        assert "adopting an existing non-versioned horsies schema is not supported" in (
            info.value.message
        )
        assert info.value.retryable is False
        assert read_schema_version(c) is None
    # Rolled back: nothing else was created.
    assert _catalog(empty_conninfo)["tables"] == {"horsies_tasks"}


def test_version_table_without_rows_reapplies_idempotently(pg_url: str) -> None:
    with psycopg.connect(pg_url, autocommit=True) as c:
        c.execute("DELETE FROM horsies_schema_version")
        assert read_schema_version(c) is None
        assert ensure_schema_initialized(c) == CURRENT_SCHEMA_VERSION
    assert _version_rows(pg_url) == [(v,) for v in range(1, CURRENT_SCHEMA_VERSION + 1)]


def test_refuses_a_connection_inside_a_transaction(pg_url: str) -> None:
    with psycopg.connect(pg_url) as c:
        c.execute("SELECT 1")
        with pytest.raises(psycopg.ProgrammingError, match="not inside a transaction"):
            ensure_schema_initialized(c)
        # Reading is fine anywhere (a savepoint inside the caller's transaction).
        assert read_schema_version(c) == CURRENT_SCHEMA_VERSION


def test_works_with_a_dict_row_factory(empty_conninfo: str) -> None:
    from psycopg.rows import dict_row

    with psycopg.connect(empty_conninfo, row_factory=dict_row) as c:
        assert ensure_schema_initialized(c) == CURRENT_SCHEMA_VERSION
        assert read_schema_version(c) == CURRENT_SCHEMA_VERSION


def test_server_default_isolation_does_not_matter(empty_conninfo: str) -> None:
    with psycopg.connect(empty_conninfo, autocommit=True) as c:
        c.execute("SET default_transaction_isolation = 'serializable'")
        assert ensure_schema_initialized(c) == CURRENT_SCHEMA_VERSION
        row = c.execute("SHOW transaction_isolation").fetchone()
        assert row == ("serializable",)


# -- CHECK constraints and keys ---------------------------------------------------


_BAD_TASKS: list[tuple[dict[str, Any], str]] = [
    ({"status": "DONE"}, "ck_horsies_tasks_status"),
    ({"status": "pending"}, "ck_horsies_tasks_status"),
    ({"priority": 0}, "ck_horsies_tasks_priority"),
    ({"priority": 101}, "ck_horsies_tasks_priority"),
    ({"retry_count": -1}, "ck_horsies_tasks_retry_count"),
    ({"retry_count": 1, "max_retries": 0}, "ck_horsies_tasks_retry_count"),
    ({"max_retries": -1}, "ck_horsies_tasks_max_retries"),
    ({"claimed": True}, "ck_horsies_tasks_claimed"),
    ({"status": "CLAIMED", "claimed_by_worker_id": "w",
      "claim_expires_at": dt.datetime.now(dt.UTC)}, "ck_horsies_tasks_claimed"),
    ({"status": "CLAIMED", "claimed": True, "claimed_by_worker_id": "w"},
     "ck_horsies_tasks_claim_expires"),
    ({"claim_expires_at": dt.datetime.now(dt.UTC)}, "ck_horsies_tasks_claim_expires"),
    ({"status": "CLAIMED", "claimed": True, "claim_expires_at": dt.datetime.now(dt.UTC)},
     "ck_horsies_tasks_owner"),
    ({"status": "RUNNING", "claimed_by_worker_id": "w"}, "ck_horsies_tasks_started"),
    ({"completed_at": dt.datetime.now(dt.UTC)}, "ck_horsies_tasks_completed"),
    ({"status": "COMPLETED"}, "ck_horsies_tasks_completed"),
]


@pytest.mark.parametrize(("overrides", "constraint"), _BAD_TASKS)
def test_task_checks_refuse_bad_rows(
    conn: psycopg.Connection[Any], overrides: dict[str, Any], constraint: str
) -> None:
    with pytest.raises(errors.CheckViolation) as info:
        _insert(conn, _task(**overrides))
    assert info.value.diag.constraint_name == constraint


def test_task_good_rows_in_every_status(conn: psycopg.Connection[Any]) -> None:
    now = dt.datetime.now(dt.UTC)
    _insert(conn, _task())
    _insert(conn, _task(status="CLAIMED", claimed=True, claimed_by_worker_id="w",
                        claimed_at=now, claim_expires_at=now))
    _insert(conn, _task(status="RUNNING", claimed_by_worker_id="w", started_at=now))
    _insert(conn, _task(status="COMPLETED", completed_at=now, result="{}"))
    for status in ("FAILED", "EXPIRED"):
        _insert(conn, _task(status=status, failed_at=now, result="{}", error_code="X"))
    _insert(conn, _task(status="CANCELLED"))
    _insert(conn, _task(retry_count=3, max_retries=3, priority=1))


@pytest.mark.parametrize(
    ("column", "value"),
    [("task_name", None), ("queue_name", None), ("enqueue_sha", None), ("status", None),
     ("id", None), ("sent_at", None)],
)
def test_task_required_columns(conn: psycopg.Connection[Any], column: str, value: Any) -> None:
    with pytest.raises(errors.NotNullViolation):
        _insert(conn, _task(**{column: value}))


def test_task_id_is_unique_and_uuid(conn: psycopg.Connection[Any]) -> None:
    (task_id,) = _insert(conn, _task())
    with pytest.raises(errors.UniqueViolation):
        _insert(conn, _task(id=task_id))
    with pytest.raises(errors.InvalidTextRepresentation):
        _insert(conn, _task(id="not-a-uuid"))
    row = conn.execute("SELECT id::text FROM horsies_tasks WHERE id = %s", (task_id,)).fetchone()
    assert row == (str(task_id),)


def test_task_defaults_follow_the_initial_row(conn: psycopg.Connection[Any]) -> None:
    (task_id,) = _insert(conn, _task())
    row = conn.execute(
        "SELECT status, priority, retry_count, max_retries, claimed, sent_at IS NOT NULL,"
        " enqueued_at IS NOT NULL, created_at IS NOT NULL, updated_at IS NOT NULL,"
        " claimed_at, claim_expires_at, started_at, result, error_code"
        " FROM horsies_tasks WHERE id = %s",
        (task_id,),
    ).fetchone()
    assert row == ("PENDING", 100, 0, 0, False, True, True, True, True,
                   None, None, None, None, None)


def _attempt(task_id: uuid.UUID, **overrides: Any) -> dict[str, Any]:
    now = dt.datetime.now(dt.UTC)
    row = {"task_id": task_id, "attempt": 1, "outcome": "COMPLETED", "started_at": now,
           "finished_at": now}
    row.update(overrides)
    return row


def _insert_into(c: psycopg.Connection[Any], table: str, row: dict[str, Any]) -> None:
    c.execute(
        sql.SQL("INSERT INTO {} ({}) VALUES ({})").format(
            sql.Identifier(table),
            sql.SQL(", ").join(map(sql.Identifier, row)),
            sql.SQL(", ").join(sql.Placeholder() * len(row)),
        ),
        list(row.values()),
    )


def test_attempt_constraints(conn: psycopg.Connection[Any]) -> None:
    (task_id,) = _insert(conn, _task())
    for outcome in ("COMPLETED", "FAILED", "WORKER_FAILURE"):
        _insert_into(conn, "horsies_task_attempts",
                     _attempt(task_id, attempt={"COMPLETED": 1, "FAILED": 2}.get(outcome, 3),
                              outcome=outcome))
    with pytest.raises(errors.CheckViolation) as info:
        _insert_into(conn, "horsies_task_attempts", _attempt(task_id, attempt=9, outcome="OK"))
    assert info.value.diag.constraint_name == "ck_horsies_task_attempts_outcome"
    with pytest.raises(errors.CheckViolation) as info:
        _insert_into(conn, "horsies_task_attempts", _attempt(task_id, attempt=0))
    assert info.value.diag.constraint_name == "ck_horsies_task_attempts_attempt"
    with pytest.raises(errors.UniqueViolation) as uinfo:
        _insert_into(conn, "horsies_task_attempts", _attempt(task_id, attempt=1))
    assert uinfo.value.diag.constraint_name == "uq_horsies_task_attempts_task_attempt"
    with pytest.raises(errors.ForeignKeyViolation):
        _insert_into(conn, "horsies_task_attempts", _attempt(uuid.uuid4()))
    with pytest.raises(errors.GeneratedAlways):
        _insert_into(conn, "horsies_task_attempts", _attempt(task_id, attempt=5, id=1))
    # Attempts go with their task.
    conn.execute("DELETE FROM horsies_tasks WHERE id = %s", (task_id,))
    row = conn.execute("SELECT count(*) FROM horsies_task_attempts").fetchone()
    assert row == (0,)


def test_heartbeat_constraints(conn: psycopg.Connection[Any]) -> None:
    for role in ("claimer", "runner"):
        _insert_into(conn, "horsies_heartbeats",
                     {"task_id": uuid.uuid4(), "sender_id": "w", "role": role})
    with pytest.raises(errors.CheckViolation) as info:
        _insert_into(conn, "horsies_heartbeats",
                     {"task_id": uuid.uuid4(), "sender_id": "w", "role": "reaper"})
    assert info.value.diag.constraint_name == "ck_horsies_heartbeats_role"


def _worker_state(**overrides: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "worker_id": str(uuid.uuid4()), "hostname": "h", "pid": 1, "processes": 2,
        "max_claim_batch": 2, "max_claim_per_worker": 2, "queues": ["default"],
        "worker_started_at": dt.datetime.now(dt.UTC),
    }
    row.update(overrides)
    return row


def test_worker_state_constraints(conn: psycopg.Connection[Any]) -> None:
    for lifecycle in ("RUNNING", "DRAINING", "STOPPED"):
        _insert_into(conn, "horsies_worker_states", _worker_state(lifecycle=lifecycle))
    with pytest.raises(errors.CheckViolation) as info:
        _insert_into(conn, "horsies_worker_states", _worker_state(lifecycle="DEAD"))
    assert info.value.diag.constraint_name == "ck_horsies_worker_states_lifecycle"
    with pytest.raises(errors.NotNullViolation):
        _insert_into(conn, "horsies_worker_states", _worker_state(queues=None))


# -- notifications ------------------------------------------------------------------
# Sent by horsies' own statements (tests/integration/test_notifications.py); the
# schema keeps only the worker-state trigger.


def test_a_status_change_made_by_hand_notifies_nothing(
    conn: psycopg.Connection[Any], listener: Listener
) -> None:
    (task_id,) = _insert(conn, _task())
    conn.execute("UPDATE horsies_tasks SET status = 'EXPIRED', error_code = 'X', result = '{}',"
                 " failed_at = now() WHERE id = %s", (task_id,))
    assert listener.collect(conn) == []


def test_worker_state_notifications(conn: psycopg.Connection[Any], listener: Listener) -> None:
    row = _worker_state()
    _insert_into(conn, "horsies_worker_states", row)
    assert listener.collect(conn) == [("horsies_worker_state", row["worker_id"])]
    conn.execute("UPDATE horsies_worker_states SET tasks_running = 1 WHERE worker_id = %s",
                 (row["worker_id"],))
    assert listener.collect(conn) == [("horsies_worker_state", row["worker_id"])]


# -- indexes serve their queries ----------------------------------------------------


def test_claim_query_uses_the_claimable_index_without_sorting(
    conn: psycopg.Connection[Any],
) -> None:
    later = dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)
    with conn.transaction(), conn.cursor().copy(
        "COPY horsies_tasks (id, task_name, queue_name, priority, enqueue_sha, status,"
        " completed_at, enqueued_at) FROM STDIN"
    ) as copy:
        now = dt.datetime.now(dt.UTC)
        for i in range(3000):
            done = i % 3 == 0
            copy.write_row((_uuid7(), "t", "default" if i % 2 else "other", 1 + i % 100,
                            "x", "COMPLETED" if done else "PENDING",
                            now if done else None, later if i % 7 == 0 else now))
    conn.execute("ANALYZE horsies_tasks")
    plan = "\n".join(row[0] for row in conn.execute(
        "EXPLAIN SELECT id FROM horsies_tasks"
        " WHERE status = 'PENDING' AND queue_name = %s"
        "   AND enqueued_at <= statement_timestamp()"
        "   AND (next_retry_at IS NULL OR next_retry_at <= statement_timestamp())"
        "   AND (good_until IS NULL OR good_until > statement_timestamp())"
        " ORDER BY priority, enqueued_at, id LIMIT 50 FOR UPDATE SKIP LOCKED",
        ("default",),
    ).fetchall())
    assert "idx_horsies_tasks_claimable" in plan, plan
    assert "Sort" not in plan, plan


# -- footprint (W5) ----------------------------------------------------------------


def test_footprint_of_finished_tasks(conn: psycopg.Connection[Any]) -> None:
    """20,000 W3-shaped tasks started and completed by the worker's own cycle statement.

    The figures are printed (run with ``-s``); the assertion guards the size of
    the tables right after the drain, as workload W5 measures it.
    """
    from horsies.sql import cycle_statement, queries
    from horsies.worker.endings import Statement

    n, run = 20_000, 256
    worker = str(uuid.uuid4())
    result = '{"__task_result__":true,"ok":3,"err":null}'
    with conn.transaction(), conn.cursor().copy(
        "COPY horsies_tasks (id, task_name, queue_name, priority, args, enqueue_sha,"
        " sent_at, enqueued_at) FROM STDIN"
    ) as copy:
        now = dt.datetime.now(dt.UTC)
        for _ in range(n):
            task_id = _uuid7()
            copy.write_row((task_id, "bench.add", "default", 100, "[1,2]",
                            hashlib.sha256(task_id.bytes).hexdigest(), now, now))
    seq = 0
    started: list[tuple[str, int]] = []
    while True:
        stmt = Statement()
        for task_id, pid in started:
            stmt.complete(task_id, pid, result, time.time())
        for k in range(run):
            seq += 1
            stmt.slot_pids.append(4242 + k % 2)
            stmt.slot_seqs.append(seq)
        rows = conn.execute(cycle_statement(512),
                            stmt.params(worker, "bench-host", ["default"])).fetchall()
        started = [(row[3], row[1]) for row in rows if row[0] == "S"]
        if not started:
            break

    def per_task() -> dict[str, float]:
        sizes = {}
        for table in ("horsies_tasks", "horsies_task_attempts", "horsies_heartbeats"):
            row = conn.execute("SELECT pg_total_relation_size(%s)", (table,)).fetchone()
            assert row is not None
            sizes[table] = row[0] / n
        sizes["total"] = sum(sizes.values())
        return sizes

    row = conn.execute(
        "SELECT count(*) FROM horsies_tasks WHERE status = 'COMPLETED'").fetchone()
    assert row == (n,)
    after_run = per_task()
    conn.execute("VACUUM horsies_tasks, horsies_task_attempts")
    after_vacuum = per_task()
    conn.execute("VACUUM FULL horsies_tasks, horsies_task_attempts")
    compact = per_task()
    for label, sizes in (("after the run", after_run), ("after VACUUM", after_vacuum),
                         ("after VACUUM FULL", compact)):
        print(f"\nW5 footprint {label}: " + ", ".join(
            f"{name}={value:.0f} B/task" for name, value in sizes.items()))
    assert compact["total"] <= 500
