"""Paths a user takes that no notification announces, and sends at import time.

- a delayed task becomes claimable without any notification: the fallback poll
  must start it on an idle worker;
- a row written without its notification (a missed NOTIFY, another tool) is
  found by the same poll;
- a module that sends at import time, started as the worker's app, enqueues
  nothing from any of the worker's processes;
- a queue whose name is not an SQL identifier is served, and a capped worker
  takes its next task when one ends, without waiting for its poll.
"""

from __future__ import annotations

import random
import time
import uuid
from pathlib import Path
from typing import Any

import msgspec
import psycopg
import pytest

from horsies import Horsies, PostgresConfig, TaskHandle, TaskResult
from tests.integration import user_paths_apps

REPO = Path(__file__).resolve().parents[2]
# Generous bounds: without the poll the tasks below never start at all.
SLACK_S = 15


def _point(app: Horsies, url: str) -> Horsies:
    """The test app, its settings kept, pointed at this test's database."""
    app.config = msgspec.structs.replace(app.config, broker=PostgresConfig(database_url=url))
    app._broker = None
    return app


@pytest.fixture
def polled(pg_url: str) -> Any:
    app = _point(user_paths_apps.polled, pg_url)
    yield user_paths_apps
    app.get_broker().close()
    app._broker = None


def _idle_worker(start_worker: Any, env: dict[str, str], locator: str) -> Any:
    worker = start_worker([locator, "--processes=1"], env, cwd=REPO)
    worker.wait_for("Worker started")
    return worker


def test_delayed_task_starts_on_an_idle_worker(
    polled: Any, worker_env: dict[str, str], start_worker: Any
) -> None:
    worker = _idle_worker(start_worker, worker_env,
                          "tests.integration.user_paths_apps:polled")
    handle = polled.polled_add.schedule(3, 20, 22).ok_value
    result = handle.get(timeout_ms=(3 + polled.POLL_MS / 1000 + SLACK_S) * 1000)
    assert result.ok_value == 42
    assert worker.stop() == 0


def test_row_inserted_without_a_notification_is_found_by_the_poll(
    polled: Any, pg_url: str, worker_env: dict[str, str], start_worker: Any
) -> None:
    worker = _idle_worker(start_worker, worker_env,
                          "tests.integration.user_paths_apps:polled")
    task_id = str(uuid.uuid4())
    with psycopg.connect(pg_url) as conn, conn.transaction():
        # Triggers off for this transaction: the row arrives unannounced, as
        # when a NOTIFY is lost while the worker's listener reconnects.
        conn.execute("SET LOCAL session_replication_role = replica")
        conn.execute(
            "INSERT INTO horsies_tasks (id, task_name, queue_name, args, enqueue_sha) "
            "VALUES (%s, 'polled_add', 'default', '[1,2]', 'inserted-by-hand')", (task_id,))
    handle: Any = TaskHandle(task_id, polled.polled, broker_mode=True)
    result = handle.get(timeout_ms=(polled.POLL_MS / 1000 + SLACK_S) * 1000)
    assert result.ok_value == 3
    assert worker.stop() == 0


def test_a_send_during_a_cycle_that_found_nothing_is_not_lost(
    pg_url: str, worker_env: dict[str, str], start_worker: Any
) -> None:
    """Pairs of sends a moment apart: the second often commits while the cycle
    that starts the first is in flight and has already looked for more work.
    Its notification must still start it: the poll is five minutes away."""
    app = _point(user_paths_apps.unpolled, pg_url)
    try:
        worker = _idle_worker(start_worker, worker_env,
                              "tests.integration.user_paths_apps:unpolled")
        pace = random.Random(7)
        for i in range(150):
            first = user_paths_apps.unpolled_add.send(i, 0).ok_value
            time.sleep(pace.uniform(0, 0.003))
            second = user_paths_apps.unpolled_add.send(i, 1).ok_value
            assert first.get(timeout_ms=30_000).ok_value == i
            assert second.get(timeout_ms=30_000).ok_value == i + 1, f"pair {i}"
        assert worker.stop() == 0
    finally:
        app.get_broker().close()
        app._broker = None


SENDS_AT_IMPORT = '''
import os
from horsies import AppConfig, Horsies, PostgresConfig, TaskError, TaskResult

app = Horsies(AppConfig(broker=PostgresConfig(database_url="postgresql://unused@localhost/x")))


@app.task("noted")
def noted() -> TaskResult[int, TaskError]:
    return TaskResult(ok=1)


outcome = noted.send()
code = outcome.err_value.code.value if outcome.is_err() else "ENQUEUED"
with open(os.environ["IMPORT_LEDGER"], "a") as ledger:
    ledger.write(f"{os.getpid()} {code}\\n")
'''


def test_send_at_import_in_the_app_module_is_suppressed_in_every_process(
    pg_url: str, worker_env: dict[str, str], start_worker: Any, tmp_path: Path
) -> None:
    module = tmp_path / "sends_at_import.py"
    module.write_text(SENDS_AT_IMPORT)
    ledger = tmp_path / "ledger.txt"
    env = {**worker_env, "IMPORT_LEDGER": str(ledger)}
    worker = start_worker([f"{module}:app", "--processes=2"], env, cwd=tmp_path)
    worker.wait_for("Worker started")
    assert worker.stop() == 0
    lines = [line.split() for line in ledger.read_text().splitlines()]
    assert len({pid for pid, _ in lines}) == 3  # the main process and two children
    assert {code for _, code in lines} == {"SEND_SUPPRESSED"}
    with psycopg.connect(pg_url) as conn:
        assert conn.execute("SELECT count(*) FROM horsies_tasks").fetchone()[0] == 0


def test_queue_named_with_a_quote_a_semicolon_and_a_space_is_served(
    pg_url: str, worker_env: dict[str, str], start_worker: Any
) -> None:
    app = _point(user_paths_apps.weird, pg_url)
    try:
        worker = _idle_worker(start_worker, worker_env,
                              "tests.integration.user_paths_apps:weird")
        worker.wait_for(f"Subscribed to queues: [{user_paths_apps.WEIRD_QUEUE}]")
        # One child, five tasks: each after the first is claimed when the one
        # before ends, without the poll (five minutes here) to fall back on.
        handles = [user_paths_apps.weird_add.send(i, i).ok_value for i in range(5)]
        results: list[TaskResult[int, Any]] = [h.get(timeout_ms=60_000) for h in handles]
        assert [r.ok_value for r in results] == [2 * i for i in range(5)]
        with psycopg.connect(pg_url) as conn:
            queues = conn.execute("SELECT DISTINCT queue_name FROM horsies_tasks").fetchall()
        assert queues == [(user_paths_apps.WEIRD_QUEUE,)]
        assert worker.stop() == 0
    finally:
        app.get_broker().close()
        app._broker = None
