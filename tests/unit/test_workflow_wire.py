"""The kwargs layout of workflow task rows (workflows.md §5.5): what the engine
writes with `node_kwargs_json`, what the worker reads back with
`split_injections`. No database."""

from __future__ import annotations

import datetime
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from horsies import (
    NodeKey,
    OperationalErrorCode,
    OutcomeCode,
    SubWorkflowError,
    SubWorkflowSummary,
    TaskError,
    TaskResult,
    WorkflowMeta,
)
from horsies.codec import dumps_json, json_to_kwargs, kwargs_to_json
from horsies.states import WorkflowStatus
from horsies.workflows.context import upstream_skipped
from horsies.workflows.wire import (
    CTX_KEY,
    MARKER,
    META_KEY,
    TASKRESULT_KEY,
    KwargsConflictError,
    WireFormatError,
    ctx_envelope,
    meta_envelope,
    node_kwargs_json,
    skipped_result_json,
    split_injections,
    taskresult_arg,
)

META = meta_envelope("wf-9", 2, "render")

CHILD_SUMMARY: SubWorkflowSummary[Any] = SubWorkflowSummary(
    status=WorkflowStatus.FAILED, output=None, total_tasks=3, completed_tasks=1,
    failed_tasks=2, skipped_tasks=0, error_summary="thumbnail failed")

RESULTS: list[TaskResult[Any, TaskError]] = [
    TaskResult(ok=7),
    TaskResult(ok=None),
    TaskResult(ok={"when": datetime.date(2031, 1, 2), "ids": [4, 5]}),
    TaskResult(err=TaskError(error_code="CARD_DECLINED", message="no", data={"order": 9})),
    TaskResult(err=TaskError(error_code=OperationalErrorCode.TASK_EXCEPTION, message="boom")),
    TaskResult(err=SubWorkflowError(
        error_code=OutcomeCode.SUBWORKFLOW_FAILED, message="Subworkflow c-1 failed",
        sub_workflow_id="c-1", sub_workflow_summary=CHILD_SUMMARY)),
    upstream_skipped(1),
]


def stored(value: TaskResult[Any, TaskError] | SubWorkflowSummary[Any]) -> str:
    """A result or summary as its column holds it."""
    return dumps_json(value).ok_value


def worker_side(text: str) -> tuple[dict[str, Any], Any]:
    """What the child does: parse, split, decode the static rest with the codec."""
    tree = orjson.loads(text)
    injections = split_injections(tree)
    return json_to_kwargs(tree).ok_value, injections


# -- round trips ----------------------------------------------------------------------------


@pytest.mark.parametrize("result", RESULTS, ids=lambda r: repr(r)[:40])
def test_args_from_round_trip(result: TaskResult[Any, TaskError]) -> None:
    text = node_kwargs_json('{"width":640}', {"stored": taskresult_arg(stored(result))},
                            None, META)
    static, injections = worker_side(text)
    assert static == {"width": 640}
    assert injections.results == {"stored": result}
    assert type(injections.results["stored"].err) is type(result.err)
    assert injections.ctx is None


def test_subworkflow_error_keeps_its_summary() -> None:
    failed = RESULTS[5]
    _, injections = worker_side(node_kwargs_json(None, {"r": taskresult_arg(stored(failed))},
                                                 None, META))
    error = injections.results["r"].err_value
    assert isinstance(error, SubWorkflowError)
    assert error.sub_workflow_summary == CHILD_SUMMARY


def test_context_round_trip() -> None:
    results = {f"n{i}": stored(result) for i, result in enumerate(RESULTS)}
    ctx = ctx_envelope("wf-9", 2, "render", results, {"child": stored(CHILD_SUMMARY)})
    static, injections = worker_side(node_kwargs_json('{"label":"x"}', {}, ctx, META))
    assert static == {"label": "x"}
    context = injections.ctx
    assert (context.workflow_id, context.task_index, context.task_name) == ("wf-9", 2, "render")
    for i, result in enumerate(RESULTS):
        assert context.result_for(NodeKey(f"n{i}")) == result
    assert context.summary_for(NodeKey("child")) == CHILD_SUMMARY


def test_context_without_summaries() -> None:
    ctx = ctx_envelope("wf", 0, "t", {"a": stored(RESULTS[0])}, None)
    assert ctx["summaries_by_id"] == {}
    _, injections = worker_side(node_kwargs_json(None, {}, ctx, META))
    assert not injections.ctx.has_summary(NodeKey("a"))
    assert injections.ctx.result_for(NodeKey("a")) == RESULTS[0]


def test_skipped_result_json_is_the_sentinel() -> None:
    _, injections = worker_side(node_kwargs_json(
        None, {"totals": taskresult_arg(skipped_result_json(4))}, None, META))
    error = injections.results["totals"].err_value
    assert error.error_code is OutcomeCode.UPSTREAM_SKIPPED
    assert error.message == "Upstream dependency was SKIPPED"
    assert error.data == {"dependency_index": 4}


def test_meta_is_always_written_and_read_back() -> None:
    text = node_kwargs_json("{}", {}, None, META)
    assert orjson.loads(text) == {META_KEY: META}
    static, injections = worker_side(text)
    assert static == {}
    assert injections.meta == WorkflowMeta("wf-9", 2, "render")
    assert injections.results == {}


def test_reserved_keys_are_removed() -> None:
    ctx = ctx_envelope("wf", 0, "t", {}, None)
    text = node_kwargs_json('{"a":1}', {"r": taskresult_arg(stored(RESULTS[0]))}, ctx, META)
    tree = orjson.loads(text)
    assert list(tree) == ["a", "r", CTX_KEY, META_KEY]
    split_injections(tree)
    assert tree == {"a": 1}


def test_a_row_without_envelopes_splits_into_nothing() -> None:
    tree: dict[str, Any] = {"a": {"nested": True}}
    injections = split_injections(tree)
    assert (injections.results, injections.ctx, injections.meta) == ({}, None, None)
    assert tree == {"a": {"nested": True}}


# -- the static part -------------------------------------------------------------------------


def test_the_static_text_is_kept_verbatim() -> None:
    static = kwargs_to_json({"when": datetime.datetime(2031, 1, 2, 3, 4, 5), "n": [1, 2]}).ok_value
    text = node_kwargs_json(static, {"r": taskresult_arg(stored(RESULTS[0]))}, None, META)
    assert text.startswith(static[:-1] + ",")
    assert MARKER in text


@pytest.mark.parametrize("static", [None, "", "{}", " { } ", '\n{"a": 1}\n'])
def test_empty_and_spaced_static_objects(static: str | None) -> None:
    tree = orjson.loads(node_kwargs_json(static, {}, None, META))
    assert tree.pop(META_KEY) == META
    assert tree == ({"a": 1} if static and "a" in static else {})


@pytest.mark.parametrize("static", ["[]", "1", '"{}"', "{", "null"])
def test_a_static_text_that_is_not_an_object(static: str) -> None:
    with pytest.raises(ValueError, match="JSON text of an object"):
        node_kwargs_json(static, {}, None, META)


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-10**6, 10**6) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3)
    | st.dictionaries(st.text(max_size=4), inner, max_size=3),
    max_leaves=8,
)


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.from_regex(r"[a-y][a-z_]{0,5}", fullmatch=True), JSON_VALUES,
                       max_size=4),
       st.integers(-10**6, 10**6))
def test_any_static_kwargs_survive_next_to_an_injection(static: dict[str, Any], ok: int) -> None:
    text = node_kwargs_json(kwargs_to_json(static).ok_value,
                            {"zz_input": taskresult_arg(stored(TaskResult(ok=ok)))}, None, META)
    decoded, injections = worker_side(text)
    assert decoded == static
    assert injections.results == {"zz_input": TaskResult(ok=ok)}


# -- conflicts -------------------------------------------------------------------------------


def test_an_injected_name_that_is_also_a_static_kwarg() -> None:
    with pytest.raises(KwargsConflictError, match="'stored' is both a static kwarg") as caught:
        node_kwargs_json('{"stored":1}', {"stored": taskresult_arg("{}")}, None, META)
    assert caught.value.name == "stored"


def test_a_name_that_only_appears_as_a_value_is_no_conflict() -> None:
    text = node_kwargs_json('{"label":"stored","n":{"stored":1}}',
                            {"stored": taskresult_arg(stored(RESULTS[0]))}, None, META)
    static, injections = worker_side(text)
    assert static == {"label": "stored", "n": {"stored": 1}}
    assert injections.results["stored"] == RESULTS[0]


@pytest.mark.parametrize("name", ["workflow_ctx", "workflow_meta", "__horsies_x"])
def test_reserved_names_cannot_be_injected(name: str) -> None:
    with pytest.raises(KwargsConflictError, match="reserved"):
        node_kwargs_json("{}", {name: taskresult_arg("{}")}, None, META)


@pytest.mark.parametrize("name", ["workflow_ctx", "workflow_meta"])
def test_reserved_names_cannot_be_static(name: str) -> None:
    with pytest.raises(KwargsConflictError, match="filled by the engine"):
        node_kwargs_json(f'{{"{name}":null}}', {}, None, META)


# -- what the worker refuses or tolerates -------------------------------------------------------


@pytest.mark.parametrize("data", [
    "{not json",
    '{"ok": 1}',
    '"text"',
    '{"__task_result__": true, "ok": null, "err": {"__task_error__": true, "error_code": 3}}',
    5,
    None,
    {"__task_result__": True, "ok": 1, "err": None},
])
def test_an_undecodable_input_becomes_a_deserialization_error(data: Any) -> None:
    tree = {"stored": {TASKRESULT_KEY: True, "data": data}, META_KEY: META}
    injections = split_injections(tree)
    error = injections.results["stored"].err_value
    assert error.error_code is OperationalErrorCode.RESULT_DESERIALIZATION_ERROR
    assert error.data == {"node": "stored"}
    assert tree == {}


@pytest.mark.parametrize("envelope", [
    {TASKRESULT_KEY: False, "data": "{}"},
    {TASKRESULT_KEY: True},
    {TASKRESULT_KEY: True, "data": "{}", "extra": 1},
])
def test_a_malformed_taskresult_envelope(envelope: dict[str, Any]) -> None:
    with pytest.raises(WireFormatError, match="kwargs\\['stored'\\]"):
        split_injections({"stored": envelope})


@pytest.mark.parametrize(("key", "raw"), [
    (META_KEY, []),
    (META_KEY, {"workflow_id": "wf", "task_index": "2", "task_name": "t"}),
    (META_KEY, {"workflow_id": "wf", "task_index": True, "task_name": "t"}),
    (CTX_KEY, {"workflow_id": "wf", "task_name": "t", "results_by_id": {}}),
    (CTX_KEY, {"workflow_id": "wf", "task_index": 1, "task_name": "t", "results_by_id": []}),
    (CTX_KEY, {"workflow_id": "wf", "task_index": 1, "task_name": "t",
               "results_by_id": {"a": {"__task_result__": True}}}),
    (CTX_KEY, {"workflow_id": "wf", "task_index": 1, "task_name": "t", "results_by_id": {},
               "summaries_by_id": {"c": "{oops"}}),
])
def test_a_malformed_context_or_meta_envelope(key: str, raw: Any) -> None:
    with pytest.raises(WireFormatError, match=key):
        split_injections({key: raw})


def test_a_corrupt_result_in_the_context_is_handed_over() -> None:
    ctx = ctx_envelope("wf", 0, "t", {"a": "{broken", "b": stored(RESULTS[0])}, None)
    _, injections = worker_side(node_kwargs_json(None, {}, ctx, META))
    error = injections.ctx.result_for(NodeKey("a")).err_value
    assert error.error_code is OperationalErrorCode.RESULT_DESERIALIZATION_ERROR
    assert error.data == {"node": "a"}
    assert injections.ctx.result_for(NodeKey("b")) == RESULTS[0]


def test_an_unknown_reserved_key_is_refused() -> None:
    # The codec lets such keys through when decoding; a task would see them.
    with pytest.raises(WireFormatError, match="unknown reserved key '__horsies_later__'"):
        split_injections({"a": 1, "__horsies_later__": {}, META_KEY: META})


def test_every_row_carries_the_marker() -> None:
    assert MARKER in node_kwargs_json(None, {}, None, META)
