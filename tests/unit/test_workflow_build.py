"""Building specs: ids, indices, copying, freezing, kwargs snapshot, app.workflow
(workflows.md §3, §4.1, §4.2)."""

from __future__ import annotations

from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any

import pytest

from horsies import (
    ConfigurationError,
    ErrorCode,
    MultipleValidationErrors,
    OnError,
    SuccessCase,
    SuccessPolicy,
    TaskNode,
    WorkflowSpec,
    WorkflowValidationError,
    slugify,
)
from horsies.workflows.spec import encoded_kwargs
from tests.unit.workflow_tasks import (
    Point,
    app,
    count,
    custom_app,
    fast_task,
    fetch,
    parse,
    place,
    slow_task,
)


def chain() -> tuple[TaskNode[str], TaskNode[int]]:
    first = TaskNode(fetch, kwargs={"url": "https://example.org/rates.xml"})
    second = TaskNode(parse, waits_for=[first], args_from={"raw": first})
    return first, second


# -- nodes ------------------------------------------------------------------------------


def test_slugify_keeps_valid_characters_and_drops_the_rest() -> None:
    assert slugify("Nightly Sales Roll-up!") == "Nightly_Sales_Roll-up"
    assert slugify("task:v2.0") == "task:v2.0"
    assert slugify("!!!") == "_"


def test_node_name_and_key() -> None:
    node = TaskNode(fetch, kwargs={"url": "u"}, node_id="fetch")
    assert node.name == "fetch"
    assert node.key().node_id == "fetch"
    with pytest.raises(WorkflowValidationError):
        TaskNode(fetch, kwargs={"url": "u"}).key()


@pytest.mark.parametrize("priority", [0, 101, True, 2.5])
def test_priority_out_of_range_is_refused_when_the_node_is_built(priority: Any) -> None:
    with pytest.raises(ValueError, match="priority"):
        TaskNode(count, priority=priority)


def test_naive_good_until_is_refused_when_the_node_is_built() -> None:
    with pytest.raises(ValueError, match="good_until"):
        TaskNode(count, good_until=datetime(2031, 1, 1))
    TaskNode(count, good_until=datetime(2031, 1, 1, tzinfo=UTC))


def test_fn_must_be_a_task_function() -> None:
    with pytest.raises(TypeError, match="@app.task"):
        TaskNode(print)  # type: ignore[arg-type]


def test_index_is_not_settable_by_callers() -> None:
    node = TaskNode(count)
    with pytest.raises(AttributeError):
        node.index = 3  # type: ignore[misc]


# -- ids and indices ----------------------------------------------------------------------


def test_ids_are_derived_from_the_slugified_name_and_index() -> None:
    first, second = chain()
    spec = WorkflowSpec("Rates Import!", [first, second])
    assert [n.node_id for n in spec.tasks] == ["Rates_Import:0", "Rates_Import:1"]
    assert [n.index for n in spec.tasks] == [0, 1]


def test_explicit_ids_are_kept() -> None:
    first = TaskNode(fetch, kwargs={"url": "u"}, node_id="fetch")
    spec = WorkflowSpec("rates", [first, TaskNode(count)])
    assert [n.node_id for n in spec.tasks] == ["fetch", "rates:1"]


def test_index_and_id_are_written_back_on_the_callers_nodes() -> None:
    first, second = chain()
    spec = WorkflowSpec("rates", [first, second])
    assert (first.index, first.node_id) == (0, "rates:0")
    assert (second.index, second.node_id) == (1, "rates:1")
    assert spec.tasks[0] is not first
    assert not first.frozen and spec.tasks[0].frozen


def test_reuse_in_a_second_spec_derives_automatic_ids_again() -> None:
    first, second = chain()
    first.node_id = None
    second.node_id = "parse"
    WorkflowSpec("one", [first, second])
    other = WorkflowSpec("two", [count_node := TaskNode(count), first, second])
    assert [n.node_id for n in other.tasks] == ["two:0", "two:1", "parse"]
    assert first.node_id == "two:1" and count_node.index == 0


def test_nodes_of_a_built_spec_can_build_another_spec() -> None:
    first, second = chain()
    one = WorkflowSpec("one", [first, second])
    two = WorkflowSpec("two", list(one.tasks))
    assert [n.node_id for n in two.tasks] == ["two:0", "two:1"]
    assert two.tasks[1].waits_for == (two.tasks[0],)
    assert [n.node_id for n in one.tasks] == ["one:0", "one:1"]  # frozen: untouched


def test_references_are_rewired_to_the_copies() -> None:
    first, second = chain()
    spec = WorkflowSpec("rates", [first, second], output=second,
                        success_policy=SuccessPolicy([SuccessCase([second])], optional=[first]))
    copy0, copy1 = spec.tasks
    assert copy1.waits_for == (copy0,) and copy1.args_from["raw"] is copy0
    assert spec.output is copy1
    assert spec.success_policy is not None
    assert spec.success_policy.cases[0].required == (copy1,)
    assert spec.success_policy.as_indices() == {
        "cases": [{"required_indices": [1]}], "optional_indices": [0]}


def test_duplicate_waits_for_entries_collapse_in_first_seen_order() -> None:
    a, b = TaskNode(count), TaskNode(count)
    c = TaskNode(count, waits_for=[b, a, b, a])
    spec = WorkflowSpec("dups", [a, b, c])
    assert spec.tasks[2].dependency_indices == (1, 0)
    assert len(c.waits_for) == 4  # the caller's node is not changed


def test_a_failed_build_leaves_the_callers_nodes_untouched() -> None:
    first, second = chain()
    loose = TaskNode(count, waits_for=[TaskNode(count)])
    with pytest.raises(WorkflowValidationError):
        WorkflowSpec("rates", [first, second, loose])
    assert first.index is None and first.node_id is None


# -- freezing -------------------------------------------------------------------------------


def test_frozen_objects_refuse_assignment_and_deletion() -> None:
    first, second = chain()
    spec = WorkflowSpec("rates", [first, second],
                        success_policy=SuccessPolicy([SuccessCase([second])]))
    node = spec.tasks[0]
    with pytest.raises(AttributeError, match="Cannot set 'kwargs' on frozen TaskNode"):
        node.kwargs = {}
    with pytest.raises(AttributeError, match="Cannot delete"):
        del node.queue
    with pytest.raises(AttributeError, match="frozen WorkflowSpec"):
        spec.name = "other"
    assert spec.success_policy is not None
    with pytest.raises(AttributeError, match="frozen SuccessPolicy"):
        spec.success_policy.cases = []
    with pytest.raises(AttributeError, match="frozen SuccessCase"):
        spec.success_policy.cases[0].required = []
    with pytest.raises(TypeError):
        node.args_from["x"] = node  # type: ignore[index]
    assert isinstance(spec.tasks, tuple) and isinstance(node.waits_for, tuple)


def test_kwargs_are_snapshotted_through_the_codec_and_deep_frozen() -> None:
    tags = ["a", "b"]
    options = {"tags": tags, "nested": {"k": [1, 2]}, "point": Point(1, 2)}
    node = TaskNode(place, kwargs={"point": Point(3, 4), "tags": tags})
    loose = TaskNode(fetch, kwargs={"url": options})  # any codec-friendly value
    spec = WorkflowSpec("snap", [node, loose])
    tags.append("c")
    frozen = spec.tasks[0].kwargs
    assert isinstance(frozen, MappingProxyType)
    assert frozen["tags"] == ("a", "b")
    assert frozen["point"] == Point(3, 4)
    nested = spec.tasks[1].kwargs["url"]
    assert isinstance(nested, MappingProxyType) and nested["nested"]["k"] == (1, 2)
    assert encoded_kwargs(spec.tasks[0]).startswith('{"point":{"__dataclass__"')
    assert encoded_kwargs(spec.tasks[1]).count('"tags":["a","b"]') == 1


def test_encoded_kwargs_of_a_node_without_kwargs() -> None:
    spec = WorkflowSpec("empty", [TaskNode(count)])
    assert encoded_kwargs(spec.tasks[0]) == "{}"
    with pytest.raises(ValueError):
        encoded_kwargs(TaskNode(count))


# -- app.workflow --------------------------------------------------------------------------


def test_app_workflow_resolves_default_mode_queue_and_priority() -> None:
    first, second = chain()
    urgent = TaskNode(count, priority=3)
    spec = app.workflow("rates", [first, second, urgent], output=second,
                        definition_key="tests.rates.v1")
    assert [(n.queue, n.priority) for n in spec.tasks] == [
        ("default", 100), ("default", 100), ("default", 3)]
    assert all(n.placed for n in spec.tasks)  # type: ignore[union-attr]
    assert first.queue is None and first.priority is None  # the caller's node is unchanged
    assert spec.app is app and spec.definition_key == "tests.rates.v1"
    assert spec.resend_on_transient_err is False


def test_app_workflow_in_custom_mode_uses_task_and_configured_queue_priority() -> None:
    nodes = [TaskNode(fast_task), TaskNode(slow_task), TaskNode(slow_task, queue="fast"),
             TaskNode(fast_task, priority=9)]
    spec = custom_app.workflow("custom", nodes, definition_key="tests.custom.v1")
    assert [(n.queue, n.priority) for n in spec.tasks] == [
        ("fast", 5), ("slow", 70), ("fast", 5), ("fast", 9)]


def test_unknown_queues_are_collected_before_anything_is_built() -> None:
    bad = [TaskNode(fast_task, queue="nowhere"), TaskNode(slow_task, queue="gone")]
    with pytest.raises(MultipleValidationErrors) as caught:
        custom_app.workflow("custom", bad, definition_key="tests.custom.v2")
    codes = [e.code for e in caught.value.errors]
    assert codes == [ErrorCode.TASK_INVALID_QUEUE, ErrorCode.TASK_INVALID_QUEUE]
    assert "fast_task" in caught.value.errors[0].message
    assert "nowhere" in caught.value.errors[0].message
    assert bad[0].index is None


def test_a_queue_in_default_mode_is_hrs_200() -> None:
    with pytest.raises(ConfigurationError) as caught:
        app.workflow("q", [TaskNode(count, queue="fast", node_id="c")], definition_key="k.q")
    assert caught.value.code is ErrorCode.CONFIG_INVALID_QUEUE_MODE
    assert "node 'c'" in caught.value.message and "'count'" in caught.value.message


def test_app_workflow_requires_a_definition_key() -> None:
    first, second = chain()
    with pytest.raises(WorkflowValidationError) as caught:
        app.workflow("rates", [first, second], definition_key="   ")
    assert caught.value.code is ErrorCode.WORKFLOW_NO_DEFINITION_KEY
    assert first.index is None  # nothing written back


@pytest.mark.parametrize("value", ["fail", "pause", OnError.PAUSE])
def test_on_error_accepts_its_string_values(value: Any) -> None:
    spec = app.workflow("r", [TaskNode(count)], on_error=value, definition_key="k.r")
    assert isinstance(spec.on_error, OnError) and spec.on_error == value


def test_unknown_on_error_is_a_value_error_naming_on_error() -> None:
    with pytest.raises(ValueError, match="on_error"):
        app.workflow("r", [TaskNode(count)], on_error="stop", definition_key="k.r")


def test_app_workflow_copies_resend_on_transient_err() -> None:
    from horsies import AppConfig, Horsies, PostgresConfig

    resending = Horsies(AppConfig(broker=PostgresConfig(database_url="postgresql://u@h/db"),
                                  resend_on_transient_err=True))
    spec = resending.workflow("r", [TaskNode(count)], definition_key="k.r")
    assert spec.resend_on_transient_err is True


def test_a_bare_spec_has_no_broker_and_unresolved_placement() -> None:
    spec = WorkflowSpec("bare", [TaskNode(count)])
    assert spec.broker is None and spec.app is None
    node = spec.tasks[0]
    assert isinstance(node, TaskNode)
    assert (node.queue, node.priority, node.placed) == (None, None, False)
