"""Worker-state snapshots: one row every 5 seconds, for the monitor and the demo."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from horsies.sql import queries

if TYPE_CHECKING:
    from horsies.worker.main import Worker

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
    def __init__(self, worker: Worker) -> None:
        self.worker = worker
        self.started_at = datetime.now(UTC)
        self._last_cpu: tuple[float, int] | None = None

    def _pids(self) -> list[int]:
        return [os.getpid()] + [c.pid for c in self.worker.pool.children]

    def metrics(self) -> tuple[float | None, float | None, float | None]:
        if not os.path.exists("/proc/self/status"):
            return None, None, None
        pids = self._pids()
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
        w = self.worker
        cfg = w.app.config
        custom = cfg.custom_queues
        memory_mb, memory_pct, cpu_pct = self.metrics()
        from horsies._version import __version__

        return {
            "worker_id": w.worker_id, "hostname": w.hostname, "pid": os.getpid(),
            "processes": w.config.processes, "max_claim_batch": w.config.max_claim_batch,
            "max_claim_per_worker": w.max_claim_per_worker,
            "cluster_wide_cap": cfg.cluster_wide_cap, "queues": list(w.queues),
            "queue_priorities": json.dumps({q.name: q.priority for q in custom})
            if custom else None,
            "queue_max_concurrency": json.dumps({q.name: q.max_concurrency for q in custom})
            if custom else None,
            "recovery_config": json.dumps(
                {f: getattr(cfg.recovery, f, None) for f in _RECOVERY_FIELDS}),
            "tasks_running": w.local_running, "tasks_claimed": w.local_claimed,
            "memory_usage_mb": memory_mb, "memory_percent": memory_pct, "cpu_percent": cpu_pct,
            "worker_started_at": self.started_at, "lifecycle": lifecycle,
            "horsies_version": __version__,
        }

    async def write(self, lifecycle: str) -> None:
        conn = self.worker._conns.get("service")
        if conn is None or conn.closed:
            return
        try:
            async with self.worker.service_tx() as tx:
                await tx.execute(queries["worker_state_insert"], self.row(lifecycle))
        except Exception as exc:  # noqa: BLE001 - a snapshot is best effort
            log.warning("worker-state snapshot failed: %s", exc)

    async def loop(self) -> None:
        while True:
            lifecycle = "DRAINING" if self.worker.stopping else "RUNNING"
            await self.write(lifecycle)
            await asyncio.sleep(INTERVAL_S)
