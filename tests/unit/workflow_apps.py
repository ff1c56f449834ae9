"""Tasks that receive workflow injections, run through the worker child's
`execute` by tests/unit/test_workflow_child.py. Each returns what it received,
so the test can read it back from the encoded result."""

from __future__ import annotations

from typing import Any

from horsies import (
    AppConfig,
    Horsies,
    NodeKey,
    PostgresConfig,
    TaskError,
    TaskResult,
    WorkflowContext,
    WorkflowMeta,
)

app = Horsies(AppConfig(broker=PostgresConfig(database_url="postgresql://u@127.0.0.1:1/x")))


def _describe(result: TaskResult[Any, TaskError] | None) -> dict[str, Any] | None:
    """A TaskResult as plain data, so it survives the result encoding unchanged."""
    if result is None:
        return None
    if result.is_ok():
        return {"ok": result.ok_value}
    error = result.err_value
    return {"code": str(error.error_code), "message": error.message, "data": error.data,
            "type": type(error).__name__}


@app.task("wf_takes_results")
def takes_results(
    first: TaskResult[int, TaskError],
    second: TaskResult[int, TaskError] | None = None,
    width: int = 1,
) -> TaskResult[dict[str, Any], TaskError]:
    return TaskResult(ok={"first": _describe(first), "second": _describe(second), "width": width})


@app.task("wf_with_ctx")
def with_ctx(
    label: str,
    workflow_ctx: WorkflowContext | None = None,
) -> TaskResult[dict[str, Any], TaskError]:
    if workflow_ctx is None:
        return TaskResult(ok={"label": label, "ctx": None})
    ctx = workflow_ctx
    summary = ctx.summary_for(NodeKey("child")) if ctx.has_summary(NodeKey("child")) else None
    return TaskResult(ok={
        "label": label,
        "ctx": [ctx.workflow_id, ctx.task_index, ctx.task_name],
        "a": _describe(ctx.result_for(NodeKey[int]("a"))),
        "child_failed": None if summary is None else summary.failed_tasks,
    })


@app.task("wf_with_meta")
def with_meta(workflow_meta: WorkflowMeta | None = None) -> TaskResult[Any, TaskError]:
    if workflow_meta is None:
        return TaskResult(ok=None)
    return TaskResult(ok=[workflow_meta.workflow_id, workflow_meta.task_index,
                          workflow_meta.task_name])


@app.task("wf_with_both")
def with_both(
    workflow_ctx: WorkflowContext | None = None,
    workflow_meta: WorkflowMeta | None = None,
) -> TaskResult[list[bool], TaskError]:
    return TaskResult(ok=[workflow_ctx is not None, workflow_meta is not None])


@app.task("wf_plain")
def plain(note: str) -> TaskResult[str, TaskError]:
    """Declares neither reserved parameter: an injected one would be a TypeError."""
    return TaskResult(ok=note)


@app.task("wf_catch_all")
def catch_all(**kwargs: Any) -> TaskResult[list[str], TaskError]:
    """A **kwargs catch-all does not declare workflow_ctx or workflow_meta."""
    return TaskResult(ok=sorted(kwargs))


class Unnamed:
    """A node whose id was never assigned: built inside a function, looked up
    in a worker that never built the spec (workflows.md §5.3)."""

    node_id: str | None = None


@app.task("wf_missing_id")
def missing_id(workflow_ctx: WorkflowContext | None = None) -> TaskResult[Any, TaskError]:
    assert workflow_ctx is not None
    return workflow_ctx.result_for(Unnamed())  # type: ignore[arg-type]


@app.task("wf_unlisted")
def unlisted(workflow_ctx: WorkflowContext | None = None) -> TaskResult[Any, TaskError]:
    assert workflow_ctx is not None
    return workflow_ctx.result_for(NodeKey("not_listed"))
