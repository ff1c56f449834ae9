"""Which queue and priority each `TaskNode` gets (workflows.md §4.1 steps 1-2, §4.2).

`app.workflow` resolves them before the spec is built; `start()` resolves the
nodes of a spec built without an app through the broker's app.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from horsies.config import QueueMode
from horsies.errors import ConfigurationError, ErrorCode, HorsiesError, raise_collected
from horsies.workflows.diagnostics import describe, location_of
from horsies.workflows.nodes import AnyNode, OnError, TaskNode
from horsies.workflows.spec import Placement

if TYPE_CHECKING:
    from horsies.app import Horsies
    from horsies.workflows.definition import WorkflowDefinition
    from horsies.workflows.spec import SuccessPolicy, WorkflowSpec

__all__ = ["build_for_app", "place"]


def place(
    node: TaskNode[object], app: Horsies, position: int | None = None
) -> tuple[str, int] | HorsiesError:
    """`(queue, priority)` for `node` under `app`'s queue mode, or the reason it has none.

    Queue: the node's override, else the task's declared queue, else "default".
    Priority: the node's override, else the queue's configured priority
    (100 in DEFAULT mode).
    """
    queue = node.queue or node.fn.task_queue_name or "default"
    problem = _queue_problem(queue, app)
    if problem is not None:
        problem.message = f"{_label(node, position)}: {problem.message}"
        problem.args = (problem.message,)
        return problem.with_location(location_of(node.fn))
    priority = node.priority if node.priority is not None else app.queue_priority(queue)
    return queue, priority


def _queue_problem(queue: str, app: Horsies) -> HorsiesError | None:
    config = app.config
    if config.queue_mode is QueueMode.DEFAULT:
        if queue == "default":
            return None
        return ConfigurationError(
            f"queue '{queue}' cannot be used in DEFAULT queue mode",
            code=ErrorCode.CONFIG_INVALID_QUEUE_MODE,
            help_text="remove the queue override, or switch the app to QueueMode.CUSTOM "
            "with this queue configured",
        )
    valid = app.get_valid_queue_names()
    if queue in valid:
        return None
    return ConfigurationError(
        f"queue '{queue}' is not a configured queue",
        code=ErrorCode.TASK_INVALID_QUEUE,
        notes=[f"valid queues: {', '.join(valid) or '(none)'}"],
        help_text="use one of the configured queues, or add it to AppConfig.custom_queues",
    )


def _label(node: TaskNode[object], position: int | None) -> str:
    if node.node_id is None and position is not None:
        return f"node tasks[{position}] (task '{node.name}')"
    return describe(node)


def build_for_app(
    app: Horsies,
    name: str,
    tasks: Sequence[AnyNode],
    on_error: OnError | str,
    output: AnyNode | None,
    success_policy: SuccessPolicy | None,
    definition_key: str | None,
    workflow_def_cls: type[WorkflowDefinition[Any]] | None,
) -> WorkflowSpec[Any]:
    """`app.workflow(...)` (§4.1): place every TaskNode, then build the spec with the
    app attached; a missing definition_key is collected with the spec's own errors."""
    from horsies.workflows.spec import WorkflowSpec, normalize_on_error

    policy = normalize_on_error(on_error)
    placements: list[Placement] = []
    problems: list[HorsiesError] = []
    for position, node in enumerate(tasks if isinstance(tasks, Sequence) else ()):
        if not isinstance(node, TaskNode):
            continue
        found = place(node, app, position)
        if isinstance(found, HorsiesError):
            problems.append(found)
        else:
            placements.append(Placement(position, *found))
    raise_collected(problems)
    spec: WorkflowSpec[Any] = WorkflowSpec.__new__(WorkflowSpec)
    spec._construct(
        name, tasks, policy, output, success_policy, definition_key, workflow_def_cls,
        None, app.config.resend_on_transient_err,
        app=app, placements=placements, require_key=True,
    )
    return spec
