"""The demo's database work: its temporary server, the safety check, waiting, measuring, cleanup."""

from __future__ import annotations

import asyncio
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import psycopg

from horsies.demo.report import DemoReport
from horsies.sql import listen, queries

# Counting the unfinished tasks is a query over the whole batch: it runs at most
# four times a second, and never more than a tenth of the time.
MIN_COUNT_INTERVAL_S = 0.25
COUNT_DUTY_FACTOR = 10
# Without a notification, look again after this long (a missed NOTIFY, a retry).
FALLBACK_POLL_S = 1.0


def temporary_database() -> tuple[str, str]:
    """Start an embedded server in a new temporary directory: (url, directory)."""
    from horsies import embedded

    directory = tempfile.mkdtemp(prefix="horsies-demo-")
    return embedded.start(directory), directory


def drop_temporary_database(directory: str) -> None:
    from horsies import embedded

    embedded.stop(directory)
    shutil.rmtree(directory, ignore_errors=True)


def _one(row: tuple[Any, ...] | None) -> Any:
    assert row is not None  # an aggregate or a function call always returns a row
    return row[0]


def active_workers(url: str) -> bool:
    """Whether another worker is live on this database (none without the schema)."""
    with psycopg.connect(url, autocommit=True) as conn:
        if _one(conn.execute("SELECT to_regclass('horsies_worker_states')").fetchone()) is None:
            return False
        return bool(_one(conn.execute(queries["demo_active_workers"]).fetchone()))


@dataclass(frozen=True)
class Batch:
    """The throughput run's task ids; time-ordered, so [first, last] holds exactly them."""

    ids: list[str]

    @property
    def bounds(self) -> dict[str, str]:
        return {"first": min(self.ids), "last": max(self.ids)}


async def wait_drained(url: str, batch: Batch, timeout: float, report_done: Callable[[int], None],
                       gave_up: Callable[[], bool]) -> int:
    """Wait until every task of `batch` is terminal, `timeout` passes or `gave_up()`.

    Returns how many are left. A task_done notification may name several
    tasks (or others than ours): any one only means "count again".
    """
    end = time.monotonic() + timeout
    total = len(batch.ids)
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        await conn.execute(listen("task_done"))
        while True:
            counted_at = time.monotonic()
            cur = await conn.execute(queries["demo_left_count"], batch.bounds)
            left = int(_one(await cur.fetchone()))
            report_done(total - left)
            if left == 0 or time.monotonic() >= end or gave_up():
                return left
            spent = time.monotonic() - counted_at
            async for _ in conn.notifies(timeout=FALLBACK_POLL_S, stop_after=1):
                pass
            next_count = counted_at + max(MIN_COUNT_INTERVAL_S, spent * COUNT_DUTY_FACTOR)
            await asyncio.sleep(max(0.0, min(next_count, end) - time.monotonic()))


def measure(url: str, batch: Batch, report: DemoReport) -> None:
    """Counts and processing time of the throughput run, from its rows."""
    with psycopg.connect(url, autocommit=True) as conn:
        rows = conn.execute(queries["demo_task_times"], {"ids": batch.ids}).fetchall()
    report.completed = sum(1 for status, _, _ in rows if status == "COMPLETED")
    report.failed = sum(1 for status, _, _ in rows if status == "FAILED")
    report.unfinished = report.tasks - report.completed - report.failed
    ends = [done for _, _, done in rows if done is not None]
    if ends:
        report.processing_seconds = (max(ends) - min(r[1] for r in rows)).total_seconds()


def delete_tasks(url: str, ids: list[str]) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(queries["demo_delete_tasks"], {"ids": ids})
