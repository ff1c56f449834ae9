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
from typing import TYPE_CHECKING, Any

import psycopg

from horsies.config import RecoveryConfig
from horsies.db.broker import is_transient
from horsies.info import BrokerErrorCode, BrokerOperationError
from horsies.result import Err, Ok, Result
from horsies.sql import queries
from horsies.worker.completer import WORKER_CRASHED, Ending, Plan, crash_result_json

if TYPE_CHECKING:
    from horsies.worker.main import Worker

log = logging.getLogger("horsies.worker")

Tx = Callable[[], AbstractAsyncContextManager[psycopg.AsyncConnection[Any]]]

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
            return Ok(cur.rowcount)
    except Exception as exc:  # noqa: BLE001 - becomes an error value
        return _failure(exc, "requeue_stale_claimed")


async def mark_stale_tasks_as_failed(
    tx: Tx, threshold_ms: int, on_plan: Callable[[Plan], None] | None = None
) -> Result[int, BrokerOperationError]:
    """The crash path for every stale RUNNING task; Ok(number failed or retried).

    Scan first (candidates only), then one transaction per candidate that
    re-checks staleness under the row lock, so few locks are held at once.
    """
    try:
        async with tx() as conn:
            cur = await conn.execute(queries["task_stale_running_scan"],
                                     {"threshold_ms": threshold_ms})
            candidates = [row[0] for row in await cur.fetchall()]
    except Exception as exc:  # noqa: BLE001 - becomes an error value
        return _failure(exc, "mark_stale_tasks_as_failed")
    recovered = 0
    last_error: BaseException | None = None
    for task_id in candidates:
        try:
            plan = await _crash_stale(tx, task_id, threshold_ms)
        except Exception as exc:  # noqa: BLE001 - one candidate does not stop the others
            log.error("Reaper crash path failed for task %s: %s", task_id, exc)
            last_error = exc
            continue
        if plan is not None:
            recovered += 1
            if on_plan is not None:
                on_plan(plan)
    if recovered == 0 and last_error is not None:
        return _failure(last_error, "mark_stale_tasks_as_failed")
    return Ok(recovered)


async def _crash_stale(tx: Tx, task_id: str, threshold_ms: int) -> Plan | None:
    reason = stale_reason(threshold_ms)
    async with tx() as conn:
        cur = await conn.execute(queries["task_stale_running_lock"],
                                 {"id": task_id, "threshold_ms": threshold_ms})
        names = [d.name for d in cur.description or ()]
        found = await cur.fetchone()
        if found is None:
            return None  # finished, recovered by someone else, or heartbeating again
        row = dict(zip(names, found, strict=True))
        extra = {"stale_threshold_ms": threshold_ms,
                 "stale_threshold_seconds": threshold_ms / 1000}
        result = crash_result_json(task_id, reason, row, row["claimed_by_worker_id"], extra)
        plan = Plan()
        plan.add(row, Ending(task_id, result, False, WORKER_CRASHED, reason,
                             failed_reason=reason))
        await plan.execute(conn)
        return plan


async def expire_pending_tasks(tx: Tx) -> Result[int, BrokerOperationError]:
    """T9 for every PENDING row past its good_until; Ok(number expired)."""
    try:
        async with tx() as conn:
            cur = await conn.execute(queries["task_expire_pending"])
            return Ok(cur.rowcount)
    except Exception as exc:  # noqa: BLE001 - becomes an error value
        return _failure(exc, "expire_pending_tasks")


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
    return deleted


class Reaper:
    """The worker service that runs the operations above every check_interval_ms."""

    def __init__(self, worker: Worker) -> None:
        self.worker = worker
        self.config = worker.app.config.recovery
        self.failures = {"requeue_stale_claimed": 0, "mark_stale_tasks_as_failed": 0}
        self.disabled: set[str] = set()
        self.next_retention: float | None = None  # monotonic; None = due now
        # When this reaper last lost the database (monotonic). Heartbeats could not
        # be written meanwhile either, so staleness is judged only once a full
        # threshold of live heartbeats has passed since.
        self.last_outage: float | None = None

    def _live_since_outage(self, threshold_ms: int) -> bool:
        """False within one threshold of a lost connection, seen by this reaper or
        by any other connection of its worker (one may be replaced unnoticed)."""
        seen = [t for t in (self.last_outage, self.worker.db_lost_at) if t is not None]
        return not seen or time.monotonic() - max(seen) >= threshold_ms / 1000

    def log_config(self) -> None:
        c = self.config
        log.info("Reaper configuration: auto_requeue_claimed=%s, auto_fail_running=%s, "
                 "check_interval=%dms (%.1fs)", c.auto_requeue_stale_claimed,
                 c.auto_fail_stale_running, c.check_interval_ms, c.check_interval_ms / 1000)

    async def loop(self) -> None:
        """First pass at once, then one every check_interval_ms, until shutdown begins."""
        w = self.worker
        while not w.stopping:
            await self.run_pass()
            end = asyncio.get_running_loop().time() + self.config.check_interval_ms / 1000
            while not w.stopping and asyncio.get_running_loop().time() < end:
                await asyncio.sleep(min(0.25, self.config.check_interval_ms / 1000))

    async def run_pass(self) -> None:
        w = self.worker
        c = self.config
        tx = w.service_tx
        if (c.auto_requeue_stale_claimed and "requeue_stale_claimed" not in self.disabled
                and self._live_since_outage(c.claimed_stale_threshold_ms)):
            outcome = await requeue_stale_claimed(tx, c.claimed_stale_threshold_ms)
            if self._counted("requeue_stale_claimed", outcome) and outcome.ok_value > 0:
                log.info("Reaper requeued %d stale CLAIMED task(s)", outcome.ok_value)
        if (c.auto_fail_stale_running and "mark_stale_tasks_as_failed" not in self.disabled
                and self._live_since_outage(c.running_stale_threshold_ms)):
            outcome = await mark_stale_tasks_as_failed(tx, c.running_stale_threshold_ms,
                                                       w._after_finalize)
            if self._counted("mark_stale_tasks_as_failed", outcome) and outcome.ok_value > 0:
                log.warning("Reaper recovered %d stale RUNNING task(s)", outcome.ok_value)
                w.wake.set()
        expired = await expire_pending_tasks(tx)
        if expired.is_err():
            self._log_error("expire_pending_tasks", expired.err_value)
            if expired.err_value.retryable:
                self.last_outage = time.monotonic()
        elif expired.ok_value > 0:
            log.info("Reaper expired %d PENDING task(s) past good_until", expired.ok_value)
        await self._retention()

    async def _retention(self) -> None:
        now = time.monotonic()
        if self.next_retention is not None and now < self.next_retention:
            return
        self.next_retention = now + RETENTION_EVERY_S
        outcome = await prune_retention(self.worker.service_tx, self.config)
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
