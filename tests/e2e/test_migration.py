"""A database at schema v1, holding tasks in every state, migrated to v2 and served.

The database is built with migration step 1 alone, as a worker of the previous
release left it: tasks pending, claimed and running under a worker that died
(with its per-task heartbeats of v1), and finished ones with their attempt
rows. A v2 worker migrates it at start (runs.md §6) and serves every task.
"""

from __future__ import annotations

import secrets
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql

from horsies.db.schema import CURRENT_SCHEMA_VERSION
from horsies.sql import schema_steps
from tests.conftest import drop_database, with_database

REPO = Path(__file__).resolve().parents[2]
APP = "tests.integration.reliability_apps:app"
DEAD = "worker-of-v1"


@pytest.fixture
def v1_url(pg_server_url: str) -> Iterator[str]:
    name = f"horsies_v1_{secrets.token_hex(4)}"
    with psycopg.connect(pg_server_url, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    url = with_database(pg_server_url, name)
    try:
        with psycopg.connect(url) as conn:
            step1 = schema_steps()[0]
            assert step1.version == 1
            conn.execute(step1.sql)
            conn.execute("INSERT INTO horsies_schema_version (version) VALUES (1)")
        yield url
    finally:
        with psycopg.connect(pg_server_url, autocommit=True) as admin:
            drop_database(admin, name)


def insert(conn: psycopg.Connection[Any], status: str, **columns: Any) -> str:
    task_id = str(uuid.uuid4())
    values = {"id": task_id, "task_name": "plus", "queue_name": "default", "args": "[20, 22]",
              "enqueue_sha": "v1", "status": status, **columns}
    conn.execute(f"INSERT INTO horsies_tasks ({', '.join(values)}) "
                 f"VALUES ({', '.join(['%s'] * len(values))})", list(values.values()))
    return task_id


def v1_rows(url: str) -> dict[str, str]:
    """Tasks in every state, as v1 wrote them; returns label -> id."""
    long_ago = datetime.now(UTC) - timedelta(minutes=10)
    done = ('{"__task_result__":true,"ok":42,"err":null}')
    with psycopg.connect(url, autocommit=True) as conn:
        ids = {
            "pending": insert(conn, "PENDING"),
            "delayed": insert(conn, "PENDING", enqueued_at=datetime.now(UTC)
                              + timedelta(seconds=2)),
            "claimed": insert(conn, "CLAIMED", claimed=True, claimed_at=long_ago,
                              claimed_by_worker_id=DEAD,
                              claim_expires_at=datetime.now(UTC) + timedelta(hours=1)),
            "running": insert(conn, "RUNNING", claimed_at=long_ago, started_at=long_ago,
                              claimed_by_worker_id=DEAD, worker_pid=4242,
                              worker_hostname="old-host", worker_process_name="worker-4242"),
            "completed": insert(conn, "COMPLETED", completed_at=long_ago, result=done,
                                started_at=long_ago, claimed_by_worker_id=DEAD),
            "failed": insert(conn, "FAILED", failed_at=long_ago, error_code="BOOM",
                             result='{"__task_result__":true,"ok":null,"err":{'
                                    '"__task_error__":true,"error_code":"BOOM",'
                                    '"message":"no","data":null}}'),
            "cancelled": insert(conn, "CANCELLED"),
        }
        conn.execute("INSERT INTO horsies_task_attempts (task_id, attempt, outcome, "
                     "will_retry, started_at, finished_at, worker_id) "
                     "VALUES (%s, 1, 'COMPLETED', FALSE, %s, %s, %s)",
                     (ids["completed"], long_ago, long_ago, DEAD))
        # v1 runner heartbeats were per task; this one is old: the worker died
        conn.execute("INSERT INTO horsies_heartbeats (task_id, sender_id, role, sent_at) "
                     "VALUES (%s, %s, 'runner', %s)", (ids["running"], f"{DEAD}:4242",
                                                       long_ago))
    return ids


def statuses(url: str) -> dict[str, tuple[str, str | None]]:
    with psycopg.connect(url, autocommit=True) as conn:
        rows = conn.execute("SELECT id::text, status, error_code FROM horsies_tasks").fetchall()
    return {task_id: (status, code) for task_id, status, code in rows}


def test_a_v1_database_is_migrated_in_place_and_every_task_is_served(
    v1_url: str, worker_env: dict[str, str], start_worker: Any
) -> None:
    ids = v1_rows(v1_url)
    before = statuses(v1_url)
    env = {**worker_env, "HORSIES_DATABASE_URL": v1_url}
    status = subprocess.run([sys.executable, "-m", "horsies.cli", "db", "status",
                             "--database-url", v1_url], capture_output=True, text=True,
                            env=env, timeout=60)
    assert "v1" in status.stdout, status.stdout + status.stderr

    worker = start_worker([APP, "--processes=2"], env, cwd=REPO)
    worker.wait_for("Worker started")
    with psycopg.connect(v1_url) as conn:
        assert conn.execute("SELECT max(version) FROM horsies_schema_version").fetchone() == (
            CURRENT_SCHEMA_VERSION,)
        # rows kept, untouched by the migration itself
        kept = conn.execute("SELECT count(*) FROM horsies_tasks").fetchone()
        assert kept == (len(ids),)

    def served() -> bool:
        now = statuses(v1_url)
        return (now[ids["pending"]][0] == now[ids["delayed"]][0] == now[ids["claimed"]][0]
                == "COMPLETED" and now[ids["running"]][0] == "FAILED")

    worker.wait_for("Reaper recovered 1 stale RUNNING task(s)", timeout=60)
    for _ in range(600):
        if served():
            break
        time.sleep(0.1)
    after = statuses(v1_url)
    assert after[ids["running"]] == ("FAILED", "WORKER_CRASHED")
    for label in ("completed", "failed", "cancelled"):
        assert after[ids[label]] == before[ids[label]], label
    assert served(), after
    assert worker.stop() == 0

    status = subprocess.run([sys.executable, "-m", "horsies.cli", "db", "status",
                             "--database-url", v1_url], capture_output=True, text=True,
                            env=env, timeout=60)
    assert f"v{CURRENT_SCHEMA_VERSION}" in status.stdout, status.stdout + status.stderr
