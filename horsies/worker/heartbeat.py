"""Heartbeats written by the worker's main process (workers.md §7.3, §9.2).

- Claimer heartbeat + lease renewal (T3): every
  ``min(claimer_heartbeat_interval_ms, lease / 3)``, only while this worker
  holds claims, two statements in one transaction on the service connection.
- Runner heartbeats: each busy child reports ``Beat`` over its pipe from a
  thread while its task runs; every half interval the main process writes one
  row for each child that reported, all in one INSERT. A child whose thread
  stops reporting (dead, or hung with the GIL held) stops getting rows and its
  task goes stale for the reaper. Writing every half interval keeps the gap
  between two rows of a healthy child under 1.5 intervals, so the minimum
  stale threshold (2 intervals) still tolerates one missed beat. A task whose
  child has finished but whose result is not written yet (a slow or unreachable
  database) gets a row every interval from the main process itself, so the
  reaper does not take a finished attempt for a dead one.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from typing import TYPE_CHECKING

from horsies.sql import queries

if TYPE_CHECKING:
    from horsies.worker.main import Worker

log = logging.getLogger("horsies.worker")


class Heartbeats:
    def __init__(self, worker: Worker) -> None:
        self.worker = worker
        recovery = worker.app.config.recovery
        self.claimer_interval_s = min(recovery.claimer_heartbeat_interval_ms,
                                      worker.lease_ms / 3) / 1000
        self.runner_interval_s = recovery.runner_heartbeat_interval_ms / 1000
        self.pid = os.getpid()
        self.runner_failures = 0

    # -- claimer ------------------------------------------------------------------

    async def claimer_loop(self) -> None:
        """Runs until shutdown begins (claims are released then, nothing to renew)."""
        w = self.worker
        while not w.stopping:
            await asyncio.sleep(self.claimer_interval_s)
            if w.stopping or w.local_claimed == 0:
                continue
            try:
                await self.claimer_beat()
            except Exception as exc:  # noqa: BLE001 - logged, next interval retries
                log.warning("Claimer heartbeat error: %s", exc)

    async def claimer_beat(self) -> None:
        w = self.worker
        async with w.service_tx() as conn:
            await conn.execute(queries["heartbeat_claimer_insert"], {
                "worker_id": w.worker_id, "hostname": w.hostname, "pid": self.pid})
            await conn.execute(queries["task_lease_renew"], {
                "worker_id": w.worker_id, "lease_ms": w.lease_ms,
                "max_claim_renew_age_ms": w.app.config.max_claim_renew_age_ms})

    # -- runner -------------------------------------------------------------------

    async def runner_loop(self) -> None:
        """Runs until the worker's services are cancelled (it keeps going while draining)."""
        held_due = 0.0
        while True:
            await asyncio.sleep(self.runner_interval_s / 2)
            beats = [(c.task_id, c.pid) for c in self.worker.pool.children
                     if c.beat and c.task_id is not None and not c.gone]
            for child in self.worker.pool.children:
                child.beat = False
            now = time.monotonic()
            if now >= held_due:
                held_due = now + self.runner_interval_s
                beats += self._results_held()
            if beats:
                await self.write_runner_beats(beats)

    def _results_held(self) -> list[tuple[str, int]]:
        """Tasks whose child has finished and whose result this worker still has to
        write (a slow or unreachable database): their attempt is alive."""
        return [(task_id, child.pid) for task_id, child in self.worker.running.items()
                if child.task_id != task_id]

    async def write_runner_beats(self, beats: list[tuple[str | None, int]]) -> None:
        w = self.worker
        task_ids = [task_id for task_id, _ in beats]
        try:
            async with w.service_tx() as conn:
                await conn.execute(queries["heartbeat_runner_insert_many"], {
                    "task_ids": task_ids,
                    "sender_ids": [f"{w.worker_id}:{pid}" for _, pid in beats],
                    "pids": [pid for _, pid in beats], "hostname": w.hostname})
        except Exception as exc:  # noqa: BLE001 - logged, next interval retries
            self.runner_failures += 1
            for task_id in task_ids:
                log.warning("Runner heartbeat failed for task %s (attempt %d): %s", task_id,
                            self.runner_failures, exc)
            return
        if self.runner_failures:
            log.info("Runner heartbeats recovered after %d failed attempt(s)",
                     self.runner_failures)
            self.runner_failures = 0
