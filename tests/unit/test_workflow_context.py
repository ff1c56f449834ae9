"""What task bodies receive from a workflow: `NodeKey`, `WorkflowMeta`,
`SubWorkflowSummary`, `WorkflowContext` and the UPSTREAM_SKIPPED sentinel
(workflows.md §3.4, §5.3, §5.4, §6.4, §10.4). No database."""

from __future__ import annotations

import dataclasses
import datetime
from typing import Any

import msgspec
import pytest

import horsies
from horsies import (
    NodeKey,
    OperationalErrorCode,
    OutcomeCode,
    SubWorkflowError,
    SubWorkflowSummary,
    TaskError,
    TaskResult,
    WorkflowContext,
    WorkflowContextMissingIdError,
    WorkflowMeta,
)
from horsies.codec import dumps_json, loads_json, rehydrate_value
from horsies.states import WorkflowStatus
from horsies.workflows.context import upstream_skipped

MISSING_ID = (
    "TaskNode node_id is not set. Ensure WorkflowSpec assigns node_id "
    "or provide an explicit node_id."
)


@dataclasses.dataclass
class Node:
    """Stands in for a TaskNode / SubWorkflowNode: lookups only read `node_id`."""

    node_id: str | None


def summary(**overrides: Any) -> SubWorkflowSummary[Any]:
    fields: dict[str, Any] = {"status": WorkflowStatus.FAILED, "output": None, "total_tasks": 4,
                              "completed_tasks": 2, "failed_tasks": 1, "skipped_tasks": 1,
                              "error_summary": "resize failed"}
    fields.update(overrides)
    return SubWorkflowSummary(**fields)


def context(**results: TaskResult[Any, TaskError]) -> WorkflowContext:
    return WorkflowContext("wf-1", 3, "publish", results, {"child": summary()})


# -- the public names -----------------------------------------------------------------


def test_public_names_come_from_the_package() -> None:
    for name in ("NodeKey", "WorkflowContext", "WorkflowMeta", "SubWorkflowSummary",
                 "WorkflowContextMissingIdError"):
        assert name in horsies.__all__
        assert getattr(horsies, name).__module__ == "horsies.workflows.context"


def test_struct_fields_in_the_order_of_the_spec() -> None:
    assert NodeKey.__struct_fields__ == ("node_id",)
    assert WorkflowMeta.__struct_fields__ == ("workflow_id", "task_index", "task_name")
    assert SubWorkflowSummary.__struct_fields__ == (
        "status", "output", "total_tasks", "completed_tasks", "failed_tasks",
        "skipped_tasks", "error_summary")


@pytest.mark.parametrize("value", [
    NodeKey("a"), WorkflowMeta("wf", 1, "t"), summary(), summary(output={"n": 1}),
])
def test_structs_are_frozen(value: msgspec.Struct) -> None:
    field = type(value).__struct_fields__[0]
    with pytest.raises(AttributeError):
        setattr(value, field, "x")


@pytest.mark.parametrize("value", [
    NodeKey[int]("resize:3"),
    WorkflowMeta("wf", 1, "t"),
    summary(status=WorkflowStatus.COMPLETED, output=datetime.date(2031, 1, 2),
            error_summary=None),
])
def test_structs_survive_the_codec(value: msgspec.Struct) -> None:
    text = dumps_json(value).ok_value
    assert rehydrate_value(loads_json(text).ok_value).ok_value == value


# -- lookups -------------------------------------------------------------------------


def test_properties_and_lookups_by_node_id() -> None:
    ok: TaskResult[int, TaskError] = TaskResult(ok=12)
    ctx = context(a=ok)
    assert (ctx.workflow_id, ctx.task_index, ctx.task_name) == ("wf-1", 3, "publish")
    assert ctx.result_for(NodeKey[int]("a")) is ok
    assert ctx.result_for(Node("a")) is ok  # type: ignore[arg-type]
    assert ctx.has_result(NodeKey("a"))
    assert not ctx.has_result(NodeKey("b"))
    assert ctx.summary_for(NodeKey("child")) == summary()
    assert ctx.has_summary(Node("child"))  # type: ignore[arg-type]
    assert not ctx.has_summary(NodeKey("a"))


def test_properties_are_read_only() -> None:
    ctx = context()
    for name in ("workflow_id", "task_index", "task_name"):
        with pytest.raises(AttributeError):
            setattr(ctx, name, "x")


def test_the_context_keeps_its_own_copy() -> None:
    results: dict[str, TaskResult[Any, TaskError]] = {"a": TaskResult(ok=1)}
    ctx = WorkflowContext("wf", 0, "t", results)
    results["b"] = TaskResult(ok=2)
    assert not ctx.has_result(NodeKey("b"))


def test_result_for_an_unlisted_node() -> None:
    with pytest.raises(KeyError) as caught:
        context(a=TaskResult(ok=1)).result_for(NodeKey("totals"))
    assert caught.value.args[0] == (
        "TaskNode id 'totals' not in workflow context. "
        "Ensure the node is included in workflow_ctx_from.")


def test_summary_for_an_unlisted_node() -> None:
    with pytest.raises(KeyError) as caught:
        context().summary_for(NodeKey("nightly"))
    assert caught.value.args[0] == (
        "SubWorkflowNode id 'nightly' not in workflow context summaries. "
        "Ensure the node is included in workflow_ctx_from.")


@pytest.mark.parametrize("lookup", ["result_for", "summary_for"])
def test_a_node_without_id(lookup: str) -> None:
    with pytest.raises(WorkflowContextMissingIdError) as caught:
        getattr(context(a=TaskResult(ok=1)), lookup)(Node(None))
    assert isinstance(caught.value, RuntimeError)
    assert str(caught.value) == MISSING_ID


def test_has_result_and_has_summary_without_id_are_false() -> None:
    ctx = context(a=TaskResult(ok=1))
    assert not ctx.has_result(Node(None))  # type: ignore[arg-type]
    assert not ctx.has_summary(Node(None))  # type: ignore[arg-type]


@pytest.mark.parametrize("bad", ["a", 3, None])
def test_an_object_that_is_not_a_node(bad: Any) -> None:
    with pytest.raises(TypeError, match="expected a TaskNode, SubWorkflowNode or NodeKey"):
        context(a=TaskResult(ok=1)).result_for(bad)


def test_a_node_id_that_is_not_text() -> None:
    with pytest.raises(TypeError, match="node_id must be a string, got int"):
        context().has_result(Node(7))  # type: ignore[arg-type]


# -- from_serialized -----------------------------------------------------------------


def test_from_serialized_decodes_stored_texts_and_trees() -> None:
    ok = TaskResult(ok={"rows": [1, 2]})
    failed = TaskResult(err=TaskError(error_code="CARD_DECLINED", message="no", data={"n": 1}))
    ctx = WorkflowContext.from_serialized(
        "wf-2", 5, "report",
        {"text": dumps_json(ok).ok_value,
         "tree": loads_json(dumps_json(failed).ok_value).ok_value,
         "value": ok},
        {"child": dumps_json(summary()).ok_value, "plain": {"status": "COMPLETED"}},
    )
    assert (ctx.workflow_id, ctx.task_index, ctx.task_name) == ("wf-2", 5, "report")
    assert ctx.result_for(NodeKey("text")) == ok
    assert ctx.result_for(NodeKey("tree")) == failed
    assert ctx.result_for(NodeKey("value")) is ok
    assert ctx.summary_for(NodeKey("child")) == summary()
    assert ctx.summary_for(NodeKey("plain")).status is WorkflowStatus.COMPLETED


def test_from_serialized_without_summaries() -> None:
    ctx = WorkflowContext.from_serialized("wf", 0, "t", {})
    assert not ctx.has_summary(NodeKey("child"))


@pytest.mark.parametrize("stored", [
    "{not json", '{"ok": 1}', '{"__task_result__": true, "ok": null, "err": 5}', "[]",
])
def test_an_undecodable_result_is_handed_over_as_an_error(stored: str) -> None:
    ctx = WorkflowContext.from_serialized("wf", 0, "t", {"a": stored})
    error = ctx.result_for(NodeKey("a")).err_value
    assert error.error_code is OperationalErrorCode.RESULT_DESERIALIZATION_ERROR
    assert error.data == {"node": "a"}
    assert "'a'" in (error.message or "")


def test_a_summary_text_that_is_not_json() -> None:
    with pytest.raises(ValueError, match="not JSON"):
        WorkflowContext.from_serialized("wf", 0, "t", {}, {"child": "{oops"})


def test_subworkflow_errors_keep_their_summary() -> None:
    failed = TaskResult(err=SubWorkflowError(
        error_code=OutcomeCode.SUBWORKFLOW_FAILED, message="Subworkflow c1 failed",
        sub_workflow_id="c1", sub_workflow_summary=summary()))
    ctx = WorkflowContext.from_serialized("wf", 0, "t", {"child": dumps_json(failed).ok_value})
    error = ctx.result_for(NodeKey("child")).err_value
    assert isinstance(error, SubWorkflowError)
    assert error.sub_workflow_summary == summary()


# -- SubWorkflowSummary.from_json --------------------------------------------------------


def test_from_json_of_the_codec_form_and_of_a_plain_object() -> None:
    full = summary(status=WorkflowStatus.COMPLETED, output=[1, 2], error_summary=None)
    tree = loads_json(dumps_json(full).ok_value).ok_value
    assert SubWorkflowSummary.from_json(tree) == full
    plain = {"status": "COMPLETED", "output": [1, 2], "total_tasks": 4, "completed_tasks": 2,
             "failed_tasks": 1, "skipped_tasks": 1}
    assert SubWorkflowSummary.from_json(plain) == full


@pytest.mark.parametrize("data", [{}, None, [], "COMPLETED", {"status": None}])
def test_from_json_of_nothing_usable(data: Any) -> None:
    assert SubWorkflowSummary.from_json(data) == SubWorkflowSummary(
        status=WorkflowStatus.FAILED, output=None, total_tasks=0, completed_tasks=0,
        failed_tasks=0, skipped_tasks=0, error_summary=None)


@pytest.mark.parametrize("status", ["DONE", "completed", 3, ["COMPLETED"], {"name": "X"}])
def test_from_json_an_unknown_status_is_failed(status: Any) -> None:
    assert SubWorkflowSummary.from_json({"status": status}).status is WorkflowStatus.FAILED


@pytest.mark.parametrize("status", list(WorkflowStatus))
def test_from_json_known_statuses(status: WorkflowStatus) -> None:
    assert SubWorkflowSummary.from_json({"status": status.value}).status is status
    assert SubWorkflowSummary.from_json({"status": status}).status is status


@pytest.mark.parametrize("count", ["3", 2.0, True, None, [1]])
def test_from_json_a_malformed_count_is_zero(count: Any) -> None:
    assert SubWorkflowSummary.from_json({"failed_tasks": count}).failed_tasks == 0


def test_from_json_output_and_error_summary() -> None:
    tagged = loads_json(dumps_json(datetime.date(2031, 1, 2)).ok_value).ok_value
    assert SubWorkflowSummary.from_json({"output": tagged}).output == datetime.date(2031, 1, 2)
    missing_class = {"__dataclass__": True, "module": "nowhere.at.all", "qualname": "Gone",
                     "data": {}}
    assert SubWorkflowSummary.from_json({"output": missing_class}).output is None
    assert SubWorkflowSummary.from_json({"error_summary": 42}).error_summary == "42"


# -- the UPSTREAM_SKIPPED sentinel ---------------------------------------------------------


def test_upstream_skipped_sentinel() -> None:
    sentinel = upstream_skipped(4)
    assert sentinel.is_err()
    assert sentinel.err_value == TaskError(
        error_code=OutcomeCode.UPSTREAM_SKIPPED,
        message="Upstream dependency was SKIPPED",
        data={"dependency_index": 4},
    )
    ctx = WorkflowContext.from_serialized("wf", 0, "t", {"a": dumps_json(sentinel).ok_value})
    assert ctx.result_for(NodeKey("a")) == sentinel
