"""The reaper: recovery of work left behind by dead workers (workers.md §11).

The operations take `tx`, a callable returning an async context manager
that yields a connection inside a fresh transaction, so that a worker can
run them on its service connection and a broker on a pooled one. Each
returns an error value instead of raising: `retryable` tells a lost
connection (transient) from a permanent failure.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from datetime import datetime
from typing import TYPE_CHECKING, Any

import psycopg

from horsies.config import RecoveryConfig
from horsies.db.broker import is_transient
from horsies.info import BrokerErrorCode, BrokerOperationError
from horsies.result import Err, Ok, Result
from horsies.sql import cycle_statement, queries
from horsies.worker.connections import Connections
from horsies.worker.endings import WORKER_CRASHED, Statement, crash_result_json, retry_after

if TYPE_CHECKING:
    from horsies.app import Horsies

log = logging.getLogger("horsies.worker")

Tx = Callable[[], AbstractAsyncContextManager[psycopg.AsyncConnection[Any]]]
OnRetry = Callable[[str, str, datetime], None]  # task id, queue, when

RETENTION_LOCK_KEY = int.from_bytes(hashlib.sha256(b"horsies:retention:v1").digest()[:8], "big",
                                    signed=True)
RETENTION_EVERY_S = 3600.0
RETENTION_CHUNK = 5000
PERMANENT_FAILURE_LIMIT = 3
# (category in the log line, RecoveryConfig field, query), in deletion order.
_RETENTION = (
    ("heartbeats", "heartbeat_retention_hours", "retention_heartbeats_delete"),
    ("worker_states", "worker_state_retention_hours", "retention_worker_states_delete"),
    ("workflow_tasks", "terminal_record_retention_hours", "retention_workflow_tasks_delete"),
    ("workflows", "terminal_record_retention_hours", "retention_workflows_delete"),
    ("tasks", "terminal_record_retention_hours", "retention_tasks_delete"),
)


def _failure(exc: BaseException, what: str) -> Err[BrokerOperationError]:
    return Err(BrokerOperationError(BrokerErrorCode.CLEANUP_FAILED, f"{what} failed: {exc}",
                                    retryable=is_transient(exc), exception=exc))


def stale_reason(threshold_ms: int) -> str:
    """`failed_reason` of the reaper's crash path (lifecycle-and-schema.md §3.4)."""
    return (f"Worker process crashed (no runner heartbeat for {threshold_ms}ms = "
            f"{threshold_ms / 1000:.1f}s)")


async def requeue_stale_claimed(tx: Tx, threshold_ms: int) -> Result[int, BrokerOperationError]:
    """T7 for every stale claim; Ok(number requeued)."""
    try:
        async with tx() as conn:
            cur = await conn.execute(queries["task_requeue_stale_claimed"],
                                     {"threshold_ms": threshold_ms})
            row = await cur.fetchone()
            return Ok(int(row[0]) if row else 0)
    except Exception as exc:  # noqa: BLE001 - becomes an error value
        return _failure(exc, "requeue_stale_claimed")


async def mark_stale_tasks_as_failed(
    tx: Tx, threshold_ms: int, on_retry: OnRetry | None = None
) -> Result[int, BrokerOperationError]:
    """Recover every child whose RUNNING tasks are all stale; Ok(number of tasks
    failed, retried or returned to PENDING).

    Scan first (candidates only), then one transaction per child that takes
    the child's mark, re-checks staleness under the row locks and ends its
    tasks: those up to the mark may have started and take the crash path, those
    beyond it cannot have and return to PENDING (runs.md §3).
    """
    try:
        async with tx() as conn:
            cur = await conn.execute(queries["task_stale_children_scan"],
                                     {"threshold_ms": threshold_ms})
            candidates = [(row[0], row[1]) for row in await cur.fetchall()]
    except Exception as exc:  # noqa: BLE001 - becomes an error value
        return _failure(exc, "mark_stale_tasks_as_failed")
    recovered = 0
    last_error: BaseException | None = None
    for worker_id, pid in candidates:
        try:
            recovered += await recover_child(tx, worker_id, pid, threshold_ms, on_retry)
        except psycopg.errors.LockNotAvailable:
            continue  # a live cycle holds the child's mark: its worker is alive
        except Exception as exc:  # noqa: BLE001 - one child does not stop the others
            log.error("Reaper crash path failed for child %s:%s: %s", worker_id, pid, exc)
            last_error = exc
    if recovered == 0 and last_error is not None:
        return _failure(last_error, "mark_stale_tasks_as_failed")
    return Ok(recovered)


async def recover_child(tx: Tx, worker_id: str, pid: int, threshold_ms: int,
                        on_retry: OnRetry | None = None) -> int:
    """One stale child in one transaction; returns how many tasks it ended."""
    reason = stale_reason(threshold_ms)
    extra = {"stale_threshold_ms": threshold_ms, "stale_threshold_seconds": threshold_ms / 1000}
    async with tx() as conn:
        key = {"worker_id": worker_id, "pid": pid}
        await conn.execute(queries["child_mark_lock"], key)
        cur = await conn.execute(queries["task_stale_child_lock"],
                                 {**key, "threshold_ms": threshold_ms})
        rows = await cur.fetchall()
        if not rows:
            return 0  # finished, recovered by someone else, or heartbeating again
        cur = await conn.execute(queries["child_mark_revoke"], key)
        limit_row = await cur.fetchone()
        limit = int(limit_row[0]) if limit_row else 0
        stmt = Statement()
        for task_id, _queue, seq, retries, max_retries, options, started, host, _pid, now in rows:
            if seq is not None and seq > limit:
                stmt.give_back(task_id, pid)  # beyond the mark: it cannot have started
                continue
            result = crash_result_json(reason, worker_id, host, pid, started, now, extra)
            delay = retry_after(task_id, options, retries, max_retries, WORKER_CRASHED)
            stmt.fail(task_id, pid, result, WORKER_CRASHED, reason, reason, delay, None)
        cur = await conn.execute(cycle_statement(0), stmt.params(worker_id, "", []))
        for row in await cur.fetchall():
            if row[0] == "F" and row[8] == 1 and on_retry is not None:
                on_retry(row[3], row[7], row[11])
    if stmt.back_ids:
        log.info("Reaper returned %d never-started task(s) of child %s:%s to PENDING",
                 len(stmt.back_ids), worker_id, pid)
    return len(rows)


async def expire_pending_tasks(tx: Tx) -> Result[int, BrokerOperationError]:
    """T9 for every PENDING row past its good_until; Ok(number expired)."""
    try:
        async with tx() as conn:
            cur = await conn.execute(queries["task_expire_pending"])
            row = await cur.fetchone()
            return Ok(int(row[0]) if row else 0)
    except Exception as exc:  # noqa: BLE001 - becomes an error value
        return _failure(exc, "expire_pending_tasks")


async def recover_workflows(tx: Tx, app: Horsies | None = None
                            ) -> Result[int, BrokerOperationError]:
    """Workflow recovery (workers.md §11.5) in one transaction; Ok(nodes repaired)."""
    try:
        async with tx() as conn:
            cur = await conn.execute(queries["retention_workflow_tables_exist"])
            found = await cur.fetchone()
            if not (found and found[0]):
                return Ok(0)
            from horsies.workflows import engine

            return Ok(await engine.recover(conn, app))
    except Exception as exc:  # noqa: BLE001 - becomes an error value
        return _failure(exc, "recover_workflows")


async def prune_retention(
    tx: Tx, recovery: RecoveryConfig
) -> Result[dict[str, int] | None, BrokerOperationError]:
    """Retention in 5 000-row chunks; Ok(None) when another worker holds the lock."""
    try:
        async with tx() as conn:
            cur = await conn.execute(queries["retention_try_lock"], {"key": RETENTION_LOCK_KEY})
            row = await cur.fetchone()
        if row is None or not row[0]:
            return Ok(None)
        try:
            return Ok(await _prune(tx, recovery))
        finally:
            async with tx() as conn:
                await conn.execute(queries["retention_unlock"], {"key": RETENTION_LOCK_KEY})
    except Exception as exc:  # noqa: BLE001 - becomes an error value
        return _failure(exc, "retention")


async def _prune(tx: Tx, recovery: RecoveryConfig) -> dict[str, int]:
    async with tx() as conn:
        cur = await conn.execute(queries["retention_workflow_tables_exist"])
        found = await cur.fetchone()
    workflows = bool(found and found[0])
    deleted: dict[str, int] = {}
    for category, setting, query in _RETENTION:
        hours = getattr(recovery, setting)
        deleted[category] = 0
        if hours is None or (not workflows and category.startswith("workflow")):
            continue
        if not workflows and category == "tasks":
            query = "retention_tasks_delete_standalone"
        while True:
            async with tx() as conn:
                cur = await conn.execute(queries[query],
                                         {"hours": hours, "chunk": RETENTION_CHUNK})
                n = cur.rowcount
            deleted[category] += n
            if n < RETENTION_CHUNK:
                break
        if category == "heartbeats":
            # Marks of children that have nothing running any more age with
            # their heartbeats (housekeeping, not a category of the log line).
            async with tx() as conn:
                await conn.execute(queries["retention_child_marks_delete"], {"hours": hours})
    return deleted


class Reaper:
    """The worker service that runs the operations above every check_interval_ms."""

    def __init__(self, conns: Connections, config: RecoveryConfig, *,
                 app: Horsies | None = None, on_retry: OnRetry, on_recovered: Callable[[], None],
                 stopping: Callable[[], bool]) -> None:
        self.conns = conns
        self.config = config
        self.app = app  # builds child workflows that recovery starts
        self.on_retry = on_retry
        self.on_recovered = on_recovered
        self.stopping = stopping
        self.failures = {"requeue_stale_claimed": 0, "mark_stale_tasks_as_failed": 0,
                         "recover_workflows": 0}
        self.disabled: set[str] = set()
        self.next_retention: float | None = None  # monotonic; None = due now
        # When this reaper last lost the database (monotonic). Heartbeats could not
        # be written meanwhile either, so staleness is judged only once a full
        # threshold of live heartbeats has passed since.
        self.last_outage: float | None = None

    def _tx(self) -> AbstractAsyncContextManager[psycopg.AsyncConnection[Any]]:
        return self.conns.transaction("service")

    def _live_since_outage(self, threshold_ms: int) -> bool:
        """False within one threshold of a lost connection, seen by this reaper or
        by any other connection of its worker (one may be replaced unnoticed)."""
        seen = [t for t in (self.last_outage, self.conns.lost_at) if t is not None]
        return not seen or time.monotonic() - max(seen) >= threshold_ms / 1000

    def log_config(self) -> None:
        c = self.config
        log.info("Reaper configuration: auto_requeue_claimed=%s, auto_fail_running=%s, "
                 "check_interval=%dms (%.1fs)", c.auto_requeue_stale_claimed,
                 c.auto_fail_stale_running, c.check_interval_ms, c.check_interval_ms / 1000)

    async def loop(self) -> None:
        """First pass at once, then one every check_interval_ms, until shutdown begins."""
        while not self.stopping():
            await self.run_pass()
            end = asyncio.get_running_loop().time() + self.config.check_interval_ms / 1000
            while not self.stopping() and asyncio.get_running_loop().time() < end:
                await asyncio.sleep(min(0.25, self.config.check_interval_ms / 1000))

    async def run_pass(self) -> None:
        c = self.config
        tx = self._tx
        if (c.auto_requeue_stale_claimed and "requeue_stale_claimed" not in self.disabled
                and self._live_since_outage(c.claimed_stale_threshold_ms)):
            outcome = await requeue_stale_claimed(tx, c.claimed_stale_threshold_ms)
            if self._counted("requeue_stale_claimed", outcome) and outcome.ok_value > 0:
                log.info("Reaper requeued %d stale CLAIMED task(s)", outcome.ok_value)
        if (c.auto_fail_stale_running and "mark_stale_tasks_as_failed" not in self.disabled
                and self._live_since_outage(c.running_stale_threshold_ms)):
            outcome = await mark_stale_tasks_as_failed(tx, c.running_stale_threshold_ms,
                                                       self.on_retry)
            if self._counted("mark_stale_tasks_as_failed", outcome) and outcome.ok_value > 0:
                log.warning("Reaper recovered %d stale RUNNING task(s)", outcome.ok_value)
                self.on_recovered()
        expired = await expire_pending_tasks(tx)
        if expired.is_err():
            self._log_error("expire_pending_tasks", expired.err_value)
            if expired.err_value.retryable:
                self.last_outage = time.monotonic()
        elif expired.ok_value > 0:
            log.info("Reaper expired %d PENDING task(s) past good_until", expired.ok_value)
        if "recover_workflows" not in self.disabled:
            repaired = await recover_workflows(tx, self.app)
            if self._counted("recover_workflows", repaired) and repaired.ok_value > 0:
                log.info("Reaper recovered %d stuck workflow task(s)", repaired.ok_value)
        await self._retention()

    async def _retention(self) -> None:
        now = time.monotonic()
        if self.next_retention is not None and now < self.next_retention:
            return
        self.next_retention = now + RETENTION_EVERY_S
        outcome = await prune_retention(self._tx, self.config)
        if outcome.is_err():
            self._log_error("retention", outcome.err_value)
            return
        deleted = outcome.ok_value
        if deleted and any(deleted.values()):
            log.info("Reaper retention cleanup: %s",
                     " ".join(f"{name}={deleted[name]}" for name, _, _ in _RETENTION))

    def _counted(self, operation: str, outcome: Result[int, BrokerOperationError]) -> bool:
        """Track consecutive permanent failures; True when the operation succeeded."""
        if outcome.is_ok():
            self.failures[operation] = 0
            return True
        error = outcome.err_value
        if error.retryable:
            self.failures[operation] = 0
            self.last_outage = time.monotonic()
            self._log_error(operation, error)
            return False
        self.failures[operation] += 1
        if self.failures[operation] >= PERMANENT_FAILURE_LIMIT:
            self.disabled.add(operation)
            log.critical("Reaper %s disabled after %d consecutive permanent failures. "
                         "Last error: %s. Requires deploy or manual intervention.",
                         operation, PERMANENT_FAILURE_LIMIT, error.message)
        else:
            log.error("Reaper %s failed: %s", operation, error.message)
        return False

    @staticmethod
    def _log_error(operation: str, error: BrokerOperationError) -> None:
        if error.retryable:
            log.warning("Reaper %s failed (transient): %s", operation, error.message)
        else:
            log.error("Reaper %s failed: %s", operation, error.message)
