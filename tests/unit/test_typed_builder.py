"""The typed node builder at run time: `task.node(...)(...)` and `from_node`
(workflows.md §4.4). Its static typing is tested in test_typed_builder_types.py."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from horsies import (
    ErrorCode,
    HorsiesError,
    MultipleValidationErrors,
    SubWorkflowNode,
    TaskNode,
    WorkflowDefinition,
    WorkflowSpec,
    WorkflowValidationError,
    from_node,
)
from horsies.workflows.builder import FromNode, NodeFactory
from tests.unit.workflow_tasks import anything, app, count, fetch, maybe, parse, pet, report

E = ErrorCode


class Child(WorkflowDefinition[str]):
    name = "child"
    step = TaskNode(fn=fetch, kwargs={"url": "u"})


def spec(*nodes: Any, **options: Any) -> WorkflowSpec[Any]:
    return WorkflowSpec("wf", list(nodes), **options)


def fields(node: TaskNode[Any]) -> dict[str, Any]:
    """What a node built by hand and one built by a factory must agree on."""
    return {
        "fn": node.fn, "kwargs": dict(node.kwargs), "waits_for": list(node.waits_for),
        "args_from": dict(node.args_from), "workflow_ctx_from": node.workflow_ctx_from,
        "queue": node.queue, "priority": node.priority,
        "allow_failed_deps": node.allow_failed_deps, "join": node.join,
        "min_success": node.min_success, "good_until": node.good_until,
        "node_id": node.node_id, "skip_when": node.skip_when, "run_when": node.run_when,
    }


# -- what the factory builds ----------------------------------------------------------


def test_the_example_of_the_spec_builds_the_same_node_as_by_hand() -> None:
    fetched = fetch.node(node_id="fetch")(url="https://feeds.example.org/rates.xml")
    parsed = parse.node(node_id="parse")(raw=from_node(fetched), currency="EUR")
    by_hand = TaskNode(fn=parse, waits_for=[fetched], args_from={"raw": fetched},
                       kwargs={"currency": "EUR"}, node_id="parse")
    assert type(parsed) is TaskNode
    assert fields(parsed) == fields(by_hand)
    assert fields(fetched) == fields(
        TaskNode(fn=fetch, kwargs={"url": "https://feeds.example.org/rates.xml"},
                 node_id="fetch"))


def test_every_option_of_the_first_call_reaches_the_node() -> None:
    first = fetch.node()(url="a")
    second = count.node()()
    deadline = datetime(2030, 1, 1, tzinfo=UTC)
    node = maybe.node(
        waits_for=[first, second], args_from={"raw": first}, workflow_ctx_from=[second],
        node_id="m", queue="q", priority=7, allow_failed_deps=True, join="quorum",
        min_success=1, good_until=deadline,
    )()
    assert fields(node) == fields(TaskNode(
        fn=maybe, waits_for=[first, second], args_from={"raw": first},
        workflow_ctx_from=[second], node_id="m", queue="q", priority=7,
        allow_failed_deps=True, join="quorum", min_success=1, good_until=deadline,
    ))


def test_an_upstream_already_waited_for_is_not_added_again() -> None:
    first = fetch.node()(url="a")
    other = count.node()()
    node = parse.node(waits_for=[other, first])(raw=from_node(first))
    assert node.waits_for == [other, first]
    assert node.args_from == {"raw": first}


def test_one_upstream_feeding_two_keywords_is_waited_for_once() -> None:
    first = fetch.node()(url="a")
    node = anything.node()(a=from_node(first), b=from_node(first), c=3)
    assert node.waits_for == [first]
    assert node.args_from == {"a": first, "b": first}
    assert dict(node.kwargs) == {"c": 3}


def test_injected_upstreams_follow_the_declared_ones_in_keyword_order() -> None:
    first, second, third = fetch.node()(url="1"), fetch.node()(url="2"), count.node()()
    node = anything.node(waits_for=[third], args_from={"z": third})(
        b=from_node(second), a=from_node(first))
    assert node.waits_for == [third, second, first]
    assert node.args_from == {"z": third, "b": second, "a": first}


def test_a_subworkflow_node_can_be_an_upstream() -> None:
    child = SubWorkflowNode(Child)
    node = maybe.node()(raw=from_node(child))
    assert node.waits_for == [child]
    assert node.args_from == {"raw": child}


def test_a_factory_makes_a_new_node_each_call_and_keeps_its_options() -> None:
    first = fetch.node()(url="a")
    waits: list[Any] = [first]
    factory = anything.node(waits_for=waits)
    waits.append(count.node()())  # later changes to the caller's list do not leak in
    one, two = factory(x=1), factory(x=2)
    assert one is not two
    assert one.waits_for == [first] and two.waits_for == [first]
    one.waits_for.append(fetch.node()(url="b"))
    assert factory(x=3).waits_for == [first]
    assert isinstance(factory, NodeFactory)
    assert "anything" in repr(factory)


def test_the_built_spec_equals_the_one_built_by_hand() -> None:
    """Same ids, indices, edges, injections and kwargs snapshot: the engine sees
    no difference between the two ways of building."""
    a = fetch.node(node_id="fetch")(url="u")
    b = parse.node(node_id="parse")(raw=from_node(a), currency="NOK")
    c = report.node(node_id="report", waits_for=[a], workflow_ctx_from=[a])()
    built = spec(a, b, c, output=b)
    ha = TaskNode(fn=fetch, kwargs={"url": "u"}, node_id="fetch")
    hb = TaskNode(fn=parse, waits_for=[ha], args_from={"raw": ha},
                  kwargs={"currency": "NOK"}, node_id="parse")
    hc = TaskNode(fn=report, waits_for=[ha], workflow_ctx_from=[ha], node_id="report")
    by_hand = spec(ha, hb, hc, output=hb)
    for mine, theirs in zip(built.tasks, by_hand.tasks, strict=True):
        assert (mine.node_id, mine.index, mine.dependency_indices, mine.args_from_indices,
                mine.workflow_ctx_from_ids, mine._kwargs_json) == (
            theirs.node_id, theirs.index, theirs.dependency_indices, theirs.args_from_indices,
            theirs.workflow_ctx_from_ids, theirs._kwargs_json)
    assert b.index == 1 and b.node_id == "parse"  # written back onto the caller's node


def test_nodes_of_the_builder_go_through_app_workflow() -> None:
    a = fetch.node()(url="u")
    b = parse.node()(raw=from_node(a))
    built = app.workflow("built", [a, b], output=b, definition_key="tests.builder.v1")
    assert [node.node_id for node in built.tasks] == ["built:0", "built:1"]
    assert built.tasks[1].args_from_indices == {"raw": 0}


# -- errors raised at once ----------------------------------------------------------------


def test_positional_arguments_raise_hrs_026_at_once() -> None:
    factory = fetch.node(node_id="f")
    with pytest.raises(WorkflowValidationError) as caught:
        factory("https://example.org")  # type: ignore[call-arg]  # the point of the test
    assert caught.value.code is E.WORKFLOW_POSITIONAL_ARGS_NOT_SUPPORTED
    assert caught.value.code == "HRS-026"
    assert "fetch" in caught.value.message
    # the error points at the caller's line, not into horsies
    assert caught.value.location is not None
    assert caught.value.location.file == __file__


def test_from_node_and_args_from_for_one_keyword_raise_hrs_021_at_once() -> None:
    first, second = fetch.node()(url="a"), fetch.node()(url="b")
    factory = parse.node(waits_for=[first], args_from={"raw": first})
    with pytest.raises(WorkflowValidationError) as caught:
        factory(raw=from_node(second))
    assert caught.value.code is E.WORKFLOW_KWARGS_ARGS_FROM_OVERLAP
    assert "'raw'" in caught.value.message


def test_a_static_keyword_that_repeats_args_from_is_left_to_the_spec() -> None:
    """Only the from_node/args_from overlap is the factory's; kwargs/args_from is
    reported by validation like for any node (HRS-021 as well)."""
    first = fetch.node()(url="a")
    node = parse.node(waits_for=[first], args_from={"raw": first})(raw="text")  # type: ignore[arg-type]
    with pytest.raises(WorkflowValidationError) as caught:
        spec(first, node)
    assert caught.value.code is E.WORKFLOW_KWARGS_ARGS_FROM_OVERLAP


@pytest.mark.parametrize("value", [fetch, "fetch", None, 3, FromNode(TaskNode(fn=count))],
                         ids=["task-function", "str", "none", "int", "marker"])
def test_from_node_of_anything_but_a_node_raises_hrs_008(value: Any) -> None:
    with pytest.raises(WorkflowValidationError) as caught:
        from_node(value)
    assert caught.value.code is E.WORKFLOW_INVALID_ARGS_FROM


def test_node_options_are_checked_when_the_factory_is_made() -> None:
    with pytest.raises(ValueError, match="priority"):
        fetch.node(priority=0)
    with pytest.raises(ValueError, match="good_until"):
        fetch.node(good_until=datetime(2030, 1, 1))  # naive on purpose


# -- a marker where no factory converts it ----------------------------------------------


def test_a_marker_in_task_node_kwargs_fails_the_build_with_hrs_008_only() -> None:
    first = fetch.node()(url="a")
    raw = TaskNode(fn=parse, waits_for=[first], kwargs={"raw": from_node(first)})
    with pytest.raises(HorsiesError) as caught:
        spec(first, raw)
    error = caught.value
    assert not isinstance(error, MultipleValidationErrors), error
    assert error.code is E.WORKFLOW_INVALID_ARGS_FROM
    assert "kwargs['raw']" in error.message and "from_node" in error.message


def test_a_marker_among_other_errors_is_reported_with_them() -> None:
    first = fetch.node()(url="a")
    raw = TaskNode(fn=pet, kwargs={"animal": from_node(first), "extra": 1})
    with pytest.raises(MultipleValidationErrors) as caught:
        spec(first, raw)
    codes = {error.code for error in caught.value.errors}
    assert E.WORKFLOW_INVALID_ARGS_FROM in codes
    assert E.WORKFLOW_INVALID_KWARG_KEY in codes
    assert E.WORKFLOW_KWARGS_NOT_SERIALIZABLE not in codes


def test_a_marker_in_subworkflow_kwargs_fails_the_build_with_hrs_008() -> None:
    first = fetch.node()(url="a")
    child = SubWorkflowNode(Child, waits_for=[first], kwargs={"x": from_node(first)})
    with pytest.raises(HorsiesError) as caught:
        spec(first, child)
    error = caught.value
    errors = list(error.errors) if isinstance(error, MultipleValidationErrors) else [error]
    assert E.WORKFLOW_INVALID_ARGS_FROM in {e.code for e in errors}
    assert E.WORKFLOW_KWARGS_NOT_SERIALIZABLE not in {e.code for e in errors}


def test_a_marker_is_immutable_and_shows_its_node() -> None:
    first = fetch.node(node_id="f")(url="a")
    marker = from_node(first)
    assert isinstance(marker, FromNode) and marker.node is first
    assert "fetch" in repr(marker) and "'f'" in repr(marker)
    with pytest.raises(AttributeError):
        marker.node = first
