"""Heartbeats written by the worker's main process (workers.md §7.3, §9.2;
runs.md §3).

- Runner heartbeats, per child: each busy child reports ``Beat`` over its
  socket from a thread; every half interval the main process writes one row
  per child that reported (sender ``<worker id>:<child pid>``), all in one
  statement. A child whose thread stops reporting (dead, or hung with the GIL
  held) stops getting rows and its tasks go stale. Writing every half interval
  keeps the gap between two rows of a healthy child under 1.5 intervals, so
  the minimum stale threshold (2 intervals) tolerates one missed beat. A child
  whose results the worker holds but has not written yet (a slow or
  unreachable database) gets a row every interval from the main process
  itself, so the reaper does not take finished attempts for dead ones.
- Claimer heartbeat and lease renewal (T3), per worker, where claims wait in
  the ready queue: every ``min(claimer_heartbeat_interval_ms, lease / 3)``,
  only while this worker holds claims.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
from collections.abc import Callable

from horsies.config import RecoveryConfig
from horsies.sql import queries
from horsies.worker.children import ChildPool
from horsies.worker.connections import Connections

log = logging.getLogger("horsies.worker")


class Liveness:
    def __init__(self, conns: Connections, pool: ChildPool, recovery: RecoveryConfig, *,
                 worker_id: str, lease_ms: int, max_claim_renew_age_ms: int,
                 holding: Callable[[], list[int]], claims_held: Callable[[], int],
                 stopping: Callable[[], bool]) -> None:
        self.conns = conns
        self.pool = pool
        self.worker_id = worker_id
        self.hostname = socket.gethostname()
        self.pid = os.getpid()
        self.lease_ms = lease_ms
        self.max_claim_renew_age_ms = max_claim_renew_age_ms
        self.claimer_interval_s = min(recovery.claimer_heartbeat_interval_ms, lease_ms / 3) / 1000
        self.runner_interval_s = recovery.runner_heartbeat_interval_ms / 1000
        self.holding = holding
        self.claims_held = claims_held
        self.stopping = stopping
        self.runner_failures = 0

    # -- runner -------------------------------------------------------------------

    async def runner_loop(self) -> None:
        """Runs until the worker's services are cancelled (it keeps going while draining)."""
        held_due = 0.0
        while True:
            await asyncio.sleep(self.runner_interval_s / 2)
            pids = [c.pid for c in self.pool.children if c.beat and not c.exited]
            for child in self.pool.children:
                child.beat = False
            now = time.monotonic()
            if now >= held_due:
                held_due = now + self.runner_interval_s
                pids += self.holding()
            if pids:
                await self.write_runner_beats(sorted(set(pids)))

    async def write_runner_beats(self, pids: list[int]) -> None:
        try:
            async with self.conns.transaction("service") as conn:
                await conn.execute(queries["heartbeat_runner_insert_many"], {
                    "worker_id": self.worker_id, "pids": pids, "hostname": self.hostname})
        except Exception as exc:  # noqa: BLE001 - logged, next interval retries
            self.runner_failures += 1
            for pid in pids:
                log.warning("Runner heartbeat failed for child %d (attempt %d): %s", pid,
                            self.runner_failures, exc)
            return
        if self.runner_failures:
            log.info("Runner heartbeats recovered after %d failed attempt(s)",
                     self.runner_failures)
            self.runner_failures = 0

    # -- claimer ------------------------------------------------------------------

    async def claimer_loop(self) -> None:
        """Runs until shutdown begins (claims are released then, nothing to renew)."""
        while not self.stopping():
            await asyncio.sleep(self.claimer_interval_s)
            if self.stopping() or self.claims_held() == 0:
                continue
            try:
                await self.claimer_beat()
            except Exception as exc:  # noqa: BLE001 - logged, next interval retries
                log.warning("Claimer heartbeat error: %s", exc)

    async def claimer_beat(self) -> None:
        async with self.conns.transaction("service") as conn:
            await conn.execute(queries["heartbeat_claimer_insert"], {
                "worker_id": self.worker_id, "hostname": self.hostname, "pid": self.pid})
            await conn.execute(queries["task_lease_renew"], {
                "worker_id": self.worker_id, "lease_ms": self.lease_ms,
                "max_claim_renew_age_ms": self.max_claim_renew_age_ms})
