"""Claim-and-start after a commit whose acknowledgement was lost.

A claim-and-start that fails with a connection error may still have committed:
its tasks are RUNNING on the named children, but no child received them. The
worker must hand exactly those tasks to their children once it reconnects, and
never a task whose result it gave up on. The test runs a real worker in this
process with real children, writes the rows such a lost acknowledgement leaves
behind, and marks the child uncertain as the failed start would have.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

import psycopg

from horsies.worker import Worker, WorkerConfig

REPO = Path(__file__).resolve().parents[2]

LOST_ACK = """
UPDATE horsies_tasks
SET status = 'RUNNING', claimed = FALSE, claimed_at = now(), claimed_by_worker_id = %(worker)s,
    claim_expires_at = NULL, started_at = now(), worker_pid = %(pid)s,
    worker_hostname = 'test', worker_process_name = 'worker-' || %(pid)s
WHERE id = %(id)s
"""


def rows(url: str, sql: str, params: Any = None) -> list[tuple[Any, ...]]:
    with psycopg.connect(url, autocommit=True) as conn:
        return conn.execute(sql, params).fetchall()


async def _recover_lost_start(module: Any, url: str) -> tuple[str, str]:
    # Scheduled an hour ahead, so that the worker does not claim them itself.
    orphan = module.add.schedule(3600, 2, 3).ok_value.task_id
    given_up = module.add.schedule(3600, 4, 5).ok_value.task_id
    worker = Worker(module.app, WorkerConfig(app_locator="tests.integration.apps:app",
                                             processes=2, sys_path_roots=[str(REPO)],
                                             loglevel=logging.WARNING))
    runner = asyncio.ensure_future(worker.run_forever())
    try:
        await asyncio.wait_for(worker.wait_started(), 60)
        children = worker.pool.children
        for task_id, child in zip((orphan, given_up), children, strict=True):
            rows(url, LOST_ACK + " RETURNING id",
                 {"worker": worker.worker_id, "pid": child.pid, "id": task_id})
            worker.dispatcher.starter.uncertain_pids.add(child.pid)
        worker.abandoned.add(given_up)  # its result could not be written earlier
        worker.dispatcher.wake.set()
        for _ in range(600):
            if rows(url, "SELECT status FROM horsies_tasks WHERE id = %s", (orphan,)) == [
                    ("COMPLETED",)]:
                break
            await asyncio.sleep(0.05)
    finally:
        worker.request_stop()
        await asyncio.wait_for(runner, 60)
    return orphan, given_up


def test_a_start_committed_without_acknowledgement_runs_once_on_its_child(
    apps: Any, pg_url: str
) -> None:
    orphan, given_up = asyncio.run(_recover_lost_start(apps, pg_url))
    assert rows(pg_url, "SELECT status, result::jsonb -> 'ok' FROM horsies_tasks WHERE id = %s",
                (orphan,)) == [("COMPLETED", 5)]
    assert rows(pg_url, "SELECT outcome FROM horsies_task_attempts WHERE task_id = %s",
                (orphan,)) == [("COMPLETED",)]
    # The task whose result was given up on is left to the reaper, never run again.
    assert rows(pg_url, "SELECT status FROM horsies_tasks WHERE id = %s", (given_up,)) == [
        ("RUNNING",)]
    assert rows(pg_url, "SELECT count(*) FROM horsies_task_attempts WHERE task_id = %s",
                (given_up,)) == [(0,)]
