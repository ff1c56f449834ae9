"""Claim-and-start: one statement takes pending tasks straight to idle children.

Without a cap that needs cluster-wide counts, nothing has to happen between
the claim (T2) and the ownership confirmation (T4) of a task for a child that
is already idle, so both run as one statement on the dispatch connection: one
round trip and one durable commit per task instead of three statements. The
claim predicates, the claim order and the confirmation's guarantees are those
of the two statements it replaces. Claims beyond the idle children (soft-cap
prefetch) still go through the claimer and the ready queue.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

from horsies._speedups import queue_claim_limit
from horsies.db.broker import is_transient
from horsies.sql import queries

if TYPE_CHECKING:
    from horsies.worker.executor import Child
    from horsies.worker.main import Worker

log = logging.getLogger("horsies.worker")


class Starter:
    def __init__(self, worker: Worker) -> None:
        self.worker = worker
        self.enabled = not worker.claimer.needs_counts
        self.failures = 0
        # Children named in a start whose commit may have happened unacknowledged.
        self.uncertain_pids: set[int] = set()

    async def start(self, idle: list[Child]) -> int:
        """Start up to one task per idle child within the local budget; returns
        how many started (0 also when a failure was handled)."""
        w = self.worker
        if not self.enabled or w.stopping:
            return 0
        if self.uncertain_pids:
            return await self._recover()
        async with w.claiming:
            if w.dispatcher.ready:
                return 0  # a claim pass got there first: its tasks go before any new one
            children = [c for c in idle if c.idle][: max(0, w.local_budget())]
            started, failure = await self._start_all(children)
        if failure is not None:  # backed off outside the lock: claim passes go on
            await self._failed(children[started:], failure)
            return 0
        self.failures = 0
        if started and w.claim_ceiling_binds:
            w.wake.set()  # the claimer may prefetch behind the tasks just started
        return started

    async def _start_all(self, children: list[Child]) -> tuple[int, Exception | None]:
        """Queue by queue in claim order until every child has a task; returns how
        many started and the error that stopped it, if any."""
        started = 0
        try:
            for queue in self.worker.claimer.order:
                free = children[started:]
                if not free:
                    break
                started += await self._start_queue(queue, free)
        except Exception as exc:  # noqa: BLE001 - handled by the caller
            return started, exc
        return started, None

    async def _start_queue(self, queue: str, free: list[Child]) -> int:
        w = self.worker
        limit = queue_claim_limit(len(free), w.config.max_claim_batch, None, 0)
        # Slot n of the claim order goes to free[n - 1].
        cur = await w._conns["dispatch"].execute(queries["task_claim_start_many"], {
            "queue": queue, "limit": limit, "pids": [c.pid for c in free[:limit]],
            "worker_id": w.worker_id, "hostname": w.hostname})
        self._hand_over(await cur.fetchall(), free)
        return cur.rowcount

    def _hand_over(self, rows: list[tuple[Any, ...]], children: list[Child]) -> None:
        by_pid = {c.pid: c for c in children}
        for pid, task_id, name, args, kwargs in rows:
            child = by_pid.get(pid)
            if child is None or not child.idle:
                # Its child died meanwhile: the task has no runner; the reaper's
                # stale-run check recovers it.
                log.warning("Task %s was started on child %d, which is no longer idle",
                            task_id, pid)
                continue
            self.worker.dispatcher.hand_over(child, task_id, name, args, kwargs)

    async def _recover(self) -> int:
        """Hand out the tasks an unacknowledged start committed, before any new start."""
        w = self.worker
        try:
            cur = await w._conns["dispatch"].execute(queries["task_started_orphans"], {
                "worker_id": w.worker_id, "pids": sorted(self.uncertain_pids),
                "known": [*w.running, *w.abandoned]})
            rows = await cur.fetchall()
        except Exception as exc:
            await self._failed([], exc)
            return 0
        self.uncertain_pids.clear()
        self.failures = 0
        self._hand_over(rows, w.pool.idle_children())
        if rows:
            log.info("%d task(s) started before the connection was lost handed out", len(rows))
        return len(rows) or 1  # run the dispatch loop again either way

    async def _failed(self, children: list[Child], exc: BaseException) -> None:
        w = self.worker
        res = w.app.config.resilience
        if not is_transient(exc) or not res.retry_allowed(self.failures + 1):
            raise exc
        self.failures += 1
        self.uncertain_pids.update(c.pid for c in children)
        delay = res.backoff_ms(self.failures) / 1000
        log.warning("claim-and-start failed: %s; retrying in %.1fs (attempt %d/%s)",
                    exc, delay, self.failures, res.db_retry_max_attempts or "inf")
        await asyncio.sleep(delay)
        await w._reconnect("dispatch")
        w.dispatcher.wake.set()
