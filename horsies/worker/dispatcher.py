"""The dispatcher: hands claimed tasks to idle children after confirming ownership.

Claimed tasks wait in a ready queue ordered like the claim order. Whenever
both claimed tasks and idle children exist, it confirms ownership (T4) for a
batch in one statement and sends each confirmed task to its child; a claim
that was lost is dropped, one whose deadline passed is expired (T8).
"""

from __future__ import annotations

import asyncio
import heapq
import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

import psycopg

from horsies.db.broker import is_transient
from horsies.sql import queries
from horsies.worker import protocol
from horsies.worker.starter import Starter

if TYPE_CHECKING:
    from horsies.worker.executor import Child
    from horsies.worker.main import Worker

log = logging.getLogger("horsies.worker")


@dataclass(order=True)
class ReadyTask:
    """A claimed task waiting for a child, ordered as the claim order."""

    priority: int
    enqueued_at: datetime
    task_id: str
    task_name: str = field(compare=False)
    args_json: str | None = field(compare=False)
    kwargs_json: str | None = field(compare=False)


class Dispatcher:
    def __init__(self, worker: Worker) -> None:
        self.worker = worker
        self.ready: list[ReadyTask] = []
        self.in_flight = 0  # tasks whose confirmation is under way
        self.wake = asyncio.Event()
        self.failures = 0
        # Tasks whose confirmation may have committed without an acknowledgement.
        self.uncertain: set[str] = set()
        self.starter = Starter(worker)

    @property
    def claimed(self) -> int:
        """Claims of this worker not yet handed out: the budget's local_claimed."""
        return len(self.ready) + self.in_flight

    def take_all(self) -> list[str]:
        """Empty the ready queue (shutdown) and return the ids it held."""
        ids = [t.task_id for t in self.ready]
        self.ready.clear()
        return ids

    def hand_over(self, child: Child, task_id: str, name: str, args: str | None,
                  kwargs: str | None) -> None:
        """Send a confirmed task to its child; it now counts as running."""
        interval = self.worker.app.config.recovery.runner_heartbeat_interval_ms
        self.worker.running[task_id] = child
        self.worker.pool.run(child, protocol.Run(task_id, name, args, kwargs,
                                                 self.worker.worker_id, interval))

    def push(self, rows: list[tuple[Any, ...]]) -> None:
        # A pass can re-claim one of this worker's own expired claims that still
        # waits here; one entry is enough (the ownership check uses id and owner).
        waiting = {t.task_id for t in self.ready}
        for task_id, name, _queue, priority, enqueued_at, args, kwargs in rows:
            if task_id in waiting:
                continue
            heapq.heappush(self.ready, ReadyTask(priority, enqueued_at, task_id, name, args,
                                                 kwargs))
        self.wake.set()

    async def loop(self) -> None:
        while True:
            await self.wake.wait()
            self.wake.clear()
            while not self.worker.stopping:
                idle = self.worker.pool.idle_children()
                if not idle:
                    break
                if self.ready:
                    batch = [heapq.heappop(self.ready)
                             for _ in range(min(len(idle), len(self.ready)))]
                    await self._dispatch(batch, idle[: len(batch)])
                elif not await self.starter.start(idle):
                    break

    async def _dispatch(self, batch: list[ReadyTask], children: list[Child]) -> None:
        self.in_flight += len(batch)
        conn = self.worker._conns["dispatch"]
        try:
            # One statement, its own transaction (the connection is in autocommit).
            cur = await conn.execute(queries["task_confirm_many"], {
                "ids": [t.task_id for t in batch], "pids": [c.pid for c in children],
                "hostname": self.worker.hostname, "worker_id": self.worker.worker_id})
            confirmed = {row[0] for row in await cur.fetchall()}
            expired: set[str] = set()
            if len(confirmed) < len(batch):
                async with conn.transaction():
                    confirmed, expired = await self._unconfirmed(conn, batch, children, confirmed)
        except Exception as exc:
            self.in_flight -= len(batch)
            await self._dispatch_failed(batch, exc)
            return
        self.in_flight -= len(batch)
        self.failures = 0
        self.uncertain.difference_update(t.task_id for t in batch)
        for task, child in zip(batch, children, strict=True):
            if task.task_id in confirmed:
                self.hand_over(child, task.task_id, task.task_name, task.args_json,
                               task.kwargs_json)
            elif task.task_id in expired:
                log.info("Task %s expired before start (TASK_EXPIRED)", task.task_id)
            else:
                log.info("Task %s dropped: claim lost before start (CLAIM_LOST)", task.task_id)
        # Confirmed claims leave local_claimed: the claimer may have room again.
        if len(confirmed) < len(batch) or (confirmed and self.worker.claim_ceiling_binds):
            self.worker.wake.set()

    async def _unconfirmed(self, conn: psycopg.AsyncConnection[Any], batch: list[ReadyTask],
                           children: list[Child], confirmed: set[str]
                           ) -> tuple[set[str], set[str]]:
        """Replay uncertain confirmations, then expire the claims whose deadline
        passed; returns the confirmed and the expired ids."""
        if self.uncertain:
            confirmed = confirmed | await self._reconfirm(conn, batch, children, confirmed)
        lost = [t.task_id for t in batch if t.task_id not in confirmed]
        if not lost:
            return confirmed, set()
        cur = await conn.execute(queries["task_expire_claimed_many"],
                                 {"ids": lost, "worker_id": self.worker.worker_id})
        return confirmed, {row[0] for row in await cur.fetchall()}

    async def _reconfirm(self, conn: psycopg.AsyncConnection[Any], batch: list[ReadyTask],
                         children: list[Child], confirmed: set[str]) -> set[str]:
        """Hand out again the uncertain tasks that an unacknowledged commit made RUNNING."""
        replay = [(t.task_id, c.pid) for t, c in zip(batch, children, strict=True)
                  if t.task_id in self.uncertain and t.task_id not in confirmed]
        if not replay:
            return set()
        cur = await conn.execute(queries["task_reconfirm_many"], {
            "ids": [i for i, _ in replay], "pids": [p for _, p in replay],
            "hostname": self.worker.hostname, "worker_id": self.worker.worker_id})
        return {row[0] for row in await cur.fetchall()}

    async def _dispatch_failed(self, batch: list[ReadyTask], exc: BaseException) -> None:
        res = self.worker.app.config.resilience
        if is_transient(exc) and res.retry_allowed(self.failures + 1):
            self.failures += 1
            self.uncertain.update(t.task_id for t in batch)
            for task in batch:
                heapq.heappush(self.ready, task)
            delay = res.backoff_ms(self.failures) / 1000
            log.warning("ownership confirmation failed: %s; retrying in %.1fs (attempt %d/%s)",
                        exc, delay, self.failures, res.db_retry_max_attempts or "inf")
            await asyncio.sleep(delay)
            await self.worker._reconnect("dispatch")
            self.wake.set()
            return
        log.error("ownership confirmation failed (OWNERSHIP_UNCONFIRMED): %s", exc)
        await self.worker.release([t.task_id for t in batch])

