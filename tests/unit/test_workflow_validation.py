"""Build-time validation: one test per HRS code, the gate order and error collection
(workflows.md §11)."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from horsies import (
    ErrorCode,
    HorsiesError,
    MultipleValidationErrors,
    SubWorkflowNode,
    SuccessCase,
    SuccessPolicy,
    TaskNode,
    WorkflowDefinition,
    WorkflowSpec,
    WorkflowValidationError,
)
from horsies.workflows.node_checks import condition_ref
from tests.unit import workflow_tasks as wt
from tests.unit.workflow_tasks import (
    Conditions,
    adopt,
    anything,
    count,
    fetch,
    maybe,
    meta_only,
    parse,
    pet,
    report,
    strict_ctx,
    too_large,
    untyped_input,
)

E = ErrorCode


def errors_of(build: Any) -> list[HorsiesError]:
    with pytest.raises(HorsiesError) as caught:
        build()
    error = caught.value
    return list(error.errors) if isinstance(error, MultipleValidationErrors) else [error]


def only_error(build: Any) -> HorsiesError:
    [error] = errors_of(build)
    return error


def spec(*nodes: Any, **options: Any) -> WorkflowSpec[Any]:
    return WorkflowSpec("wf", list(nodes), **options)


def fetch_node(**options: Any) -> TaskNode[str]:
    return TaskNode(fetch, kwargs={"url": "https://example.org"}, **options)


def names_node(error: HorsiesError, node_id: str, task: str) -> bool:
    return f"node '{node_id}'" in error.message and f"'{task}'" in error.message


# -- HRS-002 … HRS-007: structure ---------------------------------------------------------


def test_hrs_002_no_nodes() -> None:
    assert only_error(lambda: spec()).code is E.WORKFLOW_NO_NODES


@pytest.mark.parametrize("bad", ["", "has space", "x" * 129, "tab\t"])
def test_hrs_003_invalid_explicit_id(bad: str) -> None:
    error = only_error(lambda: spec(TaskNode(count, node_id=bad)))
    assert error.code is E.WORKFLOW_INVALID_NODE_ID and "'count'" in error.message


def test_hrs_003_workflow_name_too_long_for_derived_ids() -> None:
    error = only_error(lambda: WorkflowSpec("n" * 130, [TaskNode(count)]))
    assert error.code is E.WORKFLOW_INVALID_NODE_ID and "too long" in error.message


def test_hrs_004_duplicate_ids_and_a_node_listed_twice() -> None:
    error = only_error(lambda: spec(TaskNode(count, node_id="c"), TaskNode(count, node_id="c")))
    assert error.code is E.WORKFLOW_DUPLICATE_NODE_ID and names_node(error, "c", "count")
    node = TaskNode(count)
    error = only_error(lambda: spec(node, node))
    assert error.code is E.WORKFLOW_DUPLICATE_NODE_ID and "listed twice" in error.message


def test_hrs_005_no_root() -> None:
    a, b = TaskNode(count, node_id="a"), TaskNode(count, node_id="b")
    a.waits_for.append(b)
    b.waits_for.append(a)
    codes = [e.code for e in errors_of(lambda: spec(a, b))]
    assert codes == [E.WORKFLOW_NO_ROOT_TASKS, E.WORKFLOW_CYCLE_DETECTED]


def test_hrs_006_dependency_outside_tasks() -> None:
    outside = TaskNode(count, node_id="outside")
    error = only_error(lambda: spec(TaskNode(count), TaskNode(count, node_id="late",
                                                              waits_for=[outside])))
    assert error.code is E.WORKFLOW_INVALID_DEPENDENCY
    assert names_node(error, "late", "count") and "outside" in error.message


def test_hrs_007_cycle_lists_the_stuck_nodes() -> None:
    root = TaskNode(count, node_id="root")
    a = TaskNode(count, node_id="a", waits_for=[root])
    b = TaskNode(count, node_id="b", waits_for=[a])
    a.waits_for.append(b)
    error = only_error(lambda: spec(root, a, b))
    assert error.code is E.WORKFLOW_CYCLE_DETECTED
    assert "node 'a' (task 'count'), node 'b' (task 'count')" in error.message
    assert error.notes == ["nodes left with unresolved dependencies: a, b"]


# -- HRS-008 … HRS-013: data flow, output, policy, join --------------------------------------


def test_hrs_008_args_from_source_not_in_waits_for() -> None:
    source = fetch_node(node_id="src")
    error = only_error(lambda: spec(source, TaskNode(parse, node_id="p",
                                                     args_from={"raw": source})))
    assert error.code is E.WORKFLOW_INVALID_ARGS_FROM and names_node(error, "p", "parse")


def test_hrs_008_unknown_args_from_source() -> None:
    stranger = fetch_node()
    errors = errors_of(lambda: spec(TaskNode(parse, node_id="p", args_from={"raw": stranger})))
    assert [e.code for e in errors] == [E.WORKFLOW_INVALID_ARGS_FROM]


def test_hrs_009_ctx_from_not_in_waits_for() -> None:
    source = fetch_node()
    error = only_error(lambda: spec(source, TaskNode(report, node_id="r",
                                                     workflow_ctx_from=[source])))
    assert error.code is E.WORKFLOW_INVALID_CTX_FROM and names_node(error, "r", "report")


def test_hrs_010_ctx_from_without_workflow_ctx_parameter() -> None:
    source = fetch_node()
    node = TaskNode(count, node_id="c", waits_for=[source], workflow_ctx_from=[source])
    error = only_error(lambda: spec(source, node))
    assert error.code is E.WORKFLOW_CTX_PARAM_MISSING and names_node(error, "c", "count")


def test_hrs_011_output_outside_tasks() -> None:
    error = only_error(lambda: spec(TaskNode(count), output=TaskNode(count)))
    assert error.code is E.WORKFLOW_INVALID_OUTPUT


def test_hrs_012_success_policy() -> None:
    a = TaskNode(count)
    for policy in (
        SuccessPolicy([]),
        SuccessPolicy([SuccessCase([])]),
        SuccessPolicy([SuccessCase([TaskNode(count)])]),
        SuccessPolicy([SuccessCase([a])], optional=[TaskNode(count)]),
    ):
        error = only_error(lambda p=policy: spec(a, success_policy=p))
        assert error.code is E.WORKFLOW_INVALID_SUCCESS_POLICY


@pytest.mark.parametrize(("join", "min_success"), [
    ("some", None), ("quorum", None), ("quorum", 0), ("quorum", 3), ("all", 1), ("any", 1),
])
def test_hrs_013_join_and_min_success(join: Any, min_success: Any) -> None:
    a, b = TaskNode(count), TaskNode(count)
    node = TaskNode(count, node_id="j", waits_for=[a, b], join=join, min_success=min_success)
    error = only_error(lambda: spec(a, b, node))
    assert error.code is E.WORKFLOW_INVALID_JOIN and names_node(error, "j", "count")


def test_hrs_013_any_join_needs_defaults_on_args_from_targets() -> None:
    a, b = fetch_node(), fetch_node()
    strict = TaskNode(parse, node_id="p", waits_for=[a, b], args_from={"raw": a}, join="any")
    error = only_error(lambda: spec(a, b, strict))
    assert error.code is E.WORKFLOW_INVALID_JOIN and "default" in error.message
    lenient = TaskNode(maybe, waits_for=[a, b], args_from={"raw": a}, join="quorum",
                       min_success=1)
    spec(a, b, lenient)


def test_quorum_counts_deduplicated_dependencies() -> None:
    a = TaskNode(count)
    node = TaskNode(count, waits_for=[a, a], join="quorum", min_success=2)
    assert only_error(lambda: spec(a, node)).code is E.WORKFLOW_INVALID_JOIN


# -- HRS-019 … HRS-024: parameters -----------------------------------------------------------


def test_hrs_019_unknown_and_reserved_kwarg_keys() -> None:
    errors = errors_of(lambda: spec(
        TaskNode(count, node_id="c", kwargs={"colour": "red"}),
        TaskNode(report, node_id="r", kwargs={"workflow_ctx": None}),
    ))
    assert [e.code for e in errors] == [E.WORKFLOW_INVALID_KWARG_KEY] * 2
    assert names_node(errors[0], "c", "count") and "colour" in errors[0].message
    assert "reserved" in errors[1].message


def test_hrs_019_var_kwargs_accept_any_key() -> None:
    spec(TaskNode(anything, kwargs={"colour": "red", "size": 3}))


def test_hrs_020_missing_required_parameter() -> None:
    error = only_error(lambda: spec(TaskNode(fetch, node_id="f")))
    assert error.code is E.WORKFLOW_MISSING_REQUIRED_PARAMS
    assert names_node(error, "f", "fetch") and "'url'" in error.message


def test_hrs_020_workflow_ctx_without_default_needs_ctx_from() -> None:
    error = only_error(lambda: spec(TaskNode(strict_ctx)))
    assert error.code is E.WORKFLOW_MISSING_REQUIRED_PARAMS and "workflow_ctx" in error.message
    source = TaskNode(count)
    spec(source, TaskNode(strict_ctx, waits_for=[source], workflow_ctx_from=[source]))


def test_workflow_meta_is_always_injected() -> None:
    spec(TaskNode(meta_only))


def test_hrs_021_kwargs_and_args_from_overlap() -> None:
    source = fetch_node()
    node = TaskNode(parse, node_id="p", waits_for=[source], args_from={"raw": source},
                    kwargs={"raw": "text"})
    errors = errors_of(lambda: spec(source, node))
    assert [e.code for e in errors] == [E.WORKFLOW_KWARGS_ARGS_FROM_OVERLAP]
    assert names_node(errors[0], "p", "parse") and "'raw'" in errors[0].message


def test_hrs_024_target_must_be_annotated_as_task_result() -> None:
    source = fetch_node()
    node = TaskNode(untyped_input, node_id="u", waits_for=[source], args_from={"raw": source})
    error = only_error(lambda: spec(source, node))
    assert error.code is E.WORKFLOW_ARGS_FROM_TYPE_MISMATCH
    assert "must be annotated as TaskResult" in error.message


def test_hrs_024_incompatible_types() -> None:
    source = TaskNode(count)  # int
    node = TaskNode(parse, node_id="p", waits_for=[source], args_from={"raw": source})  # str
    error = only_error(lambda: spec(source, node))
    assert error.code is E.WORKFLOW_ARGS_FROM_TYPE_MISMATCH
    assert names_node(error, "p", "parse") and "int" in error.message


def test_hrs_024_subclasses_and_optional_targets_are_compatible() -> None:
    dog = TaskNode(adopt)
    spec(dog, TaskNode(pet, waits_for=[dog], args_from={"animal": dog}))
    text = fetch_node()
    spec(text, TaskNode(maybe, waits_for=[text], args_from={"raw": text}))


def test_type_compatibility_rules() -> None:
    from horsies.workflows.signatures import is_compatible

    assert is_compatible(int, Any) and is_compatible(Any, str)
    assert is_compatible(wt.Dog, wt.Animal) and not is_compatible(wt.Animal, wt.Dog)
    assert is_compatible(int, int | str) and not is_compatible(int | str, int)
    assert is_compatible(int | bool, int) and is_compatible(None, int | None)
    assert not is_compatible(list[int], list[str])


# -- HRS-031: kwargs snapshot --------------------------------------------------------------


def test_hrs_031_unserializable_kwarg_names_node_and_key() -> None:
    node = TaskNode(fetch, node_id="f", kwargs={"url": {1, 2}})
    error = only_error(lambda: spec(node))
    assert error.code is E.WORKFLOW_KWARGS_NOT_SERIALIZABLE
    assert names_node(error, "f", "fetch") and "kwargs['url']" in error.message
    assert error.location is not None and error.location.file.endswith("workflow_tasks.py")


# -- conditions --------------------------------------------------------------------------------


def test_module_level_conditions_are_stored_by_reference() -> None:
    built = spec(TaskNode(count, skip_when=too_large, run_when=Conditions.class_check),
                 TaskNode(count, run_when=Conditions.static_check))
    first, second = built.tasks
    assert first.skip_when_ref == "tests.unit.workflow_tasks:too_large"
    assert first.run_when_ref == "tests.unit.workflow_tasks:Conditions.class_check"
    assert second.run_when_ref == "tests.unit.workflow_tasks:Conditions.static_check"


@pytest.mark.parametrize("condition", [
    lambda ctx: True,
    Conditions().bound_check,
    "too_large",
])
def test_unstorable_conditions_are_refused(condition: Any) -> None:
    error = only_error(lambda: spec(TaskNode(count, node_id="c", skip_when=condition)))
    assert isinstance(error, WorkflowValidationError) and names_node(error, "c", "count")
    assert "skip_when" in error.message


def test_nested_functions_are_not_storable() -> None:
    def local(ctx: object) -> bool:
        return True

    assert condition_ref(local).startswith("!")


# -- gates and collection ----------------------------------------------------------------------


def test_id_errors_are_raised_alone() -> None:
    outside = TaskNode(count)
    errors = errors_of(lambda: spec(
        TaskNode(count, node_id="bad id"),
        TaskNode(count, waits_for=[outside]),  # HRS-006, not reported while ids are wrong
        TaskNode(fetch, kwargs={"url": {1}}),  # HRS-031, likewise
    ))
    assert [e.code for e in errors] == [E.WORKFLOW_INVALID_NODE_ID]


def test_other_errors_are_collected_into_one_report() -> None:
    outside = TaskNode(count)
    with pytest.raises(MultipleValidationErrors) as caught:
        spec(
            TaskNode(count, node_id="dep", waits_for=[outside]),
            TaskNode(fetch, node_id="f", kwargs={"url": {1}}),
            TaskNode(count, node_id="j", join="nope"),  # type: ignore[arg-type]
        )
    codes = [e.code for e in caught.value.errors]
    assert codes == [E.WORKFLOW_INVALID_DEPENDENCY, E.WORKFLOW_INVALID_JOIN,
                     E.WORKFLOW_KWARGS_NOT_SERIALIZABLE]
    assert "aborting due to 3 previous errors" in str(caught.value)


def test_errors_point_at_the_task_function() -> None:
    error = only_error(lambda: spec(TaskNode(fetch, node_id="f")))
    assert error.location is not None
    assert error.location.file.endswith("workflow_tasks.py")


# -- subworkflow nodes (HRS-016, 019, 020, 022, 023, 024, 007) -------------------------------------


def unique_key() -> str:
    return f"tests.validation.{uuid.uuid4().hex[:8]}"


class Child(WorkflowDefinition[int]):
    name = "child"
    definition_key = unique_key()
    only = TaskNode(count)

    class Meta:
        output = "only"


class Parameterized(WorkflowDefinition[int]):
    name = "parameterized"
    definition_key = unique_key()

    @classmethod
    def build_with(cls, app: Any, region: str, raw: Any = None, *args: Any,
                   **kwargs: Any) -> WorkflowSpec[int]:
        return app.workflow(cls.name, [TaskNode(count)], definition_key=cls.definition_key)


class NoApp(WorkflowDefinition[int]):
    name = "no_app"
    definition_key = unique_key()

    @classmethod
    def build_with(cls, *, region: str) -> WorkflowSpec[int]:  # type: ignore[override]
        raise AssertionError("never called")


class Keyless(WorkflowDefinition[int]):
    name = "keyless"
    only = TaskNode(count)


def test_subworkflow_node_name_and_key() -> None:
    node = SubWorkflowNode(Child, node_id="kid")
    assert node.name == "child" and node.definition_key == Child.definition_key
    with pytest.raises(TypeError):
        SubWorkflowNode(int)  # type: ignore[arg-type]


def test_hrs_016_child_without_definition_key() -> None:
    error = only_error(lambda: spec(SubWorkflowNode(Keyless, node_id="k")))
    assert error.code is E.WORKFLOW_NO_DEFINITION_KEY and "node 'k'" in error.message


def test_hrs_022_parameters_need_a_build_with_override() -> None:
    node = SubWorkflowNode(Child, node_id="c", kwargs={"region": "eu"})
    error = only_error(lambda: spec(node))
    assert error.code is E.WORKFLOW_SUBWORKFLOW_PARAMS_REQUIRE_BUILD_WITH
    assert names_node(error, "c", "child")


def test_hrs_023_build_with_that_cannot_take_the_app() -> None:
    node = SubWorkflowNode(NoApp, node_id="n", kwargs={"region": "eu"})
    error = only_error(lambda: spec(node))
    assert error.code is E.WORKFLOW_SUBWORKFLOW_BUILD_WITH_BINDING
    assert names_node(error, "n", "no_app") and "no positional app" in error.message
    error = only_error(lambda: spec(SubWorkflowNode(Parameterized,
                                                    kwargs={"region": "eu", "app": 1})))
    assert error.code is E.WORKFLOW_SUBWORKFLOW_BUILD_WITH_BINDING


def test_build_with_parameters_are_checked_like_task_parameters() -> None:
    spec(SubWorkflowNode(Parameterized, kwargs={"region": "eu", "extra": 1}))  # **kwargs
    error = only_error(lambda: spec(SubWorkflowNode(Parameterized, node_id="p")))
    assert error.code is E.WORKFLOW_MISSING_REQUIRED_PARAMS and "'region'" in error.message


def test_hrs_024_subworkflow_source_types() -> None:
    child = SubWorkflowNode(Child)  # produces int
    node = TaskNode(parse, node_id="p", waits_for=[child], args_from={"raw": child})
    error = only_error(lambda: spec(child, node))
    assert error.code is E.WORKFLOW_ARGS_FROM_TYPE_MISMATCH


def test_hrs_007_definitions_that_contain_each_other() -> None:
    class Inner(WorkflowDefinition[None]):
        name = "inner"
        definition_key = unique_key()
        only = TaskNode(count)

    class Outer(WorkflowDefinition[None]):
        name = "outer"
        definition_key = unique_key()
        inner = SubWorkflowNode(Inner)

    # A class body cannot name itself, so the loop is closed after the fact.
    Inner.__horsies_nodes__ = (*Inner.get_workflow_nodes(),  # type: ignore[attr-defined]
                               ("outer", SubWorkflowNode(Outer)))
    error = only_error(lambda: spec(SubWorkflowNode(Outer, node_id="o")))
    assert error.code is E.WORKFLOW_CYCLE_DETECTED
    assert "Outer -> " in error.message and error.message.endswith("Outer")
