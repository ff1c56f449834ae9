"""Cycles that failed: a commit that landed unacknowledged, run positions left unused;
and a child that died while a cycle was starting a run on it.

A cycle that fails with a connection error may still have committed: its
starts are RUNNING on the named children, but no child received them. Before
anything else the worker hands exactly those tasks to their children. The test
runs a real worker in this process with real children, writes the rows such a
lost acknowledgement leaves behind (run positions the cycle had reserved), and
marks the children uncertain as the failed cycle would have. A child that is dead
by the time its run is handed out must get its tasks back to PENDING from the
worker itself, at once (runs.md §3), not from the reaper minutes later.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
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


async def _recover_lost_start(module: Any, url: str, kill_first: bool = False
                              ) -> dict[str, int]:
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
        if kill_first:  # and the first child died before the worker found out
            dead = worker.pool.children[0]
            os.kill(dead.pid, signal.SIGKILL)
            while dead in worker.pool.children:
                await asyncio.sleep(0.01)
        worker.cycle.wake.set()
        for _ in range(600):
            if rows(url, "SELECT count(*) FROM horsies_tasks WHERE status = 'RUNNING'") == [(0,)]:
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


def test_a_start_committed_without_acknowledgement_on_a_child_that_died_goes_back(
    apps: Any, pg_url: str, caplog: Any
) -> None:
    caplog.set_level(logging.INFO, logger="horsies.worker")
    orphans = asyncio.run(_recover_lost_start(apps, pg_url, kill_first=True))
    found = rows(pg_url, "SELECT id::text, status, claimed_by_worker_id FROM horsies_tasks "
                         "WHERE id = ANY(%s::uuid[])", (list(orphans),))
    dead = next(iter(orphans.values()))  # the pid of the first child
    # The live child ran its two; the dead child's two went back to PENDING (T15) at
    # once, unowned, instead of staying RUNNING until the reaper's stale threshold
    # (they were scheduled an hour ahead, so nobody claims them again).
    assert sorted((orphans[task_id] == dead, status, owner is None)
                  for task_id, status, owner in found) == [
        (False, "COMPLETED", False), (False, "COMPLETED", False),
        (True, "PENDING", True), (True, "PENDING", True)]
    assert "Reaper" not in caplog.text.replace("Reaper configuration", "")


async def _until_completed(url: str, count: int) -> None:
    """Wait up to a minute for `count` COMPLETED tasks (the test then checks them)."""
    for _ in range(1200):
        if rows(url, "SELECT count(*) FROM horsies_tasks WHERE status = 'COMPLETED'") == [
                (count,)]:
            return
        await asyncio.sleep(0.05)


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
        await _until_completed(url, len(handles))
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


async def _child_dies_while_its_run_starts(module: Any, url: str) -> int:
    """The first cycle that starts a run on a child kills that child and returns only
    once the worker has seen it die: the cycle's commit started tasks on a child that
    has left the pool by the time they are handed out."""
    from horsies.worker import cycle

    worker = Worker(module.app, WorkerConfig(app_locator="tests.integration.apps:app",
                                             processes=2, sys_path_roots=[str(REPO)],
                                             loglevel=logging.WARNING))
    execute = cycle._Plan.execute
    killed: list[int] = []

    async def execute_and_kill(plan: Any, conn: Any) -> list[tuple[Any, ...]]:
        found = await execute(plan, conn)
        victims = [c for c in plan.starting if any(r[0] == "S" and r[1] == c.pid for r in found)]
        if victims and not killed:
            victim = victims[0]
            killed.append(victim.pid)
            os.kill(victim.pid, signal.SIGKILL)
            while victim in worker.pool.children:
                await asyncio.sleep(0.01)
        return found

    runner = asyncio.ensure_future(worker.run_forever())
    try:
        await asyncio.wait_for(worker.wait_started(), 60)
        while not all(child.ready for child in worker.pool.children):
            await asyncio.sleep(0.05)
        cycle._Plan.execute = execute_and_kill  # type: ignore[method-assign]
        handles = module.add.send_many([(n, 1) for n in range(20)]).ok_value
        # The default stale threshold is 5 minutes: only the worker itself can
        # return the tasks of the dead child within this wait.
        await _until_completed(url, len(handles))
    finally:
        cycle._Plan.execute = execute  # type: ignore[method-assign]
        worker.request_stop()
        await asyncio.wait_for(runner, 60)
    assert killed
    return len(handles)


def test_a_run_started_on_a_child_that_dies_meanwhile_goes_back_at_once(
    apps: Any, pg_url: str, caplog: Any
) -> None:
    caplog.set_level(logging.INFO, logger="horsies.worker")
    sent = asyncio.run(_child_dies_while_its_run_starts(apps, pg_url))
    assert rows(pg_url, "SELECT status, count(*) FROM horsies_tasks GROUP BY 1") == [
        ("COMPLETED", sent)]
    assert "Reaper" not in caplog.text.replace("Reaper configuration", "")
