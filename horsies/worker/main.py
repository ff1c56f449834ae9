"""The worker's main process: it assembles the parts and runs their lifecycle.

It never runs user code. Each part receives the collaborators it needs:

- `Connections` (connections by role and the one retry loop),
- `ChildPool` (the children and their frames),
- `Cycle` (the results, deaths and top-ups, written once per cycle),
- `Claimer` and its `ReadyQueue` (only where a cap counts),
- `Listener`, `Liveness`, `Reaper`, `Snapshots`.

No part imports this module.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any

from horsies._speedups import IMPL, IMPL_ERROR, effective_max_claimed, order_queues
from horsies.config import DEFAULT_CLAIM_LEASE_MS
from horsies.sql import queries
from horsies.worker.children import Child, ChildPool, ChildSpec, PoolEvents, spawn
from horsies.worker.claimer import Claimer, ReadyQueue
from horsies.worker.config import WorkerConfig
from horsies.worker.connections import Connections
from horsies.worker.cycle import Cycle
from horsies.worker.listener import Listener
from horsies.worker.liveness import Liveness
from horsies.worker.recovery import Reaper
from horsies.worker.runs import RunSizing, counts_needed
from horsies.worker.snapshots import Snapshots, identity_row

if TYPE_CHECKING:
    from horsies.app import Horsies
    from horsies.worker import protocol

log = logging.getLogger("horsies.worker")

# How many tasks a child may start beyond the mark recorded in the last cycle
# (runs.md §3): when a whole worker dies, at most this many never-started
# tasks per child end on the crash path.
START_ALLOWANCE = 128
# After a forced stop: how long killed children and the last cycle may take.
_FORCED_EXIT_S = 10.0


class Worker:
    def __init__(self, app: Horsies, config: WorkerConfig,
                 spawned: list[Child] | None = None) -> None:
        """`spawned`: children started already (see `spawn_children`), adopted
        at start; the worker starts the rest of its `processes`."""
        self.app = app
        self.config = config
        self._spawned = spawned or []
        self.worker_id = str(uuid.uuid4())
        self.hostname = socket.gethostname()
        cfg = app.config
        self.queues = config.queues or app.get_valid_queue_names()
        custom = {q.name: q for q in cfg.custom_queues or []}
        caps = {q: custom[q].max_concurrency if q in custom else None for q in self.queues}
        ordered = order_queues(list(self.queues),
                               {n: q.priority for n, q in custom.items()} if custom else None)
        # Runs only where no cap needs counts (runs.md §1).
        self.capped = counts_needed(cfg, caps)
        self.stopping = False
        self.forced = False
        self.exit_code = 0
        self.wake = asyncio.Event()
        self._services: list[asyncio.Task[Any]] = []
        self._started = asyncio.Event()
        lease_ms = cfg.claim_lease_ms or DEFAULT_CLAIM_LEASE_MS
        self.max_claim_per_worker = effective_max_claimed(
            config.processes, cfg.prefetch_buffer, config.max_claim_per_worker)

        self.conns = Connections(app.get_broker().url, cfg.resilience)
        self.pool = ChildPool(
            ChildSpec(config.app_locator, list(config.sys_path_roots), list(config.imports),
                      config.loglevel),
            config.processes,
            PoolEvents(ready=self._child_ready, results=self._child_results,
                       stopped=lambda child: None, gone=self._child_gone))
        self.ready = ReadyQueue() if self.capped else None
        self.cycle = Cycle(
            self.conns, self.pool,
            RunSizing(cfg.run_target_ms, 1 if self.capped else config.max_run_size),
            worker_id=self.worker_id, hostname=self.hostname, queues=ordered,
            allowance=START_ALLOWANCE, ready=self.ready, on_retry=self._arm_retry,
            on_capacity=self.wake.set, forced=lambda: self.forced, app=app)
        self.claimer = None if self.ready is None else Claimer(
            self.conns, worker_id=self.worker_id, queues=self.queues, caps=caps,
            priorities={n: q.priority for n, q in custom.items()} if custom else None,
            processes=config.processes, prefetch_buffer=cfg.prefetch_buffer,
            max_claim_per_worker=config.max_claim_per_worker,
            max_claim_batch=config.max_claim_batch, cluster_wide_cap=cfg.cluster_wide_cap,
            lease_ms=lease_ms, ready=self.ready, running=lambda: self.cycle.running,
            stopping=lambda: self.stopping)
        self.listener = Listener(self.conns, self.queues, self._notified,
                                 stopping=lambda: self.stopping)
        self.liveness = Liveness(
            self.conns, self.pool, cfg.recovery, worker_id=self.worker_id, lease_ms=lease_ms,
            max_claim_renew_age_ms=cfg.max_claim_renew_age_ms,
            holding=lambda: self.cycle.holding, claims_held=self._claims_held,
            stopping=lambda: self.stopping)
        self.reaper = Reaper(self.conns, cfg.recovery, app=app, on_retry=self._arm_retry,
                             on_recovered=self.cycle.look_again, stopping=lambda: self.stopping)
        self.snapshots = Snapshots(
            self.conns,
            identity_row(worker_id=self.worker_id, hostname=self.hostname,
                         processes=config.processes, max_claim_batch=config.max_claim_batch,
                         max_claim_per_worker=self.max_claim_per_worker, queues=self.queues,
                         config=cfg),
            counts=lambda: (self.cycle.running, self._claims_held()),
            pids=lambda: [os.getpid()] + [c.pid for c in self.pool.children],
            stopping=lambda: self.stopping)

    def _claims_held(self) -> int:
        return self.ready.held if self.ready is not None else 0

    # -- the pool's events ---------------------------------------------------------

    def _child_ready(self, child: Child) -> None:
        log.debug("child %d ready", child.pid)
        self.cycle.wake.set()
        self.wake.set()

    def _child_results(self, child: Child, message: protocol.Results) -> None:
        self.cycle.take_results(child, message)

    def _child_gone(self, child: Child) -> None:
        self.pool.remove(child)
        self.cycle.take_death(child)
        if self.pool.hook_failed:
            log.critical("a child-process start hook failed; stopping the worker")
            self.exit_code = 1
            self.request_stop(force=True)
        elif self.pool.start_failures >= 5:
            log.critical("child processes keep failing during start")
            self.exit_code = 1
            self.request_stop(force=True)
        elif not self.stopping:
            asyncio.ensure_future(self._replace_child())

    async def _replace_child(self) -> None:
        try:
            await self.pool.start_child()
        except Exception as exc:  # noqa: BLE001 - counted like a child that died starting
            log.error("could not start a child process: %s", exc)
            self.pool.start_failures += 1
            if self.pool.start_failures >= 5:
                log.critical("child processes keep failing during start")
                self.exit_code = 1
                self.request_stop(force=True)
            else:
                await asyncio.sleep(1.0)
                await self._replace_child()

    # -- wake-ups ----------------------------------------------------------------

    def _notified(self, payload: str) -> None:
        # Freed capacity matters only where a cap counts the cluster; otherwise a
        # worker's budget is its own, and it already knows.
        if payload.startswith("capacity:"):
            if self.claimer is not None and self.claimer.needs_counts:
                self.wake.set()
            return
        self.cycle.look_again()
        self.wake.set()

    def _arm_retry(self, task_id: str, queue: str, when: datetime) -> None:
        """A retry's timer (workers.md §4.4): best effort; the poll covers a miss."""
        # A little late rather than early: a timer may fire a millisecond ahead
        # of the database's clock, and a retry claimed too soon is not yet due.
        delay = max(0.0, (when - datetime.now(when.tzinfo)).total_seconds()) + 0.01
        asyncio.get_running_loop().call_later(delay, self._retry_due, task_id, queue)

    def _retry_due(self, task_id: str, queue: str) -> None:
        if not self.stopping:
            asyncio.ensure_future(self._notify_retry(task_id, queue))

    async def _notify_retry(self, task_id: str, queue: str) -> None:
        try:
            async with self.conns.transaction("service") as conn:
                await conn.execute(queries["queue_notify_at"], {"queue": queue,
                                                               "task_id": task_id})
        except Exception as exc:  # noqa: BLE001 - the poll finds the retry anyway
            log.debug("retry notification for task %s failed: %s", task_id, exc)

    # -- lifecycle -------------------------------------------------------------------

    def request_stop(self, force: bool = False) -> None:
        """First call: graceful shutdown. A second call (or force): forced shutdown."""
        if (self.stopping or force) and not self.forced:
            self.forced = True
            running = [c for c in self.pool.children if c.queue]
            log.warning("Forced shutdown: terminating %d running task(s)", len(running))
            self.pool.kill_all()
        if not self.stopping:
            log.info("Received interrupt signal, stopping worker...")
            self.stopping = True
            self.cycle.starting = False
            self.pool.stop_all()
        self.wake.set()
        self.cycle.wake.set()

    def _spawn(self, coro: Awaitable[Any], name: str) -> asyncio.Task[Any]:
        task = asyncio.ensure_future(coro)
        task.set_name(f"horsies-{name}")
        self._services.append(task)
        task.add_done_callback(self._service_done)
        return task

    def _service_done(self, task: asyncio.Task[Any]) -> None:
        if task.cancelled() or task.exception() is None:
            return
        log.error("worker service %s failed: %s", task.get_name(), task.exception())
        self.exit_code = 1
        self.request_stop()

    def _log_config(self) -> None:
        cap = self.app.config.cluster_wide_cap
        log.info(
            "Concurrency config: processes=%d, cluster_wide_cap=%s, max_claim_per_worker=%d, "
            "max_claim_batch=%d", self.config.processes, cap if cap is not None else "unlimited",
            self.max_claim_per_worker, self.config.max_claim_batch)
        if not self.capped:
            log.info("Runs: up to %d task(s) per child, sized to %d ms of work",
                     self.config.max_run_size, self.app.config.run_target_ms)
        log.debug("horsies speedups: %s%s", IMPL, f" ({IMPL_ERROR})" if IMPL_ERROR else "")

    async def start(self) -> None:
        """Children first (they import the app while the connections open); the
        first start follows the first child's Ready."""
        self.app.suppress_sends(True)
        try:
            self.app.import_task_modules(self.app.get_discovered_task_modules()
                                         + list(self.config.imports))
        finally:
            self.app.suppress_sends(False)
        children = asyncio.ensure_future(self.pool.start(self._spawned))
        try:
            roles = ["cycle", "service", "listener"] + (["claim"] if self.capped else [])
            await self.conns.open(roles)
            self._log_config()
            await self.listener.subscribe(self.conns.get("listener"))
        finally:
            await children
        self._spawn(self.cycle.loop(), "cycle")
        self._spawn(self.listener.loop(), "listener")
        self._spawn(self.snapshots.loop(), "snapshots")
        self._spawn(self.liveness.runner_loop(), "runner-heartbeat")
        if self.claimer is not None:
            self._spawn(self.liveness.claimer_loop(), "claimer-heartbeat")
        self.reaper.log_config()
        self._spawn(self.reaper.loop(), "reaper")
        log.info("Worker started")
        self._started.set()

    async def run_forever(self) -> int:
        await self.start()
        poll_s = self.app.config.resilience.notify_poll_interval_ms / 1000
        try:
            while not self.stopping:
                if self.claimer is not None and await self.claimer.round():
                    self.cycle.look_again()  # claims wait for the cycle to start them
                try:
                    await asyncio.wait_for(self.wake.wait(), poll_s)
                except TimeoutError:
                    # The safety net of LISTEN/NOTIFY: a delayed task or a missed
                    # notification becomes claimable unannounced.
                    self.cycle.look_again()
                self.wake.clear()
        except Exception as exc:  # noqa: BLE001 - any failure ends the loop the same way
            # Out of retries or not retryable: stop as gracefully as the database allows.
            log.error("worker loop stopped: %s", exc)
            self.exit_code = 1
            self.request_stop()
        await self._shutdown()
        return self.exit_code

    async def wait_started(self) -> None:
        await self._started.wait()

    # -- shutdown ---------------------------------------------------------------------

    async def _shutdown(self) -> None:
        await self.snapshots.write("DRAINING")
        await self._release_claims()
        await self._drain()
        for task in self._services:
            task.cancel()
        await asyncio.gather(*self._services, return_exceptions=True)
        await self.snapshots.write("STOPPED")
        await self.conns.close()
        log.info("Worker stopped")

    def _cycle_failed(self) -> bool:
        """The cycle's service ended with an error: nothing left can be written."""
        return any(task.get_name() == "horsies-cycle" and task.done()
                   for task in self._services)

    async def _release_claims(self) -> None:
        """T5 for the ready queue's claims, so that another worker can take them."""
        if self.ready is None or not len(self.ready):
            return
        waiting = self.ready.take_all()
        try:
            async with self.conns.transaction("service") as conn:
                await conn.execute(queries["task_release_many"],
                                   {"ids": waiting, "worker_id": self.worker_id})
        except Exception as exc:  # noqa: BLE001 - their leases lapse and others sweep them
            log.warning("could not release %d claimed task(s): %s", len(waiting), exc)

    async def _drain(self) -> None:
        """Wait until every child has stopped and the cycle wrote what they left
        (bounded by the shutdown timeout, then forced)."""
        loop = asyncio.get_running_loop()
        timeout = self.config.shutdown_timeout_s
        deadline = None if timeout is None else loop.time() + timeout
        while (self.pool.children or self.cycle.pending) and not self._cycle_failed():
            if self.forced and deadline is None:
                deadline = loop.time() + _FORCED_EXIT_S
            if deadline is not None and loop.time() >= deadline:
                if self.forced:
                    log.error("shutdown left %d child(ren) or unwritten results behind",
                              len(self.pool.children))
                    return
                self.request_stop(force=True)
                deadline = loop.time() + _FORCED_EXIT_S
            await asyncio.sleep(0.02)


def spawn_children(config: WorkerConfig) -> list[Child]:
    """Start the worker's children now, before its event loop: they import the
    app while the rest of the start-up runs. Hand them to `Worker(...)`; kill
    them if the worker is not started after all."""
    spec = ChildSpec(config.app_locator, list(config.sys_path_roots), list(config.imports),
                     config.loglevel)
    return [spawn(spec) for _ in range(config.processes)]


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
