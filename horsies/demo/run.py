"""The demo run: start a worker in this process, enqueue, drain, time round trips, clean up."""

from __future__ import annotations

import asyncio
import logging
import os
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from horsies.demo import database
from horsies.demo.database import Batch
from horsies.demo.progress import DemoProgress, SetDone
from horsies.demo.report import DemoReport

if TYPE_CHECKING:
    from horsies.worker import Worker

# Sequential round trips timed on the idle worker after the drain (like
# workload W4), fewer when the run itself has fewer tasks.
LATENCY_ROUND_TRIPS = 100


class DemoError(Exception):
    """The demo could not go on (its worker did not start, a send failed)."""


@dataclass(frozen=True)
class DemoSettings:
    url: str
    label: str
    tasks: int
    processes: int
    batch_size: int
    timeout: float
    keep_data: bool


async def run_demo(settings: DemoSettings, progress: DemoProgress) -> DemoReport:
    """Run the demo against `settings.url`; cleans up even when cancelled (Ctrl+C)."""
    os.environ["HORSIES_DEMO_DATABASE_URL"] = settings.url
    from horsies.demo.app import app
    from horsies.worker.run import ensure_schema_with_retries

    report = DemoReport(database=settings.label, processes=settings.processes,
                        tasks=settings.tasks)
    if not await ensure_schema_with_retries(app):
        return report
    created: list[str] = []  # every task id the demo sent, for the cleanup
    worker, runner = await _start_worker(settings.processes)
    try:
        await _measure(settings, progress, report, created, runner)
    finally:
        worker.request_stop()
        report.clean_shutdown = await runner == 0
        if not settings.keep_data and created:
            database.delete_tasks(settings.url, created)
        await app.get_broker().close_async()
    return report


async def _start_worker(processes: int) -> tuple[Worker, asyncio.Future[int]]:
    from horsies.demo.app import app
    from horsies.worker import Worker, WorkerConfig

    worker = Worker(app, WorkerConfig(app_locator="horsies.demo.app:app", processes=processes,
                                      max_claim_batch=processes,
                                      loglevel=logging.getLogger("horsies").level))
    runner = asyncio.ensure_future(worker.run_forever())
    started = asyncio.ensure_future(worker.wait_started())
    await asyncio.wait({runner, started}, return_when=asyncio.FIRST_COMPLETED)
    if not started.done():  # the worker ended before it started: its error was logged
        started.cancel()
        raise DemoError(f"the demo worker did not start (exit code {await runner})")
    return worker, runner


async def _measure(settings: DemoSettings, progress: DemoProgress, report: DemoReport,
                   created: list[str], runner: asyncio.Future[int]) -> None:
    batch = await _enqueue(settings, progress.step("enqueue", settings.tasks), report, created)
    await database.wait_drained(settings.url, batch, settings.timeout,
                                progress.step("drain", settings.tasks), runner.done)
    database.measure(settings.url, batch, report)
    report.latency_planned = min(LATENCY_ROUND_TRIPS, settings.tasks)
    if report.unfinished or runner.done():
        return  # a busy or stopped worker would not show the idle latency
    trips = progress.step("round trips", report.latency_planned)
    await _round_trips(report, settings.timeout, trips, created)


async def _enqueue(settings: DemoSettings, set_done: SetDone, report: DemoReport,
                   created: list[str]) -> Batch:
    """`demo_add(i, i)` for every task, `--batch-size` calls per send_many."""
    from horsies.demo.app import demo_add

    started = time.perf_counter()
    for first in range(0, settings.tasks, settings.batch_size):
        chunk = [(i, i) for i in range(first, min(first + settings.batch_size, settings.tasks))]
        sent = await demo_add.send_many_async(chunk)
        if sent.is_err():
            raise DemoError(f"send_many failed: {sent.err_value.message}")
        created.extend(h.task_id for h in sent.ok_value)
        set_done(len(created))
    report.enqueue_seconds = time.perf_counter() - started
    return Batch(list(created))


async def _round_trips(report: DemoReport, timeout: float, set_done: SetDone,
                       created: list[str]) -> None:
    """Time send-then-get on the idle worker; the first (unrecorded) one opens the connections."""
    for i in range(report.latency_planned + 1):
        started = time.perf_counter()
        if not await _round_trip(i, timeout, created):
            return  # the report shows how many round trips failed
        if i:
            report.latency_samples_ms.append((time.perf_counter() - started) * 1000)
            set_done(i)


async def _round_trip(i: int, timeout: float, created: list[str]) -> bool:
    from horsies.demo.app import demo_add

    sent: Any = await demo_add.send_async(i, i)
    if sent.is_err():
        return False
    created.append(sent.ok_value.task_id)
    result = await sent.ok_value.get_async(timeout_ms=timeout * 1000)
    return bool(result.is_ok() and result.ok_value == 2 * i)
