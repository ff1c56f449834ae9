"""`WorkflowHandle`: watching a started workflow (workflows.md §13).

Two error styles (§13.2): `status`, `results` and `tasks` wrap failures in
`HandleResult`; `get` and `result_for` fold them into a `TaskResult` error.
Every method has a sync form, run on the shared loop thread, and an `_async`
form. `asyncio.CancelledError` is never caught.
"""

from __future__ import annotations

# asyncio is imported inside the coroutines: `import horsies` must not load it.
import time
from collections.abc import Awaitable, Callable
from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Generic, TypeVar

import msgspec

from horsies.codec import loads_json, rehydrate_value
from horsies.codes import ContractCode, OperationalErrorCode, OutcomeCode, RetrievalCode
from horsies.result import Err, Ok, Result
from horsies.states import WorkflowStatus, WorkflowTaskStatus
from horsies.task_result import TaskError, TaskResult
from horsies.tasks.ids import is_uuid
from horsies.tasks.waiting import check_timeout, decode_stored_result, error_result
from horsies.workflows.context import SubWorkflowSummary

if TYPE_CHECKING:
    from horsies.db.broker import PostgresBroker
    from horsies.workflows.context import NodeKey
    from horsies.workflows.nodes import TaskNode

__all__ = [
    "HandleErrorCode",
    "HandleOperationError",
    "HandleResult",
    "WorkflowHandle",
    "WorkflowTaskInfo",
    "pause_workflow",
    "pause_workflow_sync",
    "resume_workflow",
    "resume_workflow_sync",
]

OutT = TypeVar("OutT")
T = TypeVar("T")
_RECHECK_S = 5.0
_POLL_S = 1.0


class HandleErrorCode(StrEnum):
    WORKFLOW_NOT_FOUND = "WORKFLOW_NOT_FOUND"
    DB_OPERATION_FAILED = "DB_OPERATION_FAILED"
    LOOP_RUNNER_FAILED = "LOOP_RUNNER_FAILED"
    INTERNAL_FAILED = "INTERNAL_FAILED"


class HandleOperationError(msgspec.Struct, frozen=True):
    code: HandleErrorCode
    message: str
    retryable: bool
    workflow_id: str
    exception: BaseException | None = None


HandleResult = Result[T, HandleOperationError]


class WorkflowTaskInfo(msgspec.Struct, frozen=True):
    """One node of a workflow, as `tasks()` reports it (§13.3)."""

    node_id: str | None
    index: int
    name: str
    status: WorkflowTaskStatus
    result: TaskResult[Any, TaskError] | None
    started_at: datetime | None
    completed_at: datetime | None
    sub_workflow_id: str | None = None
    sub_workflow_summary: SubWorkflowSummary[Any] | None = None


def _not_found(workflow_id: str) -> Err[HandleOperationError]:
    return Err(HandleOperationError(HandleErrorCode.WORKFLOW_NOT_FOUND,
                                    f"workflow {workflow_id} not found", False, workflow_id))


def _db_failed(workflow_id: str, exc: BaseException) -> Err[HandleOperationError]:
    from horsies.db.broker import is_transient

    return Err(HandleOperationError(HandleErrorCode.DB_OPERATION_FAILED,
                                    f"{type(exc).__name__}: {exc}", is_transient(exc),
                                    workflow_id, exc))


def _broker_error(workflow_id: str, exc: BaseException) -> TaskResult[Any, TaskError]:
    return TaskResult(err=TaskError(error_code=OperationalErrorCode.BROKER_ERROR,
                                    message=f"could not read workflow {workflow_id}: "
                                    f"{type(exc).__name__}: {exc}",
                                    data={"workflow_id": workflow_id}, exception=exc))


def _decode_error(text: str | None) -> TaskError | None:
    if text is None:
        return None
    parsed = loads_json(text)
    if parsed.is_err():
        return None
    value = rehydrate_value(parsed.ok_value)
    if value.is_err() or not isinstance(value.ok_value, TaskError):
        return None
    return value.ok_value


class WorkflowHandle(Generic[OutT]):
    """A started workflow, by id; built by start or directly from a stored id."""

    __slots__ = ("broker", "workflow_id")

    def __init__(self, workflow_id: str, broker: PostgresBroker) -> None:
        self.workflow_id = workflow_id
        self.broker = broker

    def __repr__(self) -> str:
        return f"WorkflowHandle({self.workflow_id!r})"

    # -- reads -------------------------------------------------------------------

    async def _fetch(self, name: str, **params: Any) -> list[tuple[Any, ...]]:
        from horsies.sql import queries

        pool = await self.broker.apool()
        async with pool.connection() as conn:
            cur = await conn.execute(queries[name], {"id": self.workflow_id, **params})
            return await cur.fetchall()

    async def status_async(self) -> HandleResult[WorkflowStatus]:
        import asyncio
        if not is_uuid(self.workflow_id):
            return _not_found(self.workflow_id)
        try:
            rows = await self._fetch("wf_status_get")
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001
            return _db_failed(self.workflow_id, exc)
        return Ok(WorkflowStatus(rows[0][0])) if rows else _not_found(self.workflow_id)

    async def tasks_async(self) -> HandleResult[list[WorkflowTaskInfo]]:
        import asyncio
        if not is_uuid(self.workflow_id):
            return _not_found(self.workflow_id)
        try:
            rows = await self._fetch("wf_tasks_get")
            if not rows and not (await self._fetch("wf_exists"))[0][0]:
                return _not_found(self.workflow_id)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001
            return _db_failed(self.workflow_id, exc)
        infos: list[WorkflowTaskInfo] = []
        for node_id, index, name, status, stored, started, completed, sub_id, summary in rows:
            decoded_summary = None
            if summary is not None:
                parsed = loads_json(summary)
                if parsed.is_err() or not isinstance(parsed.ok_value, dict):
                    return Err(HandleOperationError(
                        HandleErrorCode.DB_OPERATION_FAILED,
                        f"corrupt sub_workflow_summary on node {node_id!r}", False,
                        self.workflow_id))
                decoded_summary = SubWorkflowSummary.from_json(parsed.ok_value)
            infos.append(WorkflowTaskInfo(
                node_id, index, name, WorkflowTaskStatus(status),
                None if stored is None else decode_stored_result(stored),
                started, completed, sub_id, decoded_summary))
        return Ok(infos)

    async def results_async(self) -> HandleResult[dict[str, TaskResult[Any, TaskError]]]:
        tasks = await self.tasks_async()
        if tasks.is_err():
            return Err(tasks.err_value)
        return Ok({info.node_id: info.result for info in tasks.ok_value
                   if info.node_id is not None and info.result is not None})

    async def result_for_async(self, node: TaskNode[T] | NodeKey[T]
                               ) -> TaskResult[T, TaskError]:
        import asyncio
        node_id = getattr(node, "node_id", None)
        if node_id is None:
            return error_result(ContractCode.WORKFLOW_CTX_MISSING_ID, "node has no node_id: "
                                "give it an explicit node_id or read it after building "
                                "the spec")
        if not is_uuid(self.workflow_id):
            return _wf_not_found(self.workflow_id)
        try:
            rows = await self._fetch("wf_node_result_get", node_id=node_id)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001
            return _broker_error(self.workflow_id, exc)
        exists, _status, stored = rows[0]
        if not exists:
            return _wf_not_found(self.workflow_id)
        if stored is None:
            return error_result(RetrievalCode.RESULT_NOT_READY,
                                f"Task '{node_id}' has not completed yet in workflow "
                                f"'{self.workflow_id}'")
        return decode_stored_result(stored)

    async def get_async(self, timeout_ms: float | None = None) -> TaskResult[OutT, TaskError]:
        """Wait for the final answer (§13.4)."""
        import asyncio
        check_timeout(timeout_ms)
        if not is_uuid(self.workflow_id):
            return _wf_not_found(self.workflow_id)
        end = None if timeout_ms is None else time.monotonic() + max(timeout_ms, 0) / 1000
        loop = asyncio.get_running_loop()
        woken = asyncio.Event()

        def wake() -> None:
            loop.call_soon_threadsafe(woken.set)

        listener = self.broker.listener
        listener.subscribe(self.workflow_id, wake)
        try:
            while True:
                try:
                    rows = await self._fetch("wf_outcome_get")
                except asyncio.CancelledError:
                    raise
                except Exception as exc:  # noqa: BLE001
                    return _broker_error(self.workflow_id, exc)
                if not rows:
                    return _wf_not_found(self.workflow_id)
                answer = _answer(*rows[0])
                if answer is not None:
                    return answer
                remaining = None if end is None else end - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return error_result(RetrievalCode.WAIT_TIMEOUT, "Workflow did not "
                                        f"complete within {timeout_ms}ms")
                cap = _RECHECK_S if listener.connected else _POLL_S
                try:
                    await asyncio.wait_for(woken.wait(), cap if remaining is None
                                           else min(cap, remaining))
                except TimeoutError:
                    pass
                woken.clear()
        finally:
            listener.unsubscribe(self.workflow_id, wake)

    # -- control (§13.5, §13.7) -------------------------------------------------------

    async def pause_async(self) -> HandleResult[bool]:
        """RUNNING -> PAUSED (with every running descendant): Ok(True); Ok(False)
        when the workflow is not RUNNING."""
        return await _control(self.broker, self.workflow_id, "pause")

    async def resume_async(self) -> HandleResult[bool]:
        """PAUSED -> RUNNING (with every paused descendant), then what was held
        back moves on: Ok(True); Ok(False) when the workflow is not PAUSED."""
        return await _control(self.broker, self.workflow_id, "resume")

    async def cancel_async(self) -> HandleResult[None]:
        """PENDING/RUNNING/PAUSED -> CANCELLED with every open descendant; a
        finished workflow is left alone. Ok(None) either way."""
        done = await _control(self.broker, self.workflow_id, "cancel")
        return Ok(None) if done.is_ok() else Err(done.err_value)

    # -- sync forms --------------------------------------------------------------------

    def pause(self) -> HandleResult[bool]:
        return _wrapped(self.workflow_id, self.pause_async)

    def resume(self) -> HandleResult[bool]:
        return _wrapped(self.workflow_id, self.resume_async)

    def cancel(self) -> HandleResult[None]:
        return _wrapped(self.workflow_id, self.cancel_async)

    def status(self) -> HandleResult[WorkflowStatus]:
        return _wrapped(self.workflow_id, self.status_async)

    def tasks(self) -> HandleResult[list[WorkflowTaskInfo]]:
        return _wrapped(self.workflow_id, self.tasks_async)

    def results(self) -> HandleResult[dict[str, TaskResult[Any, TaskError]]]:
        return _wrapped(self.workflow_id, self.results_async)

    def result_for(self, node: TaskNode[T] | NodeKey[T]) -> TaskResult[T, TaskError]:
        return _folded(self.workflow_id, lambda: self.result_for_async(node))

    def get(self, timeout_ms: float | None = None) -> TaskResult[OutT, TaskError]:
        check_timeout(timeout_ms)
        return _folded(self.workflow_id, lambda: self.get_async(timeout_ms))


async def _control(broker: PostgresBroker, workflow_id: str, operation: str
                   ) -> HandleResult[bool]:
    """One control operation in one transaction (workflows/control.py)."""
    import asyncio

    from horsies.workflows import control

    if not is_uuid(workflow_id):
        return _not_found(workflow_id)
    action = {"pause": control.pause, "resume": control.resume,
              "cancel": control.cancel}[operation]
    try:
        await broker.ensure_schema_async()
        pool = await broker.apool()
        async with pool.connection() as conn, conn.transaction():
            changed = await action(conn, workflow_id, getattr(broker, "app", None))
    except asyncio.CancelledError:
        raise
    except Exception as exc:  # noqa: BLE001
        return _db_failed(workflow_id, exc)
    return _not_found(workflow_id) if changed is None else Ok(changed)


async def pause_workflow(broker: PostgresBroker, workflow_id: str) -> HandleResult[bool]:
    """`WorkflowHandle(workflow_id, broker).pause_async()` (§13.6)."""
    return await _control(broker, workflow_id, "pause")


async def resume_workflow(broker: PostgresBroker, workflow_id: str) -> HandleResult[bool]:
    """`WorkflowHandle(workflow_id, broker).resume_async()` (§13.6)."""
    return await _control(broker, workflow_id, "resume")


def pause_workflow_sync(broker: PostgresBroker, workflow_id: str) -> HandleResult[bool]:
    """`WorkflowHandle(workflow_id, broker).pause()` (§13.6)."""
    return WorkflowHandle[Any](workflow_id, broker).pause()


def resume_workflow_sync(broker: PostgresBroker, workflow_id: str) -> HandleResult[bool]:
    """`WorkflowHandle(workflow_id, broker).resume()` (§13.6)."""
    return WorkflowHandle[Any](workflow_id, broker).resume()


def _wf_not_found(workflow_id: str) -> TaskResult[Any, TaskError]:
    return error_result(RetrievalCode.WORKFLOW_NOT_FOUND, f"workflow {workflow_id} not found",
                        workflow_id=workflow_id)


def _answer(status: str, stored: str | None, error: str | None
            ) -> TaskResult[Any, TaskError] | None:
    """The final answer for a workflow row, or None while it runs (§13.4 steps 2-4)."""
    if status == "COMPLETED":
        return decode_stored_result(stored)
    if status in ("FAILED", "CANCELLED"):
        decoded = _decode_error(error)
        if decoded is not None:
            return TaskResult(err=decoded)
        if status == "FAILED":
            return error_result(OutcomeCode.WORKFLOW_FAILED, "Workflow failed")
        return error_result(OutcomeCode.WORKFLOW_CANCELLED, "Workflow cancelled")
    if status == "PAUSED":
        return error_result(OutcomeCode.WORKFLOW_PAUSED,
                            "Workflow is paused awaiting intervention")
    return None


def _wrapped(workflow_id: str, call: Callable[[], Awaitable[HandleResult[T]]]
             ) -> HandleResult[T]:
    from horsies.workflows.bridge import run_sync

    async def run() -> HandleResult[T]:
        return await call()

    try:
        return run_sync(run())
    except Exception as exc:  # noqa: BLE001
        return Err(HandleOperationError(HandleErrorCode.LOOP_RUNNER_FAILED,
                                        f"{type(exc).__name__}: {exc}", False, workflow_id,
                                        exc))


def _folded(workflow_id: str, call: Callable[[], Awaitable[TaskResult[T, TaskError]]]
            ) -> TaskResult[T, TaskError]:
    from horsies.workflows.bridge import run_sync

    async def run() -> TaskResult[T, TaskError]:
        return await call()

    try:
        return run_sync(run())
    except Exception as exc:  # noqa: BLE001
        return _broker_error(workflow_id, exc)
