"""`WorkflowDefinition` (workflows.md §4.3) and the start-time re-check (§4.2, §12.1)."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from horsies import (
    ErrorCode,
    HorsiesError,
    MultipleValidationErrors,
    OnError,
    SubWorkflowNode,
    SuccessCase,
    SuccessPolicy,
    TaskNode,
    WorkflowDefinition,
    WorkflowSpec,
    WorkflowValidationError,
)
from horsies.workflows.definition import get_workflow_definition
from horsies.workflows.validation import resolve_for_start
from tests.unit.workflow_tasks import app, count, custom_app, fast_task, fetch, parse

E = ErrorCode


def unique_key() -> str:
    return f"tests.definition.{uuid.uuid4().hex[:8]}"


class Rates(WorkflowDefinition[int]):
    name = "rates"
    definition_key = unique_key()

    download = TaskNode(fetch, kwargs={"url": "https://example.org/rates.xml"})
    parsed = TaskNode(parse, waits_for=[download], args_from={"raw": download})
    explicit = TaskNode(count, node_id="counted")

    class Meta:
        output = "parsed"
        on_error = OnError.PAUSE
        success_policy = SuccessPolicy([SuccessCase(["parsed"])], optional=["explicit"])


class Regional(WorkflowDefinition[int]):
    name = "regional"
    definition_key = unique_key()

    @classmethod
    def build_with(cls, app: Any, region: str = "eu", *args: Any, **kwargs: Any) -> Any:
        dump = TaskNode(fetch, kwargs={"url": f"https://example.org/{region}"}, node_id="dump")
        load = TaskNode(parse, waits_for=[dump], args_from={"raw": dump}, node_id="load")
        return WorkflowSpec(cls.name, [dump, load], output=load)


# -- collection ---------------------------------------------------------------------------


def test_nodes_are_collected_in_body_order_with_attribute_ids() -> None:
    pairs = Rates.get_workflow_nodes()
    assert [name for name, _ in pairs] == ["download", "parsed", "explicit"]
    assert [node.node_id for _, node in pairs] == ["download", "parsed", "counted"]
    assert Regional.get_workflow_nodes() == []


def test_nodes_of_a_base_class_are_not_inherited() -> None:
    class Derived(Rates):
        name = "derived"

    assert Derived.get_workflow_nodes() == []


def test_classes_are_registered_by_definition_key() -> None:
    assert get_workflow_definition(Rates.definition_key) is Rates
    assert get_workflow_definition("tests.definition.never") is None


def test_hrs_017_a_key_claimed_by_another_class() -> None:
    with pytest.raises(WorkflowValidationError) as caught:
        class Impostor(WorkflowDefinition[int]):
            name = "impostor"
            definition_key = Rates.definition_key
            only = TaskNode(count)

    assert caught.value.code is E.WORKFLOW_DUPLICATE_DEFINITION_KEY
    assert get_workflow_definition(Rates.definition_key) is Rates


# -- build ---------------------------------------------------------------------------------


def test_build_uses_meta_and_never_changes_the_class() -> None:
    spec = Rates.build(app)
    assert [n.node_id for n in spec.tasks] == ["download", "parsed", "counted"]
    assert spec.output is spec.tasks[1] and spec.on_error is OnError.PAUSE
    assert spec.success_policy is not None
    assert spec.success_policy.as_indices() == {"cases": [{"required_indices": [1]}],
                                                "optional_indices": [2]}
    assert spec.definition_key == Rates.definition_key and spec.workflow_def_cls is Rates
    assert spec.app is app
    assert Rates.download.index is None and not Rates.download.frozen
    assert Rates.build(app).tasks[0] is not spec.tasks[0]


def test_build_collects_hrs_001_002_016() -> None:
    class Empty(WorkflowDefinition[None]):
        pass

    with pytest.raises(MultipleValidationErrors) as caught:
        Empty.build(app)
    assert [e.code for e in caught.value.errors] == [
        E.WORKFLOW_NO_NAME, E.WORKFLOW_NO_NODES, E.WORKFLOW_NO_DEFINITION_KEY]


def test_definition_key_is_not_inherited() -> None:
    class Copy(Rates):
        name = "copy"
        only = TaskNode(count)

    with pytest.raises(WorkflowValidationError) as caught:
        Copy.build(app)
    assert caught.value.code is E.WORKFLOW_NO_DEFINITION_KEY


def test_hrs_025_output_type_against_the_generic() -> None:
    class Lying(WorkflowDefinition[str]):
        name = "lying"
        definition_key = unique_key()
        only = TaskNode(count)

        class Meta:
            output = "only"

    with pytest.raises(WorkflowValidationError) as caught:
        Lying.build(app)
    assert caught.value.code is E.WORKFLOW_OUTPUT_TYPE_MISMATCH
    assert "WorkflowDefinition[str]" in caught.value.message and "int" in caught.value.message


def test_hrs_025_no_output_needs_none_or_any() -> None:
    class NoOutput(WorkflowDefinition[int]):
        name = "no_output"
        definition_key = unique_key()
        only = TaskNode(count)

    class Quiet(WorkflowDefinition[None]):
        name = "quiet"
        definition_key = unique_key()
        only = TaskNode(count)

    with pytest.raises(WorkflowValidationError) as caught:
        NoOutput.build(app)
    assert caught.value.code is E.WORKFLOW_OUTPUT_TYPE_MISMATCH
    assert Quiet.build(app).output is None


# -- build_with ------------------------------------------------------------------------------


def test_default_build_with_is_build() -> None:
    spec = Rates.build_with(app, ignored="x")
    assert spec.definition_key == Rates.definition_key


def test_build_with_spec_inherits_the_class_key() -> None:
    spec = Regional.build_with(app, region="us")
    assert spec.definition_key == Regional.definition_key
    assert spec.workflow_def_cls is Regional
    assert spec.tasks[0].kwargs["url"] == "https://example.org/us"


def test_build_with_must_return_a_fresh_spec() -> None:
    cached = Regional.build_with(app)

    class Caching(WorkflowDefinition[int]):
        name = "caching"
        definition_key = unique_key()

        @classmethod
        def build_with(cls, app: Any, *args: Any, **kwargs: Any) -> Any:
            return cached

    with pytest.raises(WorkflowValidationError, match="fresh WorkflowSpec per call"):
        Caching.build_with(app)


def test_build_with_output_type_is_checked() -> None:
    class Wrong(WorkflowDefinition[str]):
        name = "wrong"
        definition_key = unique_key()

        @classmethod
        def build_with(cls, app: Any, *args: Any, **kwargs: Any) -> Any:
            only = TaskNode(count)
            return app.workflow(cls.name, [only], output=only)

    with pytest.raises(WorkflowValidationError) as caught:
        Wrong.build_with(app)
    assert caught.value.code is E.WORKFLOW_OUTPUT_TYPE_MISMATCH


# -- start-time re-check ----------------------------------------------------------------------


def test_resolve_for_start_places_nodes_of_a_bare_spec() -> None:
    spec = WorkflowSpec("bare", [TaskNode(fast_task), TaskNode(fast_task, priority=2)],
                        definition_key="tests.bare")
    assert resolve_for_start(spec, custom_app) == []
    assert [(n.queue, n.priority) for n in spec.tasks] == [("fast", 5), ("fast", 2)]


def test_resolve_for_start_without_app_hrs_014_015_018() -> None:
    spec = WorkflowSpec("bare", [TaskNode(count), TaskNode(count, queue="default"),
                                 TaskNode(count, queue="default", priority=1),
                                 SubWorkflowNode(Rates)], definition_key="tests.bare")
    codes = [e.code for e in resolve_for_start(spec, None)]
    assert codes == [E.WORKFLOW_SUBWORKFLOW_APP_MISSING, E.WORKFLOW_UNRESOLVED_QUEUE,
                     E.WORKFLOW_UNRESOLVED_PRIORITY]
    assert spec.tasks[0].queue is None  # nothing changed


def test_resolve_for_start_refuses_a_queue_the_app_does_not_have() -> None:
    spec = WorkflowSpec("bare", [TaskNode(count, node_id="c")], definition_key="tests.bare")
    [error] = resolve_for_start(spec, custom_app)
    assert error.code is E.WORKFLOW_UNRESOLVED_QUEUE and "node 'c'" in error.message


def test_resolve_for_start_hrs_016_and_025() -> None:
    assert [e.code for e in resolve_for_start(WorkflowSpec("bare", [TaskNode(count)]), app)] == [
        E.WORKFLOW_NO_DEFINITION_KEY]

    class Typed(WorkflowDefinition[str]):
        name = "typed"
        definition_key = unique_key()

    only = TaskNode(count)
    spec = WorkflowSpec("typed", [only], output=only, definition_key="k",
                        workflow_def_cls=Typed)
    assert [e.code for e in resolve_for_start(spec, app)] == [E.WORKFLOW_OUTPUT_TYPE_MISMATCH]


def test_app_workflow_specs_need_no_placement_at_start() -> None:
    spec = Rates.build(app)
    assert resolve_for_start(spec, None) == []


def test_errors_are_horsies_errors() -> None:
    assert issubclass(WorkflowValidationError, HorsiesError)
