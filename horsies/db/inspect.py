"""Reading tasks and workers for the broker's inspection methods (monitoring.md §2).

The functions take a connection and let psycopg errors through; the broker
turns them into error values. `TaskInfo` is built here for both
`PostgresBroker.get_task_info()` and `TaskHandle.info()`.
"""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg.rows import dict_row

from horsies.info import BrokerErrorCode, BrokerOperationError, TaskAttemptInfo, TaskInfo
from horsies.result import Err, Ok
from horsies.sql import queries
from horsies.states import TaskAttemptOutcome, TaskStatus
from horsies.tasks.waiting import decode_result_text

Row = tuple[Any, ...]


def failure(code: BrokerErrorCode, message: str,
            exc: BaseException | None = None) -> Err[BrokerOperationError]:
    """An error value; retryable only when the cause is a transient connection failure."""
    from horsies.db.broker import is_transient  # the broker imports this module

    return Err(BrokerOperationError(code=code, message=message,
                                    retryable=exc is not None and is_transient(exc),
                                    exception=exc))


# -- task info ----------------------------------------------------------------


def task_info_rows(conn: psycopg.Connection[Any], task_id: str,
                   attempts: bool) -> tuple[Row | None, list[Row]]:
    """The task row and, when asked and the task exists, its stored attempts."""
    row = conn.execute(queries["task_info_get"], {"id": task_id}).fetchone()
    if row is None or not attempts:
        return row, []
    return row, conn.execute(queries["task_attempts_get"], {"id": task_id}).fetchall()


async def task_info_rows_async(conn: psycopg.AsyncConnection[Any], task_id: str,
                               attempts: bool) -> tuple[Row | None, list[Row]]:
    cur = await conn.execute(queries["task_info_get"], {"id": task_id})
    row = await cur.fetchone()
    if row is None or not attempts:
        return row, []
    cur = await conn.execute(queries["task_attempts_get"], {"id": task_id})
    return row, await cur.fetchall()


def build_task_info(
    row: Row | None, stored_attempts: list[Row], *, include_result: bool,
    include_failed_reason: bool, include_attempts: bool,
) -> Ok[TaskInfo | None] | Err[BrokerOperationError]:
    """The rows of `task_info_rows` as a TaskInfo; Err when the stored result is invalid."""
    if row is None:
        return Ok(None)
    result = None
    if include_result and row[18] is not None:
        decoded = decode_result_text(row[18])
        if isinstance(decoded, str):
            return failure(BrokerErrorCode.TASK_INFO_QUERY_FAILED,
                           f"task {row[0]}: {decoded}")
        result = decoded
    return Ok(TaskInfo(
        task_id=row[0], task_name=row[1], status=TaskStatus(row[2]), queue_name=row[3],
        priority=row[4], retry_count=row[5], max_retries=row[6], next_retry_at=row[7],
        sent_at=row[8], enqueued_at=row[9], claimed_at=row[10], started_at=row[11],
        completed_at=row[12], failed_at=row[13], worker_hostname=row[14],
        worker_pid=row[15], worker_process_name=row[16], error_code=row[17],
        result=result,
        failed_reason=row[19] if include_failed_reason else None,
        attempts=_attempts(row, stored_attempts) if include_attempts else None,
    ))


def _attempts(task: Row, stored: list[Row]) -> list[TaskAttemptInfo]:
    """Stored attempts, newest first, plus a final success built from the task row:
    an attempt that completed the task writes no row of its own (runs.md §4)."""
    found = [_attempt(a) for a in stored]
    status, retry_count, started, completed = task[2], task[5], task[11], task[12]
    final = retry_count + 1
    if status == "COMPLETED" and started is not None and all(a.attempt != final for a in found):
        found.insert(0, TaskAttemptInfo(
            task_id=task[0], attempt=final, outcome=TaskAttemptOutcome.COMPLETED,
            will_retry=False, started_at=started, finished_at=completed, error_code=None,
            error_message=None, failed_reason=None, worker_id=task[20],
            worker_hostname=task[14], worker_pid=task[15], worker_process_name=task[16]))
    return found


def _attempt(row: Row) -> TaskAttemptInfo:
    return TaskAttemptInfo(
        task_id=row[0], attempt=row[1], outcome=TaskAttemptOutcome(row[2]), will_retry=row[3],
        started_at=row[4], finished_at=row[5], error_code=row[6], error_message=row[7],
        failed_reason=row[8], worker_id=row[9], worker_hostname=row[10], worker_pid=row[11],
        worker_process_name=row[12],
    )


# -- monitoring reads (§2.3-§2.5) ----------------------------------------------


async def read_dicts(conn: psycopg.AsyncConnection[Any], query: str,
                     params: dict[str, Any]) -> list[dict[str, Any]]:
    """One named query's rows as dicts keyed by its column names."""
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(queries[query], params)
        return await cur.fetchall()
