"""Result writing: finalize batches of attempts in one transaction each.

Every write is guarded by `status = 'RUNNING'` on rows locked `FOR UPDATE`
in id order, so a reaper that got there first turns a finalization into a
logged no-op and concurrent lockers cannot deadlock.
"""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import orjson
import psycopg

from horsies.sql import queries, queue_channel
from horsies.worker import protocol

log = logging.getLogger("horsies.worker")

MAX_BATCH = 500
WORKER_CRASHED = "WORKER_CRASHED"


@dataclass(frozen=True, slots=True)
class Ending:
    """How one attempt ended: a child's Result, or a crash seen by the main process."""

    task_id: str
    result_json: str
    ok: bool
    error_code: str | None
    error_message: str | None
    failed_reason: str | None = None  # set for crashes (attempt outcome WORKER_FAILURE)

    @classmethod
    def from_result(cls, message: protocol.Result) -> Ending:
        return cls(message.task_id, message.result_json, message.ok, message.error_code,
                   message.error_message)


def retry_delay_seconds(policy: dict[str, Any], retry_number: int) -> float:
    """Delay before retry `retry_number` (1-based) of a stored policy snapshot."""
    intervals = policy.get("intervals") or [60]
    if policy.get("backoff_strategy") == "exponential":
        delay = float(intervals[0]) * 2 ** (retry_number - 1)
    else:
        delay = float(intervals[min(retry_number - 1, len(intervals) - 1)])
    if policy.get("jitter", True):
        delay += random.uniform(-0.25 * delay, 0.25 * delay)
    return max(1.0, delay)


def next_retry_at(row: dict[str, Any], error_code: str | None) -> datetime | None:
    """The retry decision on a locked row: when to retry, or None to finalize."""
    if error_code is None or row["max_retries"] <= 0 or row["retry_count"] >= row["max_retries"]:
        return None
    try:
        options = orjson.loads(row["task_options"]) if row["task_options"] else {}
        policy = options.get("retry_policy") or {}
        if error_code not in (policy.get("auto_retry_for") or ()):
            return None
        now: datetime = row["db_now"]
        good_until: datetime | None = row["good_until"]
        if good_until is not None and good_until <= now:
            return None
        when = now + timedelta(seconds=retry_delay_seconds(policy, row["retry_count"] + 1))
    except Exception as exc:  # noqa: BLE001 - a malformed stored policy must not stop the writer
        log.warning("Task %s has an unreadable retry policy in task_options (%s: %s); "
                    "no retry scheduled", row.get("id"), type(exc).__name__, exc)
        return None
    if good_until is not None and when >= good_until:
        return None
    return when


class Plan:
    """The set-based statements one finalization transaction runs."""

    def __init__(self) -> None:
        self.complete: dict[str, list[Any]] = {"ids": [], "results": []}
        self.fail: dict[str, list[Any]] = {"ids": [], "results": [], "error_codes": [],
                                           "failed_reasons": []}
        self.retry: dict[str, list[Any]] = {"ids": [], "next_retry_ats": []}
        self.attempts: dict[str, list[Any]] = {k: [] for k in (
            "task_ids", "attempts", "outcomes", "will_retries", "started_ats", "error_codes",
            "error_messages", "failed_reasons", "worker_ids", "worker_hostnames", "worker_pids",
            "worker_process_names")}
        self.retries: list[tuple[str, str, datetime]] = []  # (task id, queue, when)
        self.retry_numbers: dict[str, int] = {}  # task id -> its new retry_count
        self.queues: dict[str, str] = {}  # queue -> one task id, for capacity notices

    def add(self, row: dict[str, Any], ending: Ending) -> None:
        when = None if ending.ok else next_retry_at(row, ending.error_code)
        if ending.ok:
            self.complete["ids"].append(ending.task_id)
            self.complete["results"].append(ending.result_json)
        elif when is not None:
            self.retry["ids"].append(ending.task_id)
            self.retry["next_retry_ats"].append(when)
            self.retries.append((ending.task_id, row["queue_name"], when))
            self.retry_numbers[ending.task_id] = row["retry_count"] + 1
        else:
            self.fail["ids"].append(ending.task_id)
            self.fail["results"].append(ending.result_json)
            self.fail["error_codes"].append(ending.error_code)
            self.fail["failed_reasons"].append(ending.failed_reason)
        self._attempt(row, ending, will_retry=when is not None)
        self.queues.setdefault(row["queue_name"], ending.task_id)

    def _attempt(self, row: dict[str, Any], ending: Ending, *, will_retry: bool) -> None:
        crashed = ending.failed_reason is not None
        outcome = "COMPLETED" if ending.ok else ("WORKER_FAILURE" if crashed else "FAILED")
        values = (
            ending.task_id, row["retry_count"] + 1, outcome, will_retry, row["started_at"],
            ending.error_code, ending.error_message, ending.failed_reason,
            row["claimed_by_worker_id"], row["worker_hostname"], row["worker_pid"],
            row["worker_process_name"],
        )
        for key, value in zip(self.attempts, values, strict=True):
            self.attempts[key].append(value)

    async def execute(self, conn: psycopg.AsyncConnection[Any]) -> None:
        for name, params in (("task_complete_many", self.complete),
                             ("task_fail_many", self.fail),
                             ("task_retry_many", self.retry)):
            if params["ids"]:
                await conn.execute(queries[name], params)
        if self.attempts["task_ids"]:
            await conn.execute(queries["task_attempt_upsert_many"], self.attempts)
        if self.queues:
            any_id = next(iter(self.queues.values()))
            channels = ["task_new"] + [queue_channel(q) for q in self.queues]
            payloads = [f"capacity:{any_id}"] + [f"capacity:{i}" for i in self.queues.values()]
            await conn.execute(queries["queue_notify_many"],
                               {"channels": channels, "payloads": payloads})


async def _locked_rows(
    conn: psycopg.AsyncConnection[Any], sql: str, params: dict[str, Any]
) -> dict[str, dict[str, Any]]:
    cur = await conn.execute(sql, params)
    rows = await cur.fetchall()  # before reading the description (it comes with the rows)
    names = [d.name for d in cur.description or ()]
    return {row[0]: dict(zip(names, row, strict=True)) for row in rows}


async def finalize_batch(conn: psycopg.AsyncConnection[Any], endings: list[Ending]) -> Plan:
    """Phase 1 for a batch of child results; returns what was written.

    `conn` is in autocommit mode: a batch of successes, the common case, is one
    statement and one round trip; a batch with an error needs the retry decision
    on the locked rows, in a transaction of several statements.
    """
    if all(e.ok for e in endings):
        return await _complete_batch(conn, endings)
    plan = Plan()
    async with conn.transaction():
        rows = await _locked_rows(conn, queries["task_finalize_lock_many"],
                                  {"ids": [e.task_id for e in endings]})
        for ending in endings:
            row = rows.get(ending.task_id)
            if row is None:
                log.warning("Task %s finalize skipped: status is no longer RUNNING",
                            ending.task_id)
                continue
            plan.add(row, ending)
        await plan.execute(conn)
    return plan


async def _complete_batch(conn: psycopg.AsyncConnection[Any], endings: list[Ending]) -> Plan:
    cur = await conn.execute(queries["task_complete_batch"], {
        "ids": [e.task_id for e in endings], "results": [e.result_json for e in endings]})
    done = {row[0] for row in await cur.fetchall()}
    for ending in endings:
        if ending.task_id not in done:
            log.warning("Task %s finalize skipped: status is no longer RUNNING", ending.task_id)
    return Plan()


def crash_result_json(
    task_id: str, reason: str, row: dict[str, Any], worker_id: str,
    extra: dict[str, Any] | None = None,
) -> str:
    """The stored WORKER_CRASHED result (lifecycle-and-schema.md §3.4); `extra`
    adds the reaper's threshold fields to `data`."""
    from horsies.codec import serialize_error_payload
    from horsies.codes import OperationalErrorCode
    from horsies.task_result import TaskError, TaskResult

    started = row.get("started_at")
    data = {
        "worker_id": worker_id,
        "worker_hostname": row.get("worker_hostname"),
        "worker_pid": row.get("worker_pid"),
        "started_at": started.isoformat() if started is not None else None,
        "detected_at": row["db_now"].isoformat(),
        **(extra or {}),
    }
    error = TaskError(error_code=OperationalErrorCode.WORKER_CRASHED, message=reason, data=data)
    return serialize_error_payload(TaskResult(err=error))


async def finalize_crash(
    conn: psycopg.AsyncConnection[Any], task_id: str, pid: int, worker_id: str, reason: str
) -> Plan:
    """The crash path for a task whose child died: retry or fail with WORKER_CRASHED."""
    plan = Plan()
    async with conn.transaction():
        rows = await _locked_rows(conn, queries["task_crash_lock"],
                                  {"id": task_id, "worker_id": worker_id, "pid": pid})
        row = rows.get(task_id)
        if row is None:
            return plan
        ending = Ending(task_id, crash_result_json(task_id, reason, row, worker_id), False,
                        WORKER_CRASHED, reason, failed_reason=reason)
        plan.add(row, ending)
        await plan.execute(conn)
    return plan
