"""Subworkflows in the engine (workflows.md §10): starting a child when its
node is ready, and telling the parent node when the child ends.

Both run inside the engine step of the transaction that got there: a child is
started in the transaction that made its node ready (its roots enqueued with
it), and a child's end moves its parent node in the transaction that ended
the child, when the parent's lock can be had without waiting (recovery case 4
does it otherwise).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from horsies.codec import dumps_json, json_to_kwargs, loads_json
from horsies.codes import OperationalErrorCode, OutcomeCode
from horsies.sql import queries
from horsies.states import WorkflowStatus
from horsies.task_result import SubWorkflowError, TaskError, TaskResult
from horsies.tasks.ids import new_task_id
from horsies.tasks.waiting import decode_result_text, decode_stored_result
from horsies.workflows.context import SubWorkflowSummary

if TYPE_CHECKING:
    from horsies.workflows.engine import NodeRef, Settled, Step

__all__ = ["parent_update", "start_children"]

log = logging.getLogger("horsies.workflow")

_ERROR_SUMMARY_CHARS = 200


async def start_children(step: Step, nodes: Sequence[tuple[Any, ...]],
                         inputs: dict[NodeRef, tuple[Any, ...]]) -> list[Settled]:
    """§10.3 for subworkflow nodes just made ENQUEUED; returns the nodes that
    failed instead (load or build errors), for the caller to settle."""
    from horsies.workflows.engine import failure_json
    from horsies.workflows.start import Parent, Plan

    failed: list[Settled] = []
    links: list[tuple[str, int, str]] = []
    for node in nodes:
        wf, index, node_id, depth, root_id = node[0], node[1], node[2], node[13], node[14]
        built = _build_child(step, node, inputs)
        if isinstance(built, tuple):
            failed.append((wf, index, "FAILED", failure_json(*built), None))
            continue
        child_id = new_task_id()
        plan = Plan(built, child_id, datetime.now(UTC),
                    Parent(workflow_id=wf, task_index=index, depth=depth + 1, root_id=root_id))
        await plan.write(step)
        links.append((wf, index, child_id))
        log.info("Workflow %s node %r started child workflow %s (%s)", wf, node_id, child_id,
                 built.name)
    if links:
        await step.conn.execute(queries["wf_child_link"], {
            "wf": [x[0] for x in links], "idx": [x[1] for x in links],
            "child": [x[2] for x in links]})
    return failed


def _build_child(step: Step, node: tuple[Any, ...], inputs: dict[NodeRef, tuple[Any, ...]]
                 ) -> Any:
    """The child's spec from `build_with(app, **params)`, or (code, message, data...)."""
    from horsies.workflows.definition import get_workflow_definition
    from horsies.workflows.engine import source_text
    from horsies.workflows.start import one_line
    from horsies.workflows.validation import resolve_for_start

    wf, node_id, static, args_from, key = node[0], node[2], node[6], node[8], node[12]
    definition = get_workflow_definition(key) if key else None
    if definition is None:
        return (OperationalErrorCode.SUBWORKFLOW_LOAD_FAILED,
                (f"node {node_id!r}: no workflow definition is registered under {key!r} in "
                "this process (is its module imported by the worker?)"))
    enqueue_failed = OperationalErrorCode.WORKFLOW_ENQUEUE_FAILED
    if step.app is None:
        return (enqueue_failed, f"node {node_id!r}: no app to build the child workflow with")
    try:
        params = _static_params(static)
        for name, source_index in (args_from or {}).items():
            text = source_text(inputs.get((wf, int(source_index))), int(source_index))
            if text is not None:
                params[name] = decode_stored_result(text)
        spec = definition.build_with(step.app, **params)
    except Exception as exc:  # noqa: BLE001 - a child that cannot be built fails its node
        return (enqueue_failed, (f"node {node_id!r}: building child {key!r} failed: "
                f"{type(exc).__name__}: {exc}"))
    errors = resolve_for_start(spec, step.app)
    if errors:
        return (enqueue_failed, f"node {node_id!r}: child {key!r} is not valid: "
                + "; ".join(one_line(e) for e in errors))
    return spec


def _static_params(static: str | None) -> dict[str, Any]:
    parsed = loads_json(static or "{}")
    if parsed.is_err():
        raise ValueError(f"stored parameters are not JSON: {parsed.err_value}")
    params = json_to_kwargs(parsed.ok_value)
    if params.is_err():
        raise ValueError(f"stored parameters cannot be decoded: {params.err_value}")
    return dict(params.ok_value)


async def parent_update(step: Step, child_id: str) -> None:
    """A child that ended: its parent node becomes COMPLETED or FAILED with the
    child's summary (§10.1, §10.4, §10.5); the parent's `on_error` and
    propagation follow through the step."""
    cur = await step.conn.execute(queries["wf_child_outcome"], {"id": child_id})
    row = await cur.fetchone()
    if row is None:
        return
    (parent_id, index, status, stored, error, total, completed, failed, skipped,
     has_output) = row
    if parent_id not in step.locked:
        cur = await step.conn.execute(queries["wf_lock_parent"], {"id": parent_id})
        locked = await cur.fetchone()
        if locked is None:
            log.info("Workflow %s ended; its parent %s is busy, recovery will tell it",
                     child_id, parent_id)
            return
        step.locked[parent_id] = (locked[1], locked[2])
    result = decode_result_text(stored) if stored is not None else None
    summary = SubWorkflowSummary(
        status=WorkflowStatus(status),
        output=(result.ok_value if isinstance(result, TaskResult) and result.is_ok()
                and status == "COMPLETED" else None),
        total_tasks=total, completed_tasks=completed, failed_tasks=failed,
        skipped_tasks=skipped, error_summary=_error_summary(error))
    summary_text = dumps_json(summary)
    await step.conn.execute(queries["wf_node_summary_set"], {
        "wf": parent_id, "idx": index,
        "summary": summary_text.ok_value if summary_text.is_ok() else None})
    if status == "COMPLETED":
        node_status = "COMPLETED"
        node_result = stored if has_output and stored is not None else _encoded(
            TaskResult(ok=None))
    else:
        node_status = "FAILED"
        node_result = _encoded(TaskResult(err=SubWorkflowError(
            error_code=OutcomeCode.SUBWORKFLOW_FAILED,
            message=f"Subworkflow {child_id} failed with status {status}",
            sub_workflow_id=child_id, sub_workflow_summary=summary)))
    await step.settle([(parent_id, index, node_status, node_result, None)],
                      expected=("ENQUEUED", "RUNNING"))


def _error_summary(error: str | None) -> str | None:
    if error is None:
        return None
    parsed = loads_json(error)
    if parsed.is_ok() and isinstance(parsed.ok_value, dict):
        message = parsed.ok_value.get("message")
        if isinstance(message, str):
            return message
    return error[:_ERROR_SUMMARY_CHARS]


def _encoded(result: TaskResult[Any, TaskError]) -> str:
    from horsies.workflows.engine import failure_json

    text = dumps_json(result)
    if text.is_err():  # a summary whose output cannot be encoded: keep the failure visible
        return failure_json(OperationalErrorCode.WORKER_SERIALIZATION_ERROR,
                            f"the child's outcome could not be encoded: {text.err_value}")
    return text.ok_value
