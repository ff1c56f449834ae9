"""Claim passes: budget, per-queue plan, one transaction on the claim connection."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import time
from typing import TYPE_CHECKING, Any

import psycopg

from horsies._speedups import compute_pass_budget, order_queues, queue_claim_limit
from horsies.db.broker import is_transient
from horsies.sql import queries

if TYPE_CHECKING:
    from horsies.worker.main import Worker

log = logging.getLogger("horsies.worker")

# Serializes claim passes of every worker on one database, where a cap needs it.
CLAIM_LOCK_KEY = int.from_bytes(hashlib.sha256(b"horsies:claim:v1").digest()[:8], "big",
                                signed=True)


# Without caps, expired leases are swept at most this often (with caps every
# pass sweeps, inside its locked transaction).
SWEEP_INTERVAL_S = 1.0


class Claimer:
    def __init__(self, worker: Worker) -> None:
        self.worker = worker
        cfg = worker.app.config
        self.caps = {q.name: q.max_concurrency for q in cfg.custom_queues or []
                     if q.name in worker.queues}
        priorities = None
        if cfg.custom_queues:
            priorities = {q.name: q.priority for q in cfg.custom_queues}
        self.order = order_queues(list(worker.queues), priorities)
        # Counting (and serializing passes) is only needed when some cap is shared.
        self.needs_counts = cfg.cluster_wide_cap is not None or bool(self.caps)
        self.failures = 0
        self._last_sweep = 0.0

    async def round(self) -> None:
        """Repeat passes until one claims nothing (or the worker stops)."""
        w = self.worker
        while not w.stopping:
            try:
                claimed = await self.one_pass()
            except Exception as exc:
                if not is_transient(exc):
                    raise
                await self._backoff(exc)
                return
            self.failures = 0
            if claimed == 0:
                return

    async def _backoff(self, exc: BaseException) -> None:
        w = self.worker
        res = w.app.config.resilience
        self.failures += 1
        if not res.retry_allowed(self.failures):
            raise exc
        delay_ms = res.backoff_ms(self.failures)
        log.error("Worker loop error: %s. Retrying in %.1fs (attempt %d/%s)", exc,
                  delay_ms / 1000, self.failures, res.db_retry_max_attempts or "inf")
        await asyncio.sleep(delay_ms / 1000)
        await w._reconnect("claim")

    def _counts(self, rows: list[tuple[Any, ...]]) -> tuple[int, dict[str, int]]:
        soft = self.worker.app.config.prefetch_buffer > 0
        total = 0
        per_queue: dict[str, int] = {}
        for queue, running, claimed in rows:
            total += running + claimed
            per_queue[queue] = running if soft else running + claimed
        return total, per_queue

    def _left_to_starter(self) -> int:
        """Idle children are served by claim-and-start, not by the ready queue."""
        w = self.worker
        return len(w.pool.idle_children()) if w.dispatcher.starter.enabled else 0

    def _sweep_due(self) -> bool:
        now = time.monotonic()
        if now - self._last_sweep < SWEEP_INTERVAL_S:
            return False
        self._last_sweep = now
        return True

    async def one_pass(self) -> int:
        w = self.worker
        conn: psycopg.AsyncConnection[Any] = w._conns["claim"]
        if not self.needs_counts and self._sweep_due():
            await conn.execute(queries["task_lease_sweep_many"], {"queues": w.queues})
        async with w.claiming:
            return await self._claim(conn)

    async def _claim(self, conn: psycopg.AsyncConnection[Any]) -> int:
        w = self.worker
        reserved = self._left_to_starter()
        if w.local_budget() - reserved <= 0:
            return 0  # fully busy: no (further) statement at all
        cfg = w.app.config
        claimed_rows: list[tuple[Any, ...]] = []
        # Without a shared cap nothing ties the pass's statements together, so each
        # runs as its own implicit transaction (one round trip, no BEGIN/COMMIT).
        pass_tx = conn.transaction() if self.needs_counts else contextlib.nullcontext()
        async with pass_tx:
            if self.needs_counts:
                await conn.execute(queries["claim_lock"], {"key": CLAIM_LOCK_KEY})
                await conn.execute(queries["task_lease_sweep_many"], {"queues": w.queues})
            global_in_flight, per_queue = 0, {}
            if self.needs_counts:
                cur = await conn.execute(queries["task_inflight_counts"])
                global_in_flight, per_queue = self._counts(await cur.fetchall())
            remaining = compute_pass_budget(
                w.config.processes, cfg.prefetch_buffer, w.config.max_claim_per_worker,
                cfg.cluster_wide_cap, w.local_running, w.local_claimed, global_in_flight
            ) - reserved
            for queue in self.order:
                if remaining <= 0:
                    break
                limit = queue_claim_limit(remaining, w.config.max_claim_batch,
                                          self.caps.get(queue), per_queue.get(queue, 0))
                if limit <= 0:
                    continue
                cur = await conn.execute(queries["task_claim_many"], {
                    "queue": queue, "limit": limit, "worker_id": w.worker_id,
                    "lease_ms": w.lease_ms})
                rows = await cur.fetchall()
                claimed_rows.extend(rows)
                remaining -= len(rows)
        if claimed_rows:
            w.dispatcher.push(claimed_rows)
        return len(claimed_rows)
