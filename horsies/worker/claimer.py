"""Claim passes, for workers where a cap counts (queues-and-concurrency.md).

With `cluster_wide_cap`, a queue's `max_concurrency` or a `prefetch_buffer`,
a task is claimed (T2) by a pass on the claim connection, waits in the ready
queue, and starts (T4) when the cycle confirms it for an idle child: a run is
one task and every rule of the caps holds as written (runs.md §1).
"""

from __future__ import annotations

import contextlib
import hashlib
import heapq
import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any, NamedTuple

import psycopg

from horsies._speedups import compute_pass_budget, order_queues, queue_claim_limit
from horsies.sql import queries
from horsies.worker.connections import Connections

log = logging.getLogger("horsies.worker")

# Serializes claim passes of every worker on one database, where a cap needs it.
CLAIM_LOCK_KEY = int.from_bytes(hashlib.sha256(b"horsies:claim:v1").digest()[:8], "big",
                                signed=True)
LOOP_ERROR = "Worker loop error: {exc}. Retrying in {delay:.1f}s (attempt {n}/{most})"


class ReadyTask(NamedTuple):
    """A claimed task waiting for a child, ordered as the claim order."""

    priority: int
    enqueued_at: datetime
    task_id: str


class ReadyQueue:
    """Claimed tasks in claim order (workers.md §5.4), one entry per task."""

    def __init__(self) -> None:
        self._heap: list[ReadyTask] = []
        self._ids: set[str] = set()
        self.confirming = 0  # taken for a confirmation that has not committed yet

    def __len__(self) -> int:
        return len(self._heap)

    @property
    def held(self) -> int:
        """Claims of this worker not yet started: the budget's local_claimed."""
        return len(self._heap) + self.confirming

    def push(self, rows: list[tuple[Any, ...]]) -> None:
        for task_id, _name, _queue, priority, enqueued_at, _args, _kwargs in rows:
            if task_id not in self._ids:  # a pass can re-claim one of our lapsed claims
                self._ids.add(task_id)
                heapq.heappush(self._heap, ReadyTask(priority, enqueued_at, task_id))

    def take(self, n: int) -> list[ReadyTask]:
        """The first `n` in claim order, for a confirmation (they still count as held)."""
        taken = [heapq.heappop(self._heap) for _ in range(min(n, len(self._heap)))]
        self.confirming += len(taken)
        return taken

    def put_back(self, tasks: list[ReadyTask]) -> None:
        """A confirmation that failed: the tasks wait again, in their place."""
        self.confirming -= len(tasks)
        for task in tasks:
            heapq.heappush(self._heap, task)

    def done(self, tasks: list[ReadyTask]) -> None:
        """A confirmation committed: started or not, the tasks leave the queue."""
        self.confirming -= len(tasks)
        self._ids.difference_update(task.task_id for task in tasks)

    def take_all(self) -> list[str]:
        """Empty the queue (shutdown) and return the ids it held."""
        ids = [task.task_id for task in self._heap]
        self._heap.clear()
        self._ids.clear()
        return ids


class Claimer:
    def __init__(self, conns: Connections, *, worker_id: str, queues: list[str],
                 caps: dict[str, int | None], priorities: dict[str, int] | None,
                 processes: int, prefetch_buffer: int, max_claim_per_worker: int,
                 max_claim_batch: int, cluster_wide_cap: int | None, lease_ms: int,
                 ready: ReadyQueue, running: Callable[[], int],
                 stopping: Callable[[], bool]) -> None:
        self.conns = conns
        self.worker_id = worker_id
        self.queues = queues
        self.caps = caps
        self.order = order_queues(list(queues), priorities)
        self.processes = processes
        self.prefetch_buffer = prefetch_buffer
        self.max_claim_per_worker = max_claim_per_worker
        self.max_claim_batch = max_claim_batch
        self.cluster_wide_cap = cluster_wide_cap
        self.lease_ms = lease_ms
        self.ready = ready
        self.running = running
        self.stopping = stopping
        # Counting (and serializing passes) is only needed when some cap is shared.
        self.needs_counts = cluster_wide_cap is not None or any(
            cap is not None for cap in caps.values())

    def budget(self, global_in_flight: int = 0, *, counted: bool = False) -> int:
        return compute_pass_budget(
            self.processes, self.prefetch_buffer, self.max_claim_per_worker,
            self.cluster_wide_cap if counted else None, self.running(), self.ready.held,
            global_in_flight)

    async def round(self) -> int:
        """Repeat passes until one claims nothing (or the worker stops); returns
        how many tasks the round claimed."""
        total = 0
        while not self.stopping():
            claimed = await self.conns.retrying(
                "claim", "claim pass", self._pass, give_up=self.stopping, line=LOOP_ERROR,
                level=logging.ERROR)
            if claimed == 0:
                break
            total += claimed
        return total

    async def _pass(self, conn: psycopg.AsyncConnection[Any]) -> int:
        if self.budget() <= 0:
            return 0  # fully busy: no statement at all (workers.md §5.2)
        rows: list[tuple[Any, ...]] = []
        # Without a shared cap nothing ties the pass's statements together, so each
        # runs as its own implicit transaction (one round trip, no BEGIN/COMMIT).
        tx = conn.transaction() if self.needs_counts else contextlib.nullcontext()
        async with tx:
            per_queue: dict[str, int] = {}
            global_in_flight = 0
            if self.needs_counts:
                await conn.execute(queries["claim_lock"], {"key": CLAIM_LOCK_KEY})
            await conn.execute(queries["task_lease_sweep_many"], {"queues": self.queues})
            if self.needs_counts:
                cur = await conn.execute(queries["task_inflight_counts"])
                global_in_flight, per_queue = self._counts(await cur.fetchall())
            remaining = self.budget(global_in_flight, counted=True)
            for queue in self.order:
                if remaining <= 0:
                    break
                limit = queue_claim_limit(remaining, self.max_claim_batch,
                                          self.caps.get(queue), per_queue.get(queue, 0))
                if limit <= 0:
                    continue
                cur = await conn.execute(queries["task_claim_many"], {
                    "queue": queue, "limit": limit, "worker_id": self.worker_id,
                    "lease_ms": self.lease_ms})
                found = await cur.fetchall()
                rows.extend(found)
                remaining -= len(found)
        self.ready.push(rows)
        return len(rows)

    def _counts(self, rows: list[tuple[Any, ...]]) -> tuple[int, dict[str, int]]:
        soft = self.prefetch_buffer > 0
        total = 0
        per_queue: dict[str, int] = {}
        for queue, running, claimed in rows:
            total += running + claimed
            per_queue[queue] = running if soft else running + claimed
        return total, per_queue
