"""TaskHandle: wait for a task's outcome and read its metadata, never raising.

Waiting subscribes to `task_done` through the broker's listener and re-reads
the row on every wake-up, and at least every 5 seconds in case a
notification was lost; without a listener it polls every 200 ms.
"""

from __future__ import annotations

import math
import threading
import time
from datetime import datetime
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from horsies.codec import loads_json, task_result_from_json
from horsies.codes import OperationalErrorCode, OutcomeCode, RetrievalCode
from horsies.info import BrokerErrorCode, BrokerOperationError, TaskAttemptInfo, TaskInfo
from horsies.result import Err, Ok
from horsies.states import TaskAttemptOutcome, TaskStatus
from horsies.task_result import TaskError, TaskResult
from horsies.tasks.ids import is_uuid

if TYPE_CHECKING:
    from horsies.app import Horsies

T = TypeVar("T")

_RECHECK_S = 5.0
_POLL_S = 0.2
_LISTENER_GRACE_S = 2.0
_TERMINAL_WITH_RESULT = {"COMPLETED", "FAILED", "EXPIRED"}


def _err(code: Any, message: str, **data: Any) -> TaskResult[Any, TaskError]:
    return TaskResult(err=TaskError(error_code=code, message=message, data=data or None))


def decode_stored_result(text: str | None) -> TaskResult[Any, TaskError]:
    """A stored result text as a TaskResult; RESULT_DESERIALIZATION_ERROR if invalid."""
    parsed = loads_json(text)
    if parsed.is_err():
        return _err(
            OperationalErrorCode.RESULT_DESERIALIZATION_ERROR,
            f"stored result is not valid JSON: {parsed.err_value}",
        )
    decoded = task_result_from_json(parsed.ok_value)
    if decoded.is_err():
        return _err(
            OperationalErrorCode.RESULT_DESERIALIZATION_ERROR,
            f"stored result could not be decoded: {decoded.err_value}",
        )
    return decoded.ok_value


def _check_timeout(timeout_ms: object) -> None:
    """A timeout of the wrong type is a programming error: raised, never a result value."""
    if timeout_ms is None:
        return
    if isinstance(timeout_ms, bool) or not isinstance(timeout_ms, (int, float)):
        raise TypeError(
            f"timeout_ms must be an int, a float or None (got {type(timeout_ms).__name__} "
            f"{timeout_ms!r})"
        )
    if math.isnan(timeout_ms):
        raise ValueError("timeout_ms must be a number of milliseconds (got nan)")


class _Deadline:
    def __init__(self, timeout_ms: float | None) -> None:
        self.timeout_ms = timeout_ms
        self._end = None if timeout_ms is None else time.monotonic() + max(timeout_ms, 0) / 1000

    def remaining(self) -> float | None:
        return None if self._end is None else max(0.0, self._end - time.monotonic())

    def expired(self) -> bool:
        remaining = self.remaining()
        return remaining is not None and remaining <= 0

    def wait_slice(self, cap: float) -> float:
        remaining = self.remaining()
        return cap if remaining is None else min(cap, remaining)


class TaskHandle(Generic[T]):
    """A reference to one task by id."""

    __slots__ = ("_app", "_broker_mode", "_cached", "task_id")

    def __init__(self, task_id: str, app: Horsies | None = None, broker_mode: bool = False) -> None:
        self.task_id = task_id
        self._app = app
        self._broker_mode = broker_mode
        self._cached: TaskResult[T, TaskError] | None = None

    def __repr__(self) -> str:
        return f"TaskHandle({self.task_id!r})"

    def set_immediate_result(self, result: TaskResult[T, TaskError]) -> None:
        self._cached = result

    @property
    def _has_broker(self) -> bool:
        return self._app is not None and self._broker_mode

    # -- get --------------------------------------------------------------

    def _from_row(self, row: tuple[str, str | None] | None) -> TaskResult[Any, TaskError] | None:
        """The outcome for a row, or None while the task is not terminal."""
        if row is None:
            return _err(RetrievalCode.TASK_NOT_FOUND, f"task {self.task_id} not found",
                        task_id=self.task_id)
        status, stored = row
        if status == "CANCELLED":
            outcome = _err(OutcomeCode.TASK_CANCELLED,
                           f"task {self.task_id} was cancelled before completion",
                           task_id=self.task_id)
        elif status in _TERMINAL_WITH_RESULT:
            outcome = (
                decode_stored_result(stored) if stored is not None else _err(
                    RetrievalCode.RESULT_NOT_AVAILABLE,
                    f"task {self.task_id} is {status} but has no stored result",
                    task_id=self.task_id, status=status,
                )
            )
        else:
            return None
        self._cached = outcome
        return outcome

    def _precheck(self) -> TaskResult[Any, TaskError] | None:
        if self._cached is not None:
            return self._cached
        if not self._has_broker:
            self._cached = _err(RetrievalCode.RESULT_NOT_AVAILABLE,
                                "this handle has no broker and no local result")
            return self._cached
        if not is_uuid(self.task_id):
            return _err(RetrievalCode.TASK_NOT_FOUND, f"task {self.task_id} not found",
                        task_id=self.task_id)
        return None

    def _timeout(self, deadline: _Deadline) -> TaskResult[Any, TaskError]:
        return _err(RetrievalCode.WAIT_TIMEOUT,
                    f"timed out waiting for task {self.task_id}; it may still be running",
                    task_id=self.task_id, timeout_ms=deadline.timeout_ms)

    def _broker_error(self, exc: BaseException, deadline: _Deadline) -> TaskResult[Any, TaskError]:
        return TaskResult(err=TaskError(
            error_code=OperationalErrorCode.BROKER_ERROR,
            message=f"could not read task {self.task_id}: {type(exc).__name__}: {exc}",
            data={"task_id": self.task_id, "timeout_ms": deadline.timeout_ms},
            exception=exc,
        ))

    def get(self, timeout_ms: float | None = None) -> TaskResult[T, TaskError]:
        """Wait for the task to finish and return its result (or a retrieval error)."""
        _check_timeout(timeout_ms)
        early = self._precheck()
        if early is not None:
            return early
        assert self._app is not None
        broker = self._app.get_broker()
        deadline = _Deadline(timeout_ms)
        woken = threading.Event()
        # With the listener already connected, subscribing before the first read
        # makes one read enough: a completion after it is sure to wake us.
        listening = broker.listener.connected
        if listening:
            broker.listener.subscribe(self.task_id, woken.set)
        try:
            while True:
                row = broker.task_result_row(self.task_id)
                outcome = self._from_row(row)
                if outcome is not None:
                    return outcome
                if deadline.expired():
                    return self._timeout(deadline)
                if not listening:
                    listening = True
                    broker.listener.subscribe(self.task_id, woken.set)
                    broker.listener.wait_connected(deadline.wait_slice(_LISTENER_GRACE_S))
                    continue  # re-read: the task may have finished before LISTEN took effect
                cap = _RECHECK_S if broker.listener.connected else _POLL_S
                woken.wait(deadline.wait_slice(cap))
                woken.clear()
        except Exception as exc:  # noqa: BLE001 - every failure becomes a value
            return self._broker_error(exc, deadline)
        finally:
            broker.listener.unsubscribe(self.task_id, woken.set)

    async def get_async(self, timeout_ms: float | None = None) -> TaskResult[T, TaskError]:
        import asyncio  # already loaded by the running loop; not at module level

        _check_timeout(timeout_ms)
        early = self._precheck()
        if early is not None:
            return early
        assert self._app is not None
        broker = self._app.get_broker()
        deadline = _Deadline(timeout_ms)
        loop = asyncio.get_running_loop()
        woken = asyncio.Event()

        def wake() -> None:
            loop.call_soon_threadsafe(woken.set)

        listening = broker.listener.connected
        if listening:
            broker.listener.subscribe(self.task_id, wake)
        try:
            while True:
                row = await broker.task_result_row_async(self.task_id)
                outcome = self._from_row(row)
                if outcome is not None:
                    return outcome
                if deadline.expired():
                    return self._timeout(deadline)
                if not listening:
                    listening = True
                    broker.listener.subscribe(self.task_id, wake)
                    await loop.run_in_executor(
                        None, broker.listener.wait_connected,
                        deadline.wait_slice(_LISTENER_GRACE_S),
                    )
                    continue
                cap = _RECHECK_S if broker.listener.connected else _POLL_S
                try:
                    await asyncio.wait_for(woken.wait(), deadline.wait_slice(cap))
                except TimeoutError:
                    pass
                woken.clear()
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001
            return self._broker_error(exc, deadline)
        finally:
            broker.listener.unsubscribe(self.task_id, wake)

    # -- info -------------------------------------------------------------

    def _no_broker(self) -> Err[BrokerOperationError]:
        return Err(BrokerOperationError(
            code=BrokerErrorCode.NO_BROKER, message="this handle has no broker", retryable=False,
        ))

    def _info_failed(self, exc: BaseException | None, message: str) -> Err[BrokerOperationError]:
        from horsies.db.broker import is_transient

        return Err(BrokerOperationError(
            code=BrokerErrorCode.TASK_INFO_QUERY_FAILED, message=message,
            retryable=exc is not None and is_transient(exc), exception=exc,
        ))

    def info(
        self, *, include_result: bool = False, include_failed_reason: bool = False,
        include_attempts: bool = False,
    ) -> Ok[TaskInfo | None] | Err[BrokerOperationError]:
        if not self._has_broker:
            return self._no_broker()
        if not is_uuid(self.task_id):
            return Ok(None)
        assert self._app is not None
        try:
            row, attempts = self._app.get_broker().task_info_rows(
                self.task_id, attempts=include_attempts)
        except Exception as exc:  # noqa: BLE001
            return self._info_failed(exc, f"reading task {self.task_id} failed: {exc}")
        return self._build_info(row, attempts, include_result, include_failed_reason,
                                include_attempts)

    async def info_async(
        self, *, include_result: bool = False, include_failed_reason: bool = False,
        include_attempts: bool = False,
    ) -> Ok[TaskInfo | None] | Err[BrokerOperationError]:
        if not self._has_broker:
            return self._no_broker()
        if not is_uuid(self.task_id):
            return Ok(None)
        assert self._app is not None
        try:
            row, attempts = await self._app.get_broker().task_info_rows_async(
                self.task_id, attempts=include_attempts)
        except Exception as exc:  # noqa: BLE001
            return self._info_failed(exc, f"reading task {self.task_id} failed: {exc}")
        return self._build_info(row, attempts, include_result, include_failed_reason,
                                include_attempts)

    def _build_info(
        self, row: tuple[Any, ...] | None, attempts: list[tuple[Any, ...]],
        include_result: bool, include_failed_reason: bool, include_attempts: bool,
    ) -> Ok[TaskInfo | None] | Err[BrokerOperationError]:
        if row is None:
            return Ok(None)
        result = None
        if include_result and row[18] is not None:
            parsed = loads_json(row[18])
            if parsed.is_err():
                return self._info_failed(None, f"stored result of {self.task_id} is invalid: "
                                               f"{parsed.err_value}")
            decoded = task_result_from_json(parsed.ok_value)
            if decoded.is_err():
                return self._info_failed(None, f"stored result of {self.task_id} is invalid: "
                                               f"{decoded.err_value}")
            result = decoded.ok_value
        return Ok(TaskInfo(
            task_id=row[0], task_name=row[1], status=TaskStatus(row[2]), queue_name=row[3],
            priority=row[4], retry_count=row[5], max_retries=row[6], next_retry_at=row[7],
            sent_at=row[8], enqueued_at=row[9], claimed_at=row[10], started_at=row[11],
            completed_at=row[12], failed_at=row[13], worker_hostname=row[14],
            worker_pid=row[15], worker_process_name=row[16], error_code=row[17],
            result=result,
            failed_reason=row[19] if include_failed_reason else None,
            attempts=_attempts(row, attempts) if include_attempts else None,
        ))


def _attempts(task: tuple[Any, ...], stored: list[tuple[Any, ...]]) -> list[TaskAttemptInfo]:
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


def _attempt(row: tuple[Any, ...]) -> TaskAttemptInfo:
    started: datetime = row[4]
    return TaskAttemptInfo(
        task_id=row[0], attempt=row[1], outcome=TaskAttemptOutcome(row[2]), will_retry=row[3],
        started_at=started, finished_at=row[5], error_code=row[6], error_message=row[7],
        failed_reason=row[8], worker_id=row[9], worker_hostname=row[10], worker_pid=row[11],
        worker_process_name=row[12],
    )
