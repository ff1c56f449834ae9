"""The demo run: start a worker in this process, enqueue, drain, measure, clean up."""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass, field
from typing import Any

import psycopg

from horsies.sql import listen, queries

_ACTIVE_WORKERS_SQL = queries["demo_active_workers"]


@dataclass
class DemoReport:
    database: str
    processes: int
    tasks: int
    enqueue_seconds: float = 0.0
    completed: int = 0
    failed: int = 0
    unfinished: int = 0
    processing_seconds: float = 0.0
    latency_ms: dict[str, float] = field(default_factory=dict)
    clean_shutdown: bool = False

    @property
    def enqueue_rate(self) -> int:
        return int(self.tasks / self.enqueue_seconds) if self.enqueue_seconds else 0

    @property
    def processing_rate(self) -> int:
        return int(self.completed / self.processing_seconds) if self.processing_seconds else 0

    @property
    def ok(self) -> bool:
        return self.completed == self.tasks and self.clean_shutdown

    def as_json(self) -> dict[str, Any]:
        return {
            "database": self.database, "processes": self.processes,
            "max_claim_batch": self.processes, "tasks": self.tasks,
            "enqueue_seconds": round(self.enqueue_seconds, 4), "enqueue_rate": self.enqueue_rate,
            "completed": self.completed, "failed": self.failed, "unfinished": self.unfinished,
            "processing_seconds": round(self.processing_seconds, 4),
            "processing_rate": self.processing_rate, "latency_ms": self.latency_ms,
            "clean_shutdown": self.clean_shutdown,
        }


def _duration(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms" if seconds < 1 else f"{seconds:.2f} s"


def format_report(r: DemoReport, version: str) -> str:
    lat = r.latency_ms
    rows = [
        ("database", r.database),
        ("worker", f"{r.processes} processes, max_claim_batch={r.processes}"),
        ("enqueue", f"{r.tasks} tasks in {_duration(r.enqueue_seconds)} "
                    f"({r.enqueue_rate} tasks/s)"),
        ("processing", f"{r.completed} completed, {r.failed} failed, {r.unfinished} unfinished "
                       f"in {_duration(r.processing_seconds)} ({r.processing_rate} tasks/s)"),
        ("latency", "  ".join(f"{k} {_duration(lat[k] / 1000)}" for k in ("p50", "p95", "p99",
                                                                          "max") if k in lat)),
        ("shutdown", "clean" if r.clean_shutdown else "not clean"),
    ]
    return "\n".join([f"horsies demo v{version}"] + [f"{k:<12}{v}" for k, v in rows])


def nearest_rank(sorted_values: list[float], pct: float) -> float:
    if not sorted_values:
        return 0.0
    rank = max(1, -(-len(sorted_values) * pct // 100))
    return sorted_values[int(rank) - 1]


def active_workers(url: str) -> bool:
    with psycopg.connect(url, autocommit=True) as conn:
        if conn.execute("SELECT to_regclass('horsies_worker_states')").fetchone()[0] is None:
            return False
        return bool(conn.execute(_ACTIVE_WORKERS_SQL).fetchone()[0])


def measure(url: str, ids: list[str], report: DemoReport) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        rows = conn.execute(queries["demo_task_times"], {"ids": ids}).fetchall()
    latencies = sorted(
        (done - enq).total_seconds() * 1000 for status, enq, done in rows if status == "COMPLETED"
    )
    report.completed = sum(1 for r in rows if r[0] == "COMPLETED")
    report.failed = sum(1 for r in rows if r[0] == "FAILED")
    report.unfinished = report.tasks - report.completed - report.failed
    if rows:
        start = min(r[1] for r in rows)
        end = max(r[2] for r in rows if r[2] is not None) if latencies else start
        report.processing_seconds = (end - start).total_seconds()
    report.latency_ms = {f"p{p}": round(nearest_rank(latencies, p), 1) for p in (50, 95, 99)}
    report.latency_ms["max"] = round(latencies[-1], 1) if latencies else 0.0


async def _wait_terminal(url: str, ids: list[str], timeout: float, progress: Any) -> None:
    """Wait until every demo task is terminal: woken by task_done, counting at most 5x/s.

    Ids are time-ordered, so the demo's tasks are the id range [first, last].
    """
    end = time.monotonic() + timeout
    bounds = {"first": ids[0], "last": ids[-1]}
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        await conn.execute(listen("task_done"))
        while time.monotonic() < end:
            cur = await conn.execute(queries["demo_unfinished_count"], bounds)
            left = (await cur.fetchone())[0]
            progress(len(ids) - left)
            if left == 0:
                return
            async for _ in conn.notifies(timeout=1.0, stop_after=1):
                pass
            await asyncio.sleep(0.2)  # let notifications pile up; one count serves them all


async def run_demo(url: str, label: str, tasks: int, processes: int, batch_size: int,
                   timeout: float, keep_data: bool, quiet: bool) -> DemoReport:
    os.environ["HORSIES_DEMO_DATABASE_URL"] = url
    from horsies.demo.app import app, demo_add
    from horsies.worker import Worker, WorkerConfig
    from horsies.worker.run import ensure_schema_with_retries

    report = DemoReport(database=label, processes=processes, tasks=tasks)
    if not await ensure_schema_with_retries(app):
        return report
    worker = Worker(app, WorkerConfig(app_locator="horsies.demo.app:app", processes=processes,
                                      max_claim_batch=processes,
                                      loglevel=logging.getLogger("horsies").level))
    runner = asyncio.ensure_future(worker.run_forever())
    await worker.wait_started()
    progress = _Progress(tasks, quiet)
    ids: list[str] = []
    started = time.perf_counter()
    for first in range(0, tasks, batch_size):
        chunk = [(i, i) for i in range(first, min(first + batch_size, tasks))]
        sent = await demo_add.send_many_async(chunk)
        if sent.is_err():
            raise RuntimeError(f"send_many failed: {sent.err_value.message}")
        ids.extend(h.task_id for h in sent.ok_value)
    report.enqueue_seconds = time.perf_counter() - started
    await _wait_terminal(url, ids, timeout, progress.update)
    progress.done()
    measure(url, ids, report)
    worker.request_stop()
    report.clean_shutdown = await runner == 0
    if not keep_data:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(queries["demo_delete_tasks"], {"ids": ids})
    await app.get_broker().close_async()
    return report


class _Progress:
    """A one-line progress bar on stderr (only on a terminal)."""

    def __init__(self, total: int, quiet: bool) -> None:
        self.total = total
        self.show = not quiet and sys.stderr.isatty()

    def update(self, done: int) -> None:
        if self.show:
            width = 30
            filled = int(width * done / max(self.total, 1))
            sys.stderr.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {done}/{self.total}")
            sys.stderr.flush()

    def done(self) -> None:
        if self.show:
            sys.stderr.write("\n")


def temporary_database() -> tuple[str, str]:
    from horsies import embedded

    directory = tempfile.mkdtemp(prefix="horsies-demo-")
    return embedded.start(directory), directory


def drop_temporary_database(directory: str) -> None:
    from horsies import embedded

    embedded.stop(directory)
    shutil.rmtree(directory, ignore_errors=True)
