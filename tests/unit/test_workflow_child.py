"""Workflow rows in the worker child: `execute` rebuilds the injections the
engine stored (workers.md §7.3 step 4, workflows.md §5.5) and calls real
registered tasks (tests/unit/workflow_apps.py). No database, no subprocess."""

from __future__ import annotations

from typing import Any

import pytest

from horsies import (
    ContractCode,
    OperationalErrorCode,
    SubWorkflowSummary,
    TaskError,
    TaskResult,
)
from horsies.codec import dumps_json, loads_json, task_result_from_json
from horsies.states import WorkflowStatus
from horsies.worker import child
from horsies.worker.child import execute
from horsies.workflows.wire import (
    CTX_KEY,
    META_KEY,
    TASKRESULT_KEY,
    ctx_envelope,
    meta_envelope,
    node_kwargs_json,
    skipped_result_json,
    taskresult_arg,
)
from tests.unit.workflow_apps import app

TASKS: dict[str, Any] = app.tasks._tasks
META = meta_envelope("wf-7", 4, "wf_task")


def stored(value: Any) -> str:
    return dumps_json(value).ok_value


def run(name: str, kwargs_json: str | None) -> TaskResult[Any, TaskError]:
    """Execute like a child does and decode the result as the main process stores it."""
    ok, result_json, code, message = execute(TASKS, name, None, kwargs_json)
    result = task_result_from_json(loads_json(result_json).ok_value).ok_value
    assert ok is result.is_ok()
    if result.is_err():
        assert code == str(result.err_value.error_code)
        assert message == result.err_value.message
    return result


def row(static: str | None = None, injected: dict[str, Any] | None = None,
        ctx: dict[str, Any] | None = None) -> str:
    """A task kwargs text as the engine stores it."""
    return node_kwargs_json(static, injected or {}, ctx, META)


# -- args_from -------------------------------------------------------------------------------


def test_task_result_arguments() -> None:
    failed = TaskResult(err=TaskError(error_code="NO_STOCK", message="none left", data=[1]))
    text = row('{"width":640}', {"first": taskresult_arg(stored(TaskResult(ok=12))),
                                 "second": taskresult_arg(stored(failed))})
    assert run("wf_takes_results", text).ok_value == {
        "first": {"ok": 12},
        "second": {"code": "NO_STOCK", "message": "none left", "data": [1], "type": "TaskError"},
        "width": 640,
    }


def test_an_omitted_input_leaves_the_default() -> None:
    text = row(None, {"first": taskresult_arg(skipped_result_json(0))})
    out = run("wf_takes_results", text).ok_value
    assert out["first"] == {"code": "UPSTREAM_SKIPPED", "message": "Upstream dependency was SKIPPED",
                            "data": {"dependency_index": 0}, "type": "TaskError"}
    assert out["second"] is None
    assert out["width"] == 1


def test_an_undecodable_input_reaches_the_task() -> None:
    out = run("wf_takes_results", row(None, {"first": taskresult_arg("{broken")})).ok_value
    assert out["first"]["code"] == "RESULT_DESERIALIZATION_ERROR"
    assert out["first"]["data"] == {"node": "first"}


# -- workflow_ctx and workflow_meta -------------------------------------------------------------


def ctx(**results: TaskResult[Any, TaskError]) -> dict[str, Any]:
    summary = SubWorkflowSummary(status=WorkflowStatus.FAILED, output=None, total_tasks=2,
                                 completed_tasks=1, failed_tasks=1, skipped_tasks=0)
    return ctx_envelope("wf-7", 4, "wf_with_ctx",
                        {key: stored(value) for key, value in results.items()},
                        {"child": stored(summary)})


def test_the_context_is_passed_when_declared() -> None:
    text = row('{"label":"q3"}', ctx=ctx(a=TaskResult(ok=5)))
    assert run("wf_with_ctx", text).ok_value == {
        "label": "q3", "ctx": ["wf-7", 4, "wf_with_ctx"], "a": {"ok": 5}, "child_failed": 1}


def test_a_declared_context_without_workflow_ctx_from_keeps_the_default() -> None:
    assert run("wf_with_ctx", row('{"label":"q3"}')).ok_value == {"label": "q3", "ctx": None}


def test_the_meta_is_passed_when_declared() -> None:
    assert run("wf_with_meta", row()).ok_value == ["wf-7", 4, "wf_task"]
    assert run("wf_with_both", row(ctx=ctx())).ok_value == [True, True]
    assert run("wf_with_both", row()).ok_value == [False, True]


@pytest.mark.parametrize("name", ["wf_plain", "wf_catch_all"])
def test_undeclared_injections_are_not_passed(name: str) -> None:
    static = '{"note":"n"}' if name == "wf_plain" else '{"x":1}'
    out = run(name, row(static, ctx=ctx(a=TaskResult(ok=1)))).ok_value
    assert out == ("n" if name == "wf_plain" else ["x"])


def test_a_node_without_id_is_a_contract_error() -> None:
    error = run("wf_missing_id", row(ctx=ctx(a=TaskResult(ok=1)))).err_value
    assert error.error_code is ContractCode.WORKFLOW_CTX_MISSING_ID
    assert error.message == (
        "TaskNode node_id is not set. Ensure WorkflowSpec assigns node_id "
        "or provide an explicit node_id.")


def test_an_unlisted_node_is_an_unhandled_key_error() -> None:
    error = run("wf_unlisted", row(ctx=ctx(a=TaskResult(ok=1)))).err_value
    assert error.error_code is OperationalErrorCode.UNHANDLED_EXCEPTION
    assert "TaskNode id 'not_listed' not in workflow context" in (error.message or "")


# -- corrupt rows and plain rows -----------------------------------------------------------------


@pytest.mark.parametrize("text", [
    f'{{"{META_KEY}": {{"workflow_id": 1}}}}',
    f'{{"{CTX_KEY}": []}}',
    f'{{"first": {{"{TASKRESULT_KEY}": true}}}}',
    '{"__horsies_unknown__": 1}',
    '["__horsies"]',
    '{"__horsies',
])
def test_a_corrupt_workflow_row_is_a_serialization_error(text: str) -> None:
    error = run("wf_takes_results", text).err_value
    assert error.error_code is OperationalErrorCode.WORKER_SERIALIZATION_ERROR
    assert (error.message or "").startswith("could not decode the stored keyword arguments")


def test_a_plain_row_that_mentions_the_marker_runs_unchanged() -> None:
    # The value's quote is escaped in the text, which still contains the marker.
    assert run("wf_plain", '{"note":"\\"__horsies"}').ok_value == '"__horsies'


def test_plain_rows_skip_the_workflow_path() -> None:
    task = TASKS["wf_with_meta"]
    child._INJECTABLE.pop(task, None)
    assert run("wf_with_meta", '{}').ok_value is None
    assert run("wf_with_meta", None).ok_value is None
    assert task not in child._INJECTABLE  # no signature read for a plain row
    run("wf_with_meta", row())
    assert child._INJECTABLE[task] == (False, True)
