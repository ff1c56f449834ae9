"""Waiting for a task's outcome by id (results-and-errors.md §8.1).

Shared by `TaskHandle.get()` and `PostgresBroker.get_result()`: the handle
adds its cache, the broker uses it as is. Waiting subscribes to `task_done`
through the broker's listener and re-reads the row on every wake-up, and at
least every 5 seconds in case a notification was lost; without a listener
it polls every 200 ms. Every failure comes back as a `TaskResult` error.
"""

from __future__ import annotations

import math
import threading
import time
from typing import TYPE_CHECKING, Any, NamedTuple

from horsies.codec import loads_json, task_result_from_json
from horsies.codes import OperationalErrorCode, OutcomeCode, RetrievalCode
from horsies.task_result import TaskError, TaskResult
from horsies.tasks.ids import is_uuid

if TYPE_CHECKING:
    from horsies.db.broker import PostgresBroker

_RECHECK_S = 5.0
_POLL_S = 0.2
_LISTENER_GRACE_S = 2.0
_TERMINAL_WITH_RESULT = {"COMPLETED", "FAILED", "EXPIRED"}


class Waited(NamedTuple):
    """An outcome, and whether it is final (read from a terminal task) and may be cached."""

    result: TaskResult[Any, TaskError]
    final: bool


def error_result(code: Any, message: str, **data: Any) -> TaskResult[Any, TaskError]:
    return TaskResult(err=TaskError(error_code=code, message=message, data=data or None))


def decode_result_text(text: str | None) -> TaskResult[Any, TaskError] | str:
    """A stored result text as a TaskResult, or why it cannot be decoded."""
    parsed = loads_json(text)
    if parsed.is_err():
        return f"stored result is not valid JSON: {parsed.err_value}"
    decoded = task_result_from_json(parsed.ok_value)
    if decoded.is_err():
        return f"stored result could not be decoded: {decoded.err_value}"
    return decoded.ok_value


def decode_stored_result(text: str | None) -> TaskResult[Any, TaskError]:
    """A stored result text as a TaskResult; RESULT_DESERIALIZATION_ERROR if invalid."""
    decoded = decode_result_text(text)
    if isinstance(decoded, str):
        return error_result(OperationalErrorCode.RESULT_DESERIALIZATION_ERROR, decoded)
    return decoded


def check_timeout(timeout_ms: object) -> None:
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


def not_found(task_id: str) -> Waited:
    return Waited(error_result(RetrievalCode.TASK_NOT_FOUND, f"task {task_id} not found",
                              task_id=task_id), final=False)


def _from_row(task_id: str, row: tuple[str, str | None] | None) -> Waited | None:
    """The outcome for a row, or None while the task is not terminal."""
    if row is None:
        return not_found(task_id)
    status, stored = row
    if status == "CANCELLED":
        return Waited(error_result(OutcomeCode.TASK_CANCELLED,
                                   f"task {task_id} was cancelled before completion",
                                   task_id=task_id), final=True)
    if status not in _TERMINAL_WITH_RESULT:
        return None
    if stored is None:
        return Waited(error_result(RetrievalCode.RESULT_NOT_AVAILABLE,
                                   f"task {task_id} is {status} but has no stored result",
                                   task_id=task_id, status=status), final=True)
    return Waited(decode_stored_result(stored), final=True)


def _timeout(task_id: str, deadline: _Deadline) -> Waited:
    return Waited(error_result(RetrievalCode.WAIT_TIMEOUT,
                               f"timed out waiting for task {task_id}; it may still be running",
                               task_id=task_id, timeout_ms=deadline.timeout_ms), final=False)


def _broker_error(task_id: str, exc: BaseException, deadline: _Deadline) -> Waited:
    return Waited(TaskResult(err=TaskError(
        error_code=OperationalErrorCode.BROKER_ERROR,
        message=f"could not read task {task_id}: {type(exc).__name__}: {exc}",
        data={"task_id": task_id, "timeout_ms": deadline.timeout_ms},
        exception=exc,
    )), final=False)


def wait_for_result(broker: PostgresBroker, task_id: str, timeout_ms: float | None) -> Waited:
    """Wait until the task is terminal or the timeout elapses (timeout_ms already checked)."""
    if not is_uuid(task_id):
        return not_found(task_id)  # no such id can exist: no query (lifecycle §7)
    deadline = _Deadline(timeout_ms)
    woken = threading.Event()
    # With the listener already connected, subscribing before the first read
    # makes one read enough: a completion after it is sure to wake us.
    listening = broker.listener.connected
    if listening:
        broker.listener.subscribe(task_id, woken.set)
    try:
        while True:
            outcome = _from_row(task_id, broker.task_result_row(task_id))
            if outcome is not None:
                return outcome
            if deadline.expired():
                return _timeout(task_id, deadline)
            if not listening:
                listening = True
                broker.listener.subscribe(task_id, woken.set)
                broker.listener.wait_connected(deadline.wait_slice(_LISTENER_GRACE_S))
                continue  # re-read: the task may have finished before LISTEN took effect
            cap = _RECHECK_S if broker.listener.connected else _POLL_S
            woken.wait(deadline.wait_slice(cap))
            woken.clear()
    except Exception as exc:  # noqa: BLE001 - every failure becomes a value
        return _broker_error(task_id, exc, deadline)
    finally:
        broker.listener.unsubscribe(task_id, woken.set)


async def wait_for_result_async(
    broker: PostgresBroker, task_id: str, timeout_ms: float | None
) -> Waited:
    """The coroutine twin of `wait_for_result`; CancelledError propagates."""
    import asyncio  # already loaded by the running loop; not at module level

    if not is_uuid(task_id):
        return not_found(task_id)
    deadline = _Deadline(timeout_ms)
    loop = asyncio.get_running_loop()
    woken = asyncio.Event()

    def wake() -> None:
        loop.call_soon_threadsafe(woken.set)

    listening = broker.listener.connected
    if listening:
        broker.listener.subscribe(task_id, wake)
    try:
        while True:
            outcome = _from_row(task_id, await broker.task_result_row_async(task_id))
            if outcome is not None:
                return outcome
            if deadline.expired():
                return _timeout(task_id, deadline)
            if not listening:
                listening = True
                broker.listener.subscribe(task_id, wake)
                await loop.run_in_executor(
                    None, broker.listener.wait_connected, deadline.wait_slice(_LISTENER_GRACE_S),
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
        return _broker_error(task_id, exc, deadline)
    finally:
        broker.listener.unsubscribe(task_id, wake)
