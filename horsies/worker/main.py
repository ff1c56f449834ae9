"""The worker's main process: claim, dispatch, finalize, on one event loop.

It never runs user code. It owns every write about the tasks it runs, over
a handful of dedicated connections (claim, dispatch, writer, service and a
listener), whatever the number of children.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any

import psycopg

from horsies._speedups import IMPL, IMPL_ERROR, compute_pass_budget, effective_max_claimed
from horsies.db.broker import is_transient
from horsies.sql import listen, queries, queue_channel
from horsies.worker import protocol
from horsies.worker.child import ChildSpec
from horsies.worker.claimer import Claimer
from horsies.worker.completer import MAX_BATCH, Ending, Plan, finalize_batch, finalize_crash
from horsies.worker.config import WorkerConfig
from horsies.worker.dispatcher import Dispatcher
from horsies.worker.executor import Child, ChildPool
from horsies.worker.heartbeat import Heartbeats
from horsies.worker.recovery import Reaper
from horsies.worker.snapshots import Snapshots
from horsies.config import DEFAULT_CLAIM_LEASE_MS

if TYPE_CHECKING:
    from horsies.app import Horsies

log = logging.getLogger("horsies.worker")


def _prepare_threshold() -> int | None:
    # Prepared statements do not survive a transaction-pooling proxy.
    return None if os.environ.get("HORSIES_NO_PREPARE") == "1" else 0


# The claim connection writes only T2 (claim) and T6 (lease sweep). Losing such a
# commit in a server crash leaves the task PENDING, and the durable ownership
# confirmation that follows flushes the WAL past it, so it skips its own flush.
_SESSION_OPTIONS = {"claim": "-c synchronous_commit=off"}


async def connect(
    url: str, *, autocommit: bool = True, role: str = ""
) -> psycopg.AsyncConnection[Any]:
    """A main-process connection; `role` names its job (claim, dispatch, writer, ...).

    Hot single statements run as their own implicit transaction (one round trip);
    multi-statement work opens `conn.transaction()` explicitly."""
    extra = {"options": _SESSION_OPTIONS[role]} if role in _SESSION_OPTIONS else {}
    return await psycopg.AsyncConnection.connect(
        url, autocommit=autocommit, prepare_threshold=_prepare_threshold(), connect_timeout=10,
        **extra,
    )


class Worker:
    def __init__(self, app: Horsies, config: WorkerConfig) -> None:
        self.app = app
        self.config = config
        self.worker_id = str(uuid.uuid4())
        self.hostname = socket.gethostname()
        cfg = app.config
        self.queues = config.queues or app.get_valid_queue_names()
        self.lease_ms = cfg.claim_lease_ms or DEFAULT_CLAIM_LEASE_MS
        self.max_claim_per_worker = effective_max_claimed(
            config.processes, cfg.prefetch_buffer, config.max_claim_per_worker)
        self.running: dict[str, Child] = {}  # confirmed and not yet persisted
        # Tasks whose result could not be written: still RUNNING in the table,
        # left to the reaper, never to be handed out again.
        self.abandoned: set[str] = set()
        # When a connection of this worker was last found lost (monotonic): the
        # reaper judges heartbeats only once a full threshold has passed since.
        self.db_lost_at: float | None = None
        self.results: asyncio.Queue[Ending] = asyncio.Queue()
        self.wake = asyncio.Event()
        self.stopping = False
        self.forced = False
        self.exit_code = 0
        self._stop_event = asyncio.Event()
        self._tasks: list[asyncio.Task[Any]] = []
        self._conns: dict[str, psycopg.AsyncConnection[Any]] = {}
        self._started = asyncio.Event()
        self.pool = ChildPool(
            ChildSpec(config.app_locator, list(config.sys_path_roots), list(config.imports),
                      config.loglevel),
            config.processes, self._on_result, self._on_death, self._on_idle,
        )
        self.claimer = Claimer(self)
        self.dispatcher = Dispatcher(self)
        self.snapshots = Snapshots(self)
        self.heartbeats = Heartbeats(self)
        self.reaper = Reaper(self)
        # One operation at a time per connection: the service and writer
        # connections are shared by several coroutines.
        self.service_lock = asyncio.Lock()
        self.writer_lock = asyncio.Lock()
        # Claim passes and claim-and-starts take turns, so that each sees what the
        # other took and tasks reach children in claim order.
        self.claiming = asyncio.Lock()

    # -- counters the budget uses ---------------------------------------------

    @property
    def local_running(self) -> int:
        """Tasks in a child. A task whose result is still being written no longer
        holds its child, so the child may start the next one meanwhile (the cluster
        and queue caps still count its row as RUNNING until the write commits)."""
        return len(self.pool.busy_children())

    @property
    def claim_ceiling_binds(self) -> bool:
        """Whether the claim ceiling can bind (soft cap, explicit --max-claim-per-worker):
        then a task leaving the ready queue for a child gives the claimer room."""
        return self.app.config.prefetch_buffer > 0 or self.config.max_claim_per_worker > 0

    @property
    def local_claimed(self) -> int:
        return self.dispatcher.claimed

    def local_budget(self) -> int:
        cfg = self.app.config
        return compute_pass_budget(self.config.processes, cfg.prefetch_buffer,
                                   self.config.max_claim_per_worker, None,
                                   self.local_running, self.local_claimed, 0)

    # -- child callbacks --------------------------------------------------------

    def _on_result(self, child: Child, message: protocol.Result) -> None:
        self.results.put_nowait(Ending.from_result(message))

    def _on_idle(self) -> None:
        self.dispatcher.wake.set()

    def _on_death(self, child: Child, code: int | None) -> None:
        task_id = child.task_id
        if task_id is not None:
            reason = (f"Worker child process {child.pid} terminated by forced shutdown"
                      if self.forced else
                      f"Worker child process {child.pid} exited with code {code} "
                      "while running the task")
            self._spawn(self._crash(task_id, child.pid, reason), "crash-path")
        if self.pool.hook_failed:
            log.critical("a child-process start hook failed; stopping the worker")
            self.exit_code = 1
            self.request_stop(force=True)
            return
        if self.pool.start_failures >= 5:
            log.critical("child processes keep failing during start")
            self.exit_code = 1
            self.request_stop(force=True)
            return
        if not self.stopping:
            self.pool.start_child()

    async def _crash(self, task_id: str, pid: int, reason: str) -> None:
        try:
            plan = await self._write(
                lambda conn: finalize_crash(conn, task_id, pid, self.worker_id, reason),
                f"crash path for task {task_id}")
            self._after_finalize(plan)
        except Exception:
            log.exception("crash path failed for task %s", task_id)
            self.abandoned.add(task_id)
        finally:
            self.running.pop(task_id, None)
            self.wake_all()

    async def _write(self, write: Callable[[psycopg.AsyncConnection[Any]], Awaitable[Plan]],
                     what: str) -> Plan:
        """Run `write` on the writer connection, retried through a database outage
        like every other main-process connection (the resilience backoff) until it
        succeeds; the last error is raised when it is not transient, the retries
        run out, or a forced shutdown ends the wait."""
        res = self.app.config.resilience
        failures = 0
        while True:
            try:
                async with self.writer_lock:
                    return await write(self._conns["writer"])
            except Exception as exc:
                failures += 1
                if not is_transient(exc) or self.forced or not res.retry_allowed(failures):
                    raise
                delay = res.backoff_ms(failures) / 1000
                log.warning("%s failed (%s); retrying in %.1fs (attempt %d/%s)", what, exc, delay,
                            failures, res.db_retry_max_attempts or "inf")
                await asyncio.sleep(delay)
                async with self.writer_lock:
                    await self._reconnect("writer")

    # -- lifecycle --------------------------------------------------------------

    def request_stop(self, force: bool = False) -> None:
        """First call: graceful shutdown. A second call (or force): forced shutdown."""
        if self.stopping or force:
            if not self.forced:
                self.forced = True
                self._force_stop()
        if not self.stopping:
            log.info("Received interrupt signal, stopping worker...")
            self.stopping = True
        self._stop_event.set()
        self.wake.set()
        self.dispatcher.wake.set()

    def _force_stop(self) -> None:
        busy = self.pool.busy_children()
        log.warning("Forced shutdown: terminating %d running task(s)", len(busy))
        for child in busy:
            self.pool.kill(child)

    def _spawn(self, coro: Awaitable[Any], name: str) -> asyncio.Task[Any]:
        task = asyncio.ensure_future(coro)
        task.set_name(f"horsies-{name}")
        self._tasks.append(task)
        task.add_done_callback(self._service_done)
        return task

    def _service_done(self, task: asyncio.Task[Any]) -> None:
        if task.cancelled() or task.exception() is None:
            return
        log.error("worker service %s failed: %s", task.get_name(), task.exception())
        self.exit_code = 1
        self.request_stop()

    async def _open_connections(self) -> None:
        url = self.app.get_broker().url()
        for name in ("claim", "dispatch", "writer", "service"):
            self._conns[name] = await connect(url, role=name)
        self._conns["listener"] = await connect(url)

    async def _listen(self) -> None:
        conn = self._conns["listener"]
        channels = [queue_channel(q) for q in self.queues] + ["task_new"]
        for channel in channels:
            await conn.execute(listen(channel))
        log.info("Subscribed to queues: [%s] + global", ", ".join(self.queues))
        self._spawn(self._listen_loop(channels), "listener")

    async def _listen_loop(self, channels: list[str]) -> None:
        res = self.app.config.resilience
        failures = 0
        while not self.stopping:
            try:
                async for note in self._conns["listener"].notifies():
                    failures = 0
                    # Freed capacity matters only where a cap counts the cluster;
                    # otherwise a worker's budget is its own, and it already knows.
                    if self.claimer.needs_counts or not note.payload.startswith("capacity:"):
                        self.wake_all()
            except (psycopg.Error, OSError) as exc:
                if self.stopping:
                    return
                failures += 1
                self.db_lost_at = time.monotonic()
                if not res.retry_allowed(failures):
                    raise
                delay = res.backoff_ms(failures) / 1000
                log.warning("listener connection lost: %s; reconnecting in %.1fs (attempt %d/%s)",
                            exc, delay, failures, res.db_retry_max_attempts or "inf")
                await asyncio.sleep(delay)
                try:
                    conn = await connect(self.app.get_broker().url())
                    for channel in channels:
                        await conn.execute(listen(channel))
                    old, self._conns["listener"] = self._conns["listener"], conn
                    with contextlib.suppress(Exception):
                        await old.close()
                    failures = 0
                    self.wake_all()  # notifications sent meanwhile are lost
                except (psycopg.Error, OSError):
                    continue

    def _log_config(self) -> None:
        cap = self.app.config.cluster_wide_cap
        log.info(
            "Concurrency config: processes=%d, cluster_wide_cap=%s, max_claim_per_worker=%d, "
            "max_claim_batch=%d", self.config.processes, cap if cap is not None else "unlimited",
            self.max_claim_per_worker, self.config.max_claim_batch)
        log.debug("horsies speedups: %s%s", IMPL, f" ({IMPL_ERROR})" if IMPL_ERROR else "")

    async def start(self) -> None:
        self.app.suppress_sends(True)
        try:
            self.app.import_task_modules(self.app.get_discovered_task_modules()
                                         + list(self.config.imports))
        finally:
            self.app.suppress_sends(False)
        await self._open_connections()
        self._log_config()
        await self._listen()
        await self.pool.start()
        self._spawn(self._writer_loop(), "result-writer")
        self._spawn(self.dispatcher.loop(), "dispatcher")
        self._spawn(self.snapshots.loop(), "snapshots")
        self._spawn(self.heartbeats.claimer_loop(), "claimer-heartbeat")
        self._spawn(self.heartbeats.runner_loop(), "runner-heartbeat")
        self.reaper.log_config()
        self._spawn(self.reaper.loop(), "reaper")
        log.info("Worker started")
        self._started.set()

    async def run_forever(self) -> int:
        await self.start()
        poll_s = self.app.config.resilience.notify_poll_interval_ms / 1000
        try:
            while not self.stopping:
                await self.claimer.round()
                try:
                    await asyncio.wait_for(self.wake.wait(), poll_s)
                except TimeoutError:
                    # The safety net of LISTEN/NOTIFY: a delayed task or a missed
                    # notification becomes claimable unannounced, and idle
                    # children are served by claim-and-start, not by the pass.
                    self.dispatcher.wake.set()
                self.wake.clear()
        except Exception as exc:
            # Out of retries or not retryable: stop as gracefully as the database allows.
            log.error("worker loop stopped: %s", exc)
            self.exit_code = 1
            self.request_stop()
        await self._shutdown()
        return self.exit_code

    async def wait_started(self) -> None:
        await self._started.wait()

    # -- claims -----------------------------------------------------------------------

    async def release(self, task_ids: list[str]) -> None:
        """T5: give claims back so that another worker can take them."""
        if not task_ids:
            return
        async with self.service_tx() as conn:
            await conn.execute(queries["task_release_many"],
                               {"ids": task_ids, "worker_id": self.worker_id})

    # -- results --------------------------------------------------------------------

    async def _writer_loop(self) -> None:
        while True:
            first = await self.results.get()
            batch = [first]
            while len(batch) < MAX_BATCH and not self.results.empty():
                batch.append(self.results.get_nowait())
            await self._persist(batch)

    async def _persist(self, batch: list[Ending]) -> None:
        """Phase 1 for a batch of results; a batch that cannot be written is left
        RUNNING for the reaper."""
        plan: Plan | None
        try:
            plan = await self._write(lambda conn: finalize_batch(conn, batch), "finalize")
        except Exception as exc:  # noqa: BLE001 - out of retries, or not retryable
            log.critical("Finalize retries exhausted for %d task(s) stage=phase1_persist: %s",
                         len(batch), exc)
            plan = None
        for ending in batch:
            self.running.pop(ending.task_id, None)
        if plan is None:
            self.abandoned.update(ending.task_id for ending in batch)
        else:
            self._after_finalize(plan)
        self.wake_all()

    def wake_all(self) -> None:
        """Something may be claimable, or a slot was freed: claimer and dispatcher look again."""
        self.wake.set()
        self.dispatcher.wake.set()

    def _after_finalize(self, plan: Any) -> None:
        loop = asyncio.get_running_loop()
        for task_id, queue, when in plan.retries:
            log.info("Scheduled task %s for retry #%s at %s", task_id,
                     plan.retry_numbers.get(task_id, "?"), when.isoformat())
            delay = max(0.0, (when - datetime.now(when.tzinfo)).total_seconds())
            loop.call_later(delay, self._retry_due, task_id, queue)

    def _retry_due(self, task_id: str, queue: str) -> None:
        if not self.stopping:
            self._spawn(self._notify(queue_channel(queue), f"retry:{task_id}"), "retry-timer")

    async def _notify(self, channel: str, payload: str) -> None:
        async with self.service_tx() as conn:
            await conn.execute(queries["queue_notify"], {"channel": channel, "payload": payload})

    @contextlib.asynccontextmanager
    async def service_tx(self) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
        """One transaction on the service connection; callers take turns, and a
        connection found broken is replaced first (a failed one is replaced by
        the next caller)."""
        async with self.service_lock:
            conn = self._conns["service"]
            if conn.closed or conn.broken:
                await self._reconnect("service")
                conn = self._conns["service"]
            async with conn.transaction():
                yield conn

    async def _reconnect(self, name: str) -> None:
        self.db_lost_at = time.monotonic()
        try:
            await self._conns[name].close()
        except Exception:  # noqa: BLE001 - it is being replaced anyway
            pass
        try:
            self._conns[name] = await connect(self.app.get_broker().url(), role=name)
        except psycopg.Error as exc:
            log.warning("reconnect of %s connection failed: %s", name, exc)

    # -- shutdown ---------------------------------------------------------------------

    async def _shutdown(self) -> None:
        await self.snapshots.write("DRAINING")
        waiting = self.dispatcher.take_all()
        try:
            await self.release(waiting)
        except Exception as exc:  # noqa: BLE001 - their leases lapse and others sweep them
            log.warning("could not release %d claimed task(s): %s", len(waiting), exc)
        await self._drain()
        await self.pool.stop()
        while self.running or not self.results.empty():  # crash paths of killed children
            await asyncio.sleep(0.05)
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.snapshots.write("STOPPED")
        for conn in self._conns.values():
            await conn.close()
        log.info("Worker stopped")

    async def _drain(self) -> None:
        """Wait until every running task's result is persisted (bounded by the timeout)."""
        timeout = self.config.shutdown_timeout_s
        loop = asyncio.get_running_loop()
        end = None if timeout is None else loop.time() + timeout
        while self.running and not self.forced:
            if end is not None and loop.time() >= end:
                self.request_stop(force=True)
                break
            await asyncio.sleep(0.05)


def install_signal_handlers(worker: Worker) -> Callable[[], None]:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        try:
            loop.add_signal_handler(sig, worker.request_stop)
        except (NotImplementedError, RuntimeError):  # not the main thread, or Windows
            pass

    def remove() -> None:
        for sig in (signal.SIGTERM, signal.SIGINT):
            try:
                loop.remove_signal_handler(sig)
            except (NotImplementedError, RuntimeError):
                pass

    return remove
