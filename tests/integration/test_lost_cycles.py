"""Cycles that failed: a commit that landed unacknowledged, run positions left unused.

A cycle that fails with a connection error may still have committed: its
starts are RUNNING on the named children, but no child received them. Before
anything else the worker hands exactly those tasks to their children. The test
runs a real worker in this process with real children, writes the rows such a
lost acknowledgement leaves behind (run positions the cycle had reserved), and
marks the children uncertain as the failed cycle would have.
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
    claim_expires_at = NULL, started_at = now(), worker_pid = %(pid)s, run_seq = %(seq)s,
    worker_hostname = 'test', worker_process_name = 'worker-' || %(pid)s
WHERE id = %(id)s
"""


def rows(url: str, sql: str, params: Any = None) -> list[tuple[Any, ...]]:
    with psycopg.connect(url, autocommit=True) as conn:
        return conn.execute(sql, params).fetchall()


async def _recover_lost_start(module: Any, url: str) -> dict[str, int]:
    # Scheduled an hour ahead, so that the worker does not claim them itself.
    orphans = {module.add.schedule(3600, n, 3).ok_value.task_id: 0 for n in range(4)}
    worker = Worker(module.app, WorkerConfig(app_locator="tests.integration.apps:app",
                                             processes=2, sys_path_roots=[str(REPO)],
                                             loglevel=logging.WARNING))
    runner = asyncio.ensure_future(worker.run_forever())
    try:
        await asyncio.wait_for(worker.wait_started(), 60)
        while not all(child.ready for child in worker.pool.children):
            await asyncio.sleep(0.05)
        for n, task_id in enumerate(orphans):
            child = worker.pool.children[n % 2]
            seq = child.next_seq  # reserved by the cycle that failed
            child.next_seq += 1
            rows(url, LOST_ACK + " RETURNING id",
                 {"worker": worker.worker_id, "pid": child.pid, "seq": seq, "id": task_id})
            orphans[task_id] = child.pid
            worker.cycle.uncertain.add(child)
        worker.cycle.wake.set()
        for _ in range(600):
            done = rows(url, "SELECT count(*) FROM horsies_tasks WHERE status = 'COMPLETED'")
            if done == [(len(orphans),)]:
                break
            await asyncio.sleep(0.05)
    finally:
        worker.request_stop()
        await asyncio.wait_for(runner, 60)
    return orphans


def test_a_start_committed_without_acknowledgement_runs_once_on_its_child(
    apps: Any, pg_url: str, caplog: Any
) -> None:
    caplog.set_level(logging.INFO, logger="horsies.worker")
    orphans = asyncio.run(_recover_lost_start(apps, pg_url))
    found = rows(pg_url, "SELECT id::text, status, result::jsonb -> 'ok', worker_pid "
                         "FROM horsies_tasks WHERE id = ANY(%s::uuid[])", (list(orphans),))
    assert sorted((status, ok) for _, status, ok, _ in found) == [
        ("COMPLETED", n + 3) for n in range(4)]
    # each on the child its lost start named
    assert {task_id: pid for task_id, _, _, pid in found} == orphans
    said = caplog.text
    assert "4 task(s) started before the connection was lost handed out" in said
    assert "result dropped" not in said  # a second run would have been refused and logged


async def _after_burned_positions(module: Any, url: str, burned: int) -> int:
    worker = Worker(module.app, WorkerConfig(app_locator="tests.integration.apps:app",
                                             processes=1, sys_path_roots=[str(REPO)],
                                             loglevel=logging.WARNING))
    runner = asyncio.ensure_future(worker.run_forever())
    try:
        await asyncio.wait_for(worker.wait_started(), 60)
        while not all(child.ready for child in worker.pool.children):
            await asyncio.sleep(0.05)
        # Failed cycles reserve run positions and never use them.
        worker.pool.children[0].next_seq += burned
        handles = module.add.send_many([(n, 1) for n in range(400)]).ok_value
        for _ in range(1200):
            done = rows(url, "SELECT count(*) FROM horsies_tasks WHERE status = 'COMPLETED'")
            if done == [(len(handles),)]:
                break
            await asyncio.sleep(0.05)
    finally:
        worker.request_stop()
        await asyncio.wait_for(runner, 60)
    return len(handles)


def test_a_gap_in_run_positions_wider_than_the_allowance_does_not_stall_a_child(
    apps: Any, pg_url: str
) -> None:
    from horsies.worker.main import START_ALLOWANCE

    sent = asyncio.run(_after_burned_positions(apps, pg_url, 10 * START_ALLOWANCE))
    assert rows(pg_url, "SELECT count(*) FROM horsies_tasks WHERE status = 'COMPLETED'") == [
        (sent,)]
