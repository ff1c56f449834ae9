"""Worker-state snapshots: one row every 5 seconds, for the monitor and the demo."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from horsies.config import AppConfig
from horsies.sql import queries
from horsies.worker.connections import Connections

log = logging.getLogger("horsies.worker")
INTERVAL_S = 5.0
_RECOVERY_FIELDS = (
    "auto_requeue_stale_claimed", "claimed_stale_threshold_ms", "auto_fail_stale_running",
    "running_stale_threshold_ms", "check_interval_ms", "runner_heartbeat_interval_ms",
    "claimer_heartbeat_interval_ms", "heartbeat_retention_hours", "worker_state_retention_hours",
    "terminal_record_retention_hours",
)


def _rss_kib(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def _cpu_ticks(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
        return int(fields[11]) + int(fields[12])  # utime + stime
    except (OSError, IndexError, ValueError):
        return None


class Snapshots:
    """Writes a snapshot of the worker every 5 s on the service connection.

    `identity` holds the columns that never change during a worker's life;
    `counts` returns (tasks running, tasks claimed); `pids` the processes to
    measure (the main process and its children).
    """

    def __init__(self, conns: Connections, identity: dict[str, Any],
                 counts: Callable[[], tuple[int, int]], pids: Callable[[], list[int]],
                 stopping: Callable[[], bool]) -> None:
        self.conns = conns
        self.identity = identity
        self.counts = counts
        self.pids = pids
        self.stopping = stopping
        self.started_at = datetime.now(UTC)
        self._last_cpu: tuple[float, int] | None = None

    def metrics(self) -> tuple[float | None, float | None, float | None]:
        if not os.path.exists("/proc/self/status"):
            return None, None, None
        pids = self.pids()
        rss = sum(_rss_kib(p) or 0 for p in pids) * 1024
        phys = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        ticks = sum(_cpu_ticks(p) or 0 for p in pids)
        now = time.monotonic()
        cpu = None
        if self._last_cpu is not None and now > self._last_cpu[0]:
            used_s = (ticks - self._last_cpu[1]) / os.sysconf("SC_CLK_TCK")
            cpu = max(0.0, 100 * used_s / ((now - self._last_cpu[0]) * (os.cpu_count() or 1)))
        self._last_cpu = (now, ticks)
        return rss / 2**20, 100 * rss / phys, cpu

    def row(self, lifecycle: str) -> dict[str, Any]:
        memory_mb, memory_pct, cpu_pct = self.metrics()
        running, claimed = self.counts()
        return {
            **self.identity, "tasks_running": running, "tasks_claimed": claimed,
            "memory_usage_mb": memory_mb, "memory_percent": memory_pct, "cpu_percent": cpu_pct,
            "worker_started_at": self.started_at, "lifecycle": lifecycle,
        }

    async def write(self, lifecycle: str) -> None:
        try:
            async with self.conns.transaction("service") as conn:
                await conn.execute(queries["worker_state_insert"], self.row(lifecycle))
        except Exception as exc:  # noqa: BLE001 - a snapshot is best effort
            log.warning("worker-state snapshot failed: %s", exc)

    async def loop(self) -> None:
        while True:
            await self.write("DRAINING" if self.stopping() else "RUNNING")
            await asyncio.sleep(INTERVAL_S)


def identity_row(*, worker_id: str, hostname: str, processes: int, max_claim_batch: int,
                 max_claim_per_worker: int, queues: list[str], config: AppConfig
                 ) -> dict[str, Any]:
    """The snapshot columns that describe a worker's configuration."""
    from horsies._version import __version__

    custom = config.custom_queues
    return {
        "worker_id": worker_id, "hostname": hostname, "pid": os.getpid(),
        "processes": processes, "max_claim_batch": max_claim_batch,
        "max_claim_per_worker": max_claim_per_worker,
        "cluster_wide_cap": config.cluster_wide_cap, "queues": list(queues),
        "queue_priorities": json.dumps({q.name: q.priority for q in custom})
        if custom else None,
        "queue_max_concurrency": json.dumps({q.name: q.max_concurrency for q in custom})
        if custom else None,
        "recovery_config": json.dumps(
            {f: getattr(config.recovery, f, None) for f in _RECOVERY_FIELDS}),
        "horsies_version": __version__,
    }
