"""Starting a workflow (workflows.md §12): prevalidation, then one transaction
that writes the workflow row, every node and the roots' task rows.

Start never raises for expected failures: it returns `Err(WorkflowStartError)`.
"""

from __future__ import annotations

# asyncio is imported inside the coroutines: `import horsies` must not load it.
import uuid
from datetime import UTC, datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any, TypeAlias, TypeVar

import msgspec
import orjson

from horsies.result import Err, Ok, Result
from horsies.tasks.ids import is_uuid, new_task_id

if TYPE_CHECKING:
    from horsies.db.broker import PostgresBroker
    from horsies.errors import HorsiesError
    from horsies.workflows.handle import WorkflowHandle
    from horsies.workflows.spec import WorkflowSpec

__all__ = [
    "Parent",
    "Plan",
    "WorkflowStartError",
    "WorkflowStartErrorCode",
    "WorkflowStartResult",
    "one_line",
    "retry_start_spec",
    "retry_start_spec_async",
    "start_spec",
    "start_spec_async",
    "start_workflow",
    "start_workflow_async",
]

_ATTEMPTS_WITH_RESEND = 4


class WorkflowStartErrorCode(StrEnum):
    BROKER_NOT_CONFIGURED = "BROKER_NOT_CONFIGURED"
    VALIDATION_FAILED = "VALIDATION_FAILED"
    ENQUEUE_FAILED = "ENQUEUE_FAILED"
    INTERNAL_FAILED = "INTERNAL_FAILED"


class WorkflowStartError(msgspec.Struct, frozen=True):
    """Why a workflow did not start (§12.2)."""

    code: WorkflowStartErrorCode
    message: str
    retryable: bool
    workflow_name: str
    workflow_id: str
    exception: BaseException | None = None


T = TypeVar("T")
WorkflowStartResult: TypeAlias = Result[T, WorkflowStartError]


def _refused(spec: WorkflowSpec[Any], workflow_id: str, message: str,
             code: WorkflowStartErrorCode = WorkflowStartErrorCode.VALIDATION_FAILED,
             exc: BaseException | None = None, retryable: bool = False
             ) -> Err[WorkflowStartError]:
    return Err(WorkflowStartError(code=code, message=message, retryable=retryable,
                                  workflow_name=spec.name, workflow_id=workflow_id,
                                  exception=exc))


# -- entry points ------------------------------------------------------------------


def start_workflow(spec: WorkflowSpec[Any], broker: PostgresBroker,
                   workflow_id: str | None = None, sent_at: datetime | None = None, *,
                   resend_on_transient_err: bool = False
                   ) -> WorkflowStartResult[WorkflowHandle[Any]]:
    from horsies.workflows.bridge import run_sync

    try:
        return run_sync(start_workflow_async(spec, broker, workflow_id, sent_at,
                                             resend_on_transient_err=resend_on_transient_err))
    except Exception as exc:  # noqa: BLE001 - the bridge failed: a value, not a raise
        return _refused(spec, workflow_id or new_task_id(), f"sync start failed: {exc}",
                        WorkflowStartErrorCode.INTERNAL_FAILED, exc)


async def start_workflow_async(spec: WorkflowSpec[Any], broker: PostgresBroker,
                               workflow_id: str | None = None,
                               sent_at: datetime | None = None, *,
                               resend_on_transient_err: bool = False
                   ) -> WorkflowStartResult[WorkflowHandle[Any]]:
    import asyncio
    chosen = workflow_id if workflow_id is not None else new_task_id()
    if not isinstance(chosen, str) or not is_uuid(chosen):
        return _refused(spec, str(chosen), "workflow_id must be a UUID")
    chosen = str(uuid.UUID(chosen))
    try:
        problem = _prevalidate(spec, broker)
        if problem is not None:
            return _refused(spec, chosen, problem)
        plan = Plan(spec, chosen, sent_at or datetime.now(UTC))
    except Exception as exc:  # noqa: BLE001
        return _refused(spec, chosen, f"the workflow could not be prepared: {exc}", exc=exc)
    attempts = _ATTEMPTS_WITH_RESEND if resend_on_transient_err else 1
    try:
        return await _write_with_retries(spec, broker, plan, attempts)
    except asyncio.CancelledError:
        raise
    except Exception as exc:  # noqa: BLE001
        return _refused(spec, chosen, f"unexpected failure: {type(exc).__name__}: {exc}",
                        WorkflowStartErrorCode.INTERNAL_FAILED, exc)


def start_spec(spec: WorkflowSpec[Any], workflow_id: str | None
               ) -> WorkflowStartResult[WorkflowHandle[Any]]:
    if spec.broker is None:
        return _no_broker(spec, workflow_id)
    return start_workflow(spec, spec.broker, workflow_id, datetime.now(UTC),
                          resend_on_transient_err=spec.resend_on_transient_err)


async def start_spec_async(spec: WorkflowSpec[Any], workflow_id: str | None
                           ) -> WorkflowStartResult[WorkflowHandle[Any]]:
    if spec.broker is None:
        return _no_broker(spec, workflow_id)
    return await start_workflow_async(spec, spec.broker, workflow_id, datetime.now(UTC),
                                      resend_on_transient_err=spec.resend_on_transient_err)


def retry_start_spec(spec: WorkflowSpec[Any], error: WorkflowStartError
                     ) -> WorkflowStartResult[WorkflowHandle[Any]]:
    refused = _retry_refusal(spec, error)
    return refused if refused is not None else start_spec(spec, error.workflow_id)


async def retry_start_spec_async(spec: WorkflowSpec[Any], error: WorkflowStartError
                                 ) -> WorkflowStartResult[WorkflowHandle[Any]]:
    refused = _retry_refusal(spec, error)
    return refused if refused is not None else await start_spec_async(spec, error.workflow_id)


def _no_broker(spec: WorkflowSpec[Any], workflow_id: str | None) -> Err[WorkflowStartError]:
    return _refused(spec, workflow_id or new_task_id(),
                    "the spec has no broker: build it with app.workflow(...) or use "
                    "start_workflow(spec, broker)",
                    WorkflowStartErrorCode.BROKER_NOT_CONFIGURED)


def _retry_refusal(spec: WorkflowSpec[Any], error: WorkflowStartError
                   ) -> Err[WorkflowStartError] | None:
    if error.code != WorkflowStartErrorCode.ENQUEUE_FAILED:
        return _refused(spec, error.workflow_id, "retry is only valid for ENQUEUE_FAILED "
                        f"errors, got {error.code}")
    if error.workflow_name != spec.name:
        return _refused(spec, error.workflow_id, f"cross-workflow retry: the error is of "
                        f"{error.workflow_name!r}, the spec is {spec.name!r}")
    return None


def _prevalidate(spec: WorkflowSpec[Any], broker: PostgresBroker) -> str | None:
    """§12.1 step 3; None when the spec may be written."""
    from horsies.workflows.validation import resolve_for_start

    errors = resolve_for_start(spec, getattr(broker, "app", None))
    if errors:
        return "; ".join(one_line(e) for e in errors)
    return None


def one_line(error: HorsiesError) -> str:
    notes = f" ({'; '.join(error.notes)})" if error.notes else ""
    return f"[{error.code}] {error.message}{notes}"


# -- the write -------------------------------------------------------------------------


async def _write_with_retries(spec: WorkflowSpec[Any], broker: PostgresBroker, plan: Plan,
                              attempts: int) -> WorkflowStartResult[WorkflowHandle[Any]]:
    import asyncio

    from horsies.db.broker import is_transient

    for attempt in range(1, attempts + 1):
        try:
            return await _write(spec, broker, plan)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - classified below
            transient = is_transient(exc)
            if not transient or attempt == attempts:
                return _refused(spec, plan.workflow_id, f"the workflow could not be written: "
                                f"{type(exc).__name__}: {exc}",
                                WorkflowStartErrorCode.ENQUEUE_FAILED, exc, transient)
            await asyncio.sleep(min(0.2 * 2 ** (attempt - 1), 2.0))
    raise AssertionError("unreachable")


async def _write(spec: WorkflowSpec[Any], broker: PostgresBroker, plan: Plan
                 ) -> WorkflowStartResult[WorkflowHandle[Any]]:

    from horsies.sql import queries
    from horsies.workflows import engine
    from horsies.workflows.handle import WorkflowHandle

    await broker.ensure_schema_async()
    pool = await broker.apool()
    async with pool.connection() as conn, conn.transaction():
        step = engine.Step(conn, {}, getattr(broker, "app", None))
        if not await plan.write(step):
            cur = await conn.execute(queries["wf_name_get"], {"id": plan.workflow_id})
            found = await cur.fetchone()
            if found is not None and found[0] != spec.name:
                return _refused(spec, plan.workflow_id, f"workflow_id {plan.workflow_id} "
                                f"already exists for workflow name {found[0]!r}")
            return Ok(WorkflowHandle(plan.workflow_id, broker))
        await step.advance()
    return Ok(WorkflowHandle(plan.workflow_id, broker))


class Parent(msgspec.Struct, frozen=True):
    """Where a child workflow hangs (§10.3 step 4)."""

    workflow_id: str
    task_index: int
    depth: int
    root_id: str


class Plan:
    """The rows a spec becomes (§18)."""

    def __init__(self, spec: WorkflowSpec[Any], workflow_id: str, sent_at: datetime,
                 parent: Parent | None = None) -> None:
        self.spec = spec
        self.workflow_id = workflow_id
        self.sent_at = sent_at
        self.parent = parent
        self.on_error = str(getattr(spec.on_error, "value", spec.on_error))
        dependents: dict[int, list[int]] = {}
        for node in spec.tasks:
            for dep in node.waits_for:
                dependents.setdefault(_index(dep), []).append(_index(node))
        self.roots = [_index(n) for n in spec.tasks if not n.waits_for]
        self.root_conditions = {_index(n): (n.skip_when_ref, n.run_when_ref)
                                for n in spec.tasks
                                if not n.waits_for and (n.skip_when_ref or n.run_when_ref)}
        self.nodes = [_node_row(node, dependents) for node in spec.tasks]

    async def write(self, step: Any) -> bool:
        """Insert the workflow, its nodes and its roots' tasks through an engine
        step (not advanced); False when the workflow id exists already."""
        from horsies.sql import queries
        from horsies.workflows import engine

        conn = step.conn
        cur = await conn.execute(queries["wf_insert"], self.workflow_row())
        if await cur.fetchone() is None:
            return False
        await conn.execute(queries["wf_nodes_insert"], {"workflow_id": self.workflow_id,
                                                        "nodes": self.nodes_json()})
        await engine.enqueue_roots(step, self.workflow_id, self.on_error, self.roots,
                                   self.root_conditions)
        return True

    def nodes_json(self) -> str:
        return orjson.dumps(self.nodes).decode()

    def workflow_row(self) -> dict[str, Any]:
        spec = self.spec
        policy = None
        if spec.success_policy is not None:
            doc: dict[str, Any] = {"cases": [
                {"required_indices": [_index(n) for n in case.required]}
                for case in spec.success_policy.cases]}
            if spec.success_policy.optional:
                doc["optional_indices"] = [_index(n) for n in spec.success_policy.optional]
            policy = orjson.dumps(doc).decode()
        parent = self.parent
        return {
            "id": self.workflow_id, "name": spec.name, "on_error": self.on_error,
            "output_task_index": None if spec.output is None else _index(spec.output),
            "success_policy": policy, "definition_key": spec.definition_key,
            "sent_at": self.sent_at, "nodes_left": len(self.nodes),
            "depth": 0 if parent is None else parent.depth,
            "root_id": None if parent is None else parent.root_id,
            "parent_id": None if parent is None else parent.workflow_id,
            "parent_index": None if parent is None else parent.task_index,
        }


def _node_row(node: Any, dependents: dict[int, list[int]]) -> dict[str, Any]:
    from horsies.tasks.send import task_options_json
    from horsies.workflows.nodes import TaskNode
    from horsies.workflows.spec import encoded_kwargs

    ctx_from = list(node.workflow_ctx_from or ())
    row: dict[str, Any] = {
        "task_index": _index(node),
        "node_id": node.node_id,
        "task_kwargs": encoded_kwargs(node),
        "dependencies": [_index(d) for d in node.waits_for],
        "dependents": sorted(dependents.get(_index(node), ())),
        "ctx_indices": [_index(d) for d in ctx_from],
        "args_from": ({k: _index(v) for k, v in node.args_from.items()}
                      if node.args_from else None),
        "workflow_ctx_from": [d.node_id for d in ctx_from] if ctx_from else None,
        "allow_failed_deps": bool(node.allow_failed_deps),
        "join_type": str(node.join),
        "min_success": node.min_success,
        "skip_when": node.skip_when_ref,
        "run_when": node.run_when_ref,
    }
    if isinstance(node, TaskNode):
        row.update(task_name=node.fn.task_name, queue_name=node.queue, priority=node.priority,
                   task_options=task_options_json(node.fn, node.good_until),
                   is_subworkflow=False)
    else:  # a SubWorkflowNode: its child's own nodes carry queues and priorities
        row.update(task_name=node.name, queue_name="default", priority=100,
                   task_options=None, is_subworkflow=True, sub_workflow_name=node.name,
                   sub_definition_key=node.definition_key)
    return row


def _index(node: Any) -> int:
    index = node.index
    if index is None:  # a validated spec assigns every index
        raise ValueError(f"node {node!r} has no index")
    return int(index)
