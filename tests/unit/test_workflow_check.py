"""The workflow phases of ``app.check()``: definitions, builders (workflows.md §4.5)."""

from __future__ import annotations

import builtins
import sys
import textwrap
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from horsies import AppConfig, Horsies, PostgresConfig
from horsies.checks import run_checks
from horsies.errors import ErrorCode, HorsiesError, WorkflowValidationError
from horsies.workflows.check import MAX_SUBWORKFLOW_DEPTH, BuilderEntry, check_one_builder

URL = "postgresql://u:secret@localhost:1/db"

HEADER = textwrap.dedent(
    """
    import builtins
    from horsies import (
        SubWorkflowNode, TaskError, TaskNode, TaskResult, WorkflowDefinition, WorkflowSpec,
    )

    app = builtins.APP

    @app.task("step")
    def step(x: int = 0) -> TaskResult[int, TaskError]:
        return TaskResult(ok=x)
    """
)


def codes(errors: list[HorsiesError]) -> list[str]:
    return [str(e.code) for e in errors]


@pytest.fixture
def app(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Horsies]:
    monkeypatch.setattr(sys, "path", list(sys.path))
    monkeypatch.delenv("HORSIES_DATABASE_URL", raising=False)
    made = Horsies(AppConfig(broker=PostgresConfig(database_url=URL)))
    builtins.APP = made  # type: ignore[attr-defined]
    yield made
    del builtins.APP  # type: ignore[attr-defined]


@pytest.fixture
def module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    package = f"wfchk_{uuid.uuid4().hex[:10]}"
    (tmp_path / package).mkdir()
    (tmp_path / package / "__init__.py").write_text("")
    monkeypatch.syspath_prepend(str(tmp_path))

    def write(body: str) -> str:
        (tmp_path / package / "flows.py").write_text(HEADER + textwrap.dedent(body))
        return f"{package}.flows"

    yield write
    for name in [m for m in sys.modules if m.split(".")[0] == package]:
        del sys.modules[name]


def key() -> str:
    return f"tests.check.{uuid.uuid4().hex[:8]}"


# -- phase 3.1 -------------------------------------------------------------------------


def test_definition_without_key_is_hrs_016(app: Horsies, module: Any) -> None:
    app.discover_tasks([module(
        """
        class Nightly(WorkflowDefinition[int]):
            name = "nightly"
            only = TaskNode(step)
            class Meta:
                output = "only"

        class Keyed(WorkflowDefinition[int]):
            name = "keyed"
            definition_key = "@K@"
            only = TaskNode(step)
        """.replace("@K@", key())
    )])
    [error] = run_checks(app)
    assert error.code is ErrorCode.WORKFLOW_NO_DEFINITION_KEY
    assert "Nightly" in error.message
    assert error.location is not None and error.location.file.endswith("flows.py")


def test_children_of_definitions_are_checked_too(app: Horsies, module: Any) -> None:
    app.discover_tasks([module(
        """
        import builtins
        Child = builtins.CHILD_WITHOUT_KEY

        class Parent(WorkflowDefinition[None]):
            name = "parent"
            definition_key = "@K@"
            child = SubWorkflowNode(Child)
        """.replace("@K@", key())
    )])
    from horsies import TaskNode, WorkflowDefinition
    from tests.unit.workflow_tasks import count

    class Orphan(WorkflowDefinition[int]):  # defined here, outside the discovered modules
        name = "orphan"
        only = TaskNode(count)

    builtins.CHILD_WITHOUT_KEY = Orphan  # type: ignore[attr-defined]
    try:
        [error] = run_checks(app)
    finally:
        del builtins.CHILD_WITHOUT_KEY  # type: ignore[attr-defined]
    assert error.code is ErrorCode.WORKFLOW_NO_DEFINITION_KEY and "Orphan" in error.message


def test_expansion_depth_is_bounded() -> None:
    assert MAX_SUBWORKFLOW_DEPTH == 32


# -- phase 3.2 -------------------------------------------------------------------------


def test_registered_builders_run_with_sends_suppressed(app: Horsies, module: Any) -> None:
    app.discover_tasks([module(
        """
        seen = []

        @app.workflow_builder()
        def nightly() -> WorkflowSpec:
            seen.append(app.are_sends_suppressed())
            return app.workflow("nightly", [TaskNode(step)], definition_key="@K1@")

        @app.workflow_builder(cases=[{"tenant": "acme"}, {"tenant": "globex"}])
        def tenant_sync(tenant: str) -> WorkflowSpec:
            seen.append(tenant)
            return app.workflow(f"sync {tenant}", [TaskNode(step)], definition_key="@K2@")
        """.replace("@K1@", key()).replace("@K2@", key())
    )])
    assert run_checks(app) == []
    flows = sys.modules[app.get_discovered_task_modules()[0]]
    assert flows.seen == [True, "acme", "globex"]
    assert [fn.__name__ for fn, _ in app.get_workflow_builders()] == ["nightly", "tenant_sync"]


def test_builder_validation_errors_are_reported_as_themselves(
    app: Horsies, module: Any
) -> None:
    app.discover_tasks([module(
        """
        @app.workflow_builder()
        def looping() -> WorkflowSpec:
            a = TaskNode(step, node_id="a")
            b = TaskNode(step, node_id="b", waits_for=[a])
            a.waits_for.append(b)
            return app.workflow("loop", [a, b, TaskNode(step, kwargs={"x": {1}})],
                                definition_key="@K@")
        """.replace("@K@", key())
    )])
    assert codes(run_checks(app)) == ["HRS-007", "HRS-031"]


def test_builder_returning_a_spec_without_key_is_hrs_029(app: Horsies, module: Any) -> None:
    app.discover_tasks([module(
        """
        @app.workflow_builder()
        def bare() -> WorkflowSpec:
            return WorkflowSpec("bare", [TaskNode(step)])
        """
    )])
    [error] = run_checks(app)
    assert error.code is ErrorCode.WORKFLOW_CHECK_BUILDER_EXCEPTION
    assert "definition_key" in error.message


def test_builder_with_required_params_needs_cases() -> None:
    def build(tenant: str) -> Any:
        return None

    [error] = check_one_builder(BuilderEntry(build, None))
    assert error.code is ErrorCode.WORKFLOW_CHECK_CASES_REQUIRED


def test_builder_cases_are_validated() -> None:
    def build(tenant: str, region: str = "eu") -> Any:
        raise AssertionError("not called for invalid cases")

    errors = check_one_builder(
        BuilderEntry(build, ["acme", {"tenant": "a", "colour": "red"}, {"region": "us"}])
    )
    assert codes(errors) == ["HRS-028", "HRS-028", "HRS-028"]


def test_builder_raising_or_returning_garbage_is_hrs_029() -> None:
    def broken() -> Any:
        raise RuntimeError("bad builder")

    def wrong() -> Any:
        return 42

    [raised] = check_one_builder(BuilderEntry(broken, None))
    [returned] = check_one_builder(BuilderEntry(wrong, None))
    assert raised.code is ErrorCode.WORKFLOW_CHECK_BUILDER_EXCEPTION
    assert raised.notes == ["RuntimeError: bad builder"]
    assert returned.code is ErrorCode.WORKFLOW_CHECK_BUILDER_EXCEPTION
    assert raised.location is not None and raised.location.file == __file__


def test_builder_horsies_errors_are_reported_as_themselves() -> None:
    def build() -> Any:
        raise WorkflowValidationError("no nodes", code=ErrorCode.WORKFLOW_NO_NODES)

    assert codes(check_one_builder(BuilderEntry(build, None))) == ["HRS-002"]


def test_workflow_builder_returns_the_function_unchanged(app: Horsies) -> None:
    def build() -> None:
        return None

    assert app.workflow_builder()(build) is build
    assert app.workflow_builder()(build) is build  # registered once
    assert app.get_workflow_builders() == [(build, None)]
    assert build.__horsies_workflow_builder__ is True  # type: ignore[attr-defined]


# -- phase 3.3 -------------------------------------------------------------------------


def test_registered_builders_are_not_reported_as_undecorated(
    app: Horsies, module: Any
) -> None:
    app.discover_tasks([module(
        """
        @app.workflow_builder()
        def nightly() -> WorkflowSpec:
            return app.workflow("nightly", [TaskNode(step)], definition_key="@K@")

        def forgotten() -> WorkflowSpec[int]:
            return app.workflow("f", [TaskNode(step)], definition_key="@K@")
        """.replace("@K@", key())
    )])
    [error] = run_checks(app)
    assert error.code is ErrorCode.WORKFLOW_CHECK_UNDECORATED_BUILDER
    assert "forgotten" in error.message
