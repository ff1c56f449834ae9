"""TaskHandle: wait for a task's outcome and read its metadata, never raising.

Waiting is `horsies.tasks.waiting` (shared with `PostgresBroker.get_result`);
the handle adds its cache (results-and-errors.md §8.2). `info()` is the
broker's `get_task_info()` for the handle's task.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Generic, TypeVar

from horsies.codes import RetrievalCode
from horsies.info import BrokerErrorCode, BrokerOperationError, TaskInfo
from horsies.result import Err, Ok
from horsies.task_result import TaskError, TaskResult
from horsies.tasks.waiting import (
    Waited,
    check_timeout,
    error_result,
    wait_for_result,
    wait_for_result_async,
)

if TYPE_CHECKING:
    from horsies.app import Horsies

__all__ = ["TaskHandle"]

T = TypeVar("T")


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

    def _precheck(self) -> TaskResult[Any, TaskError] | None:
        if self._cached is not None:
            return self._cached
        if not self._has_broker:
            self._cached = error_result(RetrievalCode.RESULT_NOT_AVAILABLE,
                                        "this handle has no broker and no local result")
            return self._cached
        return None

    def _keep(self, waited: Waited) -> TaskResult[T, TaskError]:
        """Cache what a terminal task gave; timeouts, missing rows and errors may change."""
        if waited.final:
            self._cached = waited.result
        return waited.result

    def get(self, timeout_ms: float | None = None) -> TaskResult[T, TaskError]:
        """Wait for the task to finish and return its result (or a retrieval error)."""
        check_timeout(timeout_ms)
        early = self._precheck()
        if early is not None:
            return early
        assert self._app is not None
        return self._keep(wait_for_result(self._app.get_broker(), self.task_id, timeout_ms))

    async def get_async(self, timeout_ms: float | None = None) -> TaskResult[T, TaskError]:
        check_timeout(timeout_ms)
        early = self._precheck()
        if early is not None:
            return early
        assert self._app is not None
        waited = await wait_for_result_async(self._app.get_broker(), self.task_id, timeout_ms)
        return self._keep(waited)

    # -- info -------------------------------------------------------------

    def _no_broker(self) -> Err[BrokerOperationError]:
        return Err(BrokerOperationError(
            code=BrokerErrorCode.NO_BROKER, message="this handle has no broker", retryable=False,
        ))

    def info(
        self, *, include_result: bool = False, include_failed_reason: bool = False,
        include_attempts: bool = False,
    ) -> Ok[TaskInfo | None] | Err[BrokerOperationError]:
        if not self._has_broker:
            return self._no_broker()
        assert self._app is not None
        return self._app.get_broker().get_task_info(
            self.task_id, include_result=include_result,
            include_failed_reason=include_failed_reason, include_attempts=include_attempts)

    async def info_async(
        self, *, include_result: bool = False, include_failed_reason: bool = False,
        include_attempts: bool = False,
    ) -> Ok[TaskInfo | None] | Err[BrokerOperationError]:
        if not self._has_broker:
            return self._no_broker()
        assert self._app is not None
        return await self._app.get_broker().get_task_info_async(
            self.task_id, include_result=include_result,
            include_failed_reason=include_failed_reason, include_attempts=include_attempts)
