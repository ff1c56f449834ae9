"""Tasks for the workflow tests, run by real workers started from the CLI.

Every task appends one line to a ledger file when it starts ("<label>\\n", one
O_APPEND write, atomic across processes), so a test can count how many times
each node ran, even when its result never reached the database. Recovery
thresholds are the smallest allowed so that a killed worker's tasks are
recovered within seconds. HORSIES_DATABASE_URL (set by the tests) replaces the
placeholder URL.
"""

from __future__ import annotations

import os
import time
from typing import Any

from horsies import (
    AppConfig,
    Horsies,
    NodeKey,
    PostgresConfig,
    RecoveryConfig,
    SubWorkflowNode,
    TaskError,
    TaskNode,
    TaskResult,
    WorkerResilienceConfig,
    WorkflowContext,
    WorkflowDefinition,
    WorkflowMeta,
    WorkflowSpec,
)

app = Horsies(AppConfig(
    broker=PostgresConfig(database_url="postgresql://unused@localhost/unused"),
    recovery=RecoveryConfig(
        claimed_stale_threshold_ms=2_000, claimer_heartbeat_interval_ms=1_000,
        running_stale_threshold_ms=3_000, runner_heartbeat_interval_ms=1_000,
        check_interval_ms=1_000,
    ),
    resilience=WorkerResilienceConfig(db_retry_initial_ms=200, db_retry_max_ms=2_000,
                                      notify_poll_interval_ms=1_000),
))


def record(ledger: str, label: str) -> None:
    fd = os.open(ledger, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)
    try:
        os.write(fd, f"{label}\n".encode())
    finally:
        os.close(fd)


def failed(label: str) -> TaskResult[str, TaskError]:
    return TaskResult(err=TaskError(error_code="STEP_FAILED", message=f"{label} failed"))


@app.task("wf_step")
def wf_step(ledger: str, label: str, fail: bool = False, seconds: float = 0.0,
            workflow_ctx: WorkflowContext | None = None) -> TaskResult[str, TaskError]:
    """A node that ends ok with its label, or with STEP_FAILED when told to.

    It accepts a context so that any node may gate on `workflow_ctx_from`.
    """
    record(ledger, label)
    if seconds:
        time.sleep(seconds)
    return failed(label) if fail else TaskResult(ok=label)


@app.task("wf_number")
def wf_number(ledger: str, label: str, value: int) -> TaskResult[int, TaskError]:
    record(ledger, label)
    return TaskResult(ok=value)


@app.task("wf_add")
def wf_add(ledger: str, label: str, left: TaskResult[int, TaskError],
           right: TaskResult[int, TaskError]) -> TaskResult[int, TaskError]:
    """Diamond bottom: the sum of both inputs (args_from)."""
    record(ledger, label)
    if left.is_err() or right.is_err():
        return TaskResult(err=TaskError(error_code="INPUT_FAILED", message="an input failed"))
    return TaskResult(ok=left.ok_value + right.ok_value)


@app.task("wf_double")
def wf_double(ledger: str, label: str, value: TaskResult[int, TaskError]
              ) -> TaskResult[int, TaskError]:
    record(ledger, label)
    if value.is_err():
        return TaskResult(err=value.err_value)
    return TaskResult(ok=value.ok_value * 2)


@app.task("wf_first")
def wf_first(ledger: str, label: str, primary: TaskResult[str, TaskError] | None = None,
             mirror: TaskResult[str, TaskError] | None = None) -> TaskResult[str, TaskError]:
    """OR-join: the first input that is present and ok."""
    record(ledger, label)
    for candidate in (primary, mirror):
        if candidate is not None and candidate.is_ok():
            return TaskResult(ok=candidate.ok_value)
    return TaskResult(err=TaskError(error_code="NO_SOURCE", message="no source answered"))


@app.task("wf_inspect")
def wf_inspect(ledger: str, label: str, seen: TaskResult[str, TaskError]
               ) -> TaskResult[str, TaskError]:
    """Tolerant node: reports what its input was (ok value, skip, or error code)."""
    record(ledger, label)
    if seen.is_ok():
        return TaskResult(ok=f"ok:{seen.ok_value}")
    return TaskResult(ok=f"err:{seen.err_value.error_code}")


@app.task("wf_gather")
def wf_gather(ledger: str, label: str, sources: list[str],
              workflow_ctx: WorkflowContext | None = None,
              workflow_meta: WorkflowMeta | None = None) -> TaskResult[str, TaskError]:
    """Fan-in with a context: the ok values of `sources`, in order, and where it ran."""
    record(ledger, label)
    if workflow_ctx is None or workflow_meta is None:
        return TaskResult(err=TaskError(error_code="OUTSIDE_WORKFLOW", message="no context"))
    parts = []
    for source in sources:
        result = workflow_ctx.result_for(NodeKey[str](source))
        parts.append(result.ok_value if result.is_ok() else f"!{source}")
    return TaskResult(ok=f"{workflow_meta.task_index}:" + ",".join(parts))


@app.task("wf_wait")
def wf_wait(ledger: str, label: str, gate: str) -> TaskResult[str, TaskError]:
    """Runs until the file `gate` exists (at most a minute), so that a test can
    pause or cancel a workflow while this node is executing."""
    record(ledger, label)
    deadline = time.monotonic() + 60
    while not os.path.exists(gate) and time.monotonic() < deadline:
        time.sleep(0.01)
    return TaskResult(ok=label)


# -- conditions (module-level: stored as module:qualname) ------------------------------


def always(ctx: WorkflowContext) -> bool:
    return True


def never(ctx: WorkflowContext) -> bool:
    return False


def broken(ctx: WorkflowContext) -> bool:
    raise RuntimeError("the condition broke")


def over_ten(ctx: WorkflowContext) -> bool:
    """True when the node `measure` in the context returned more than 10."""
    return bool(ctx.result_for(NodeKey[int]("measure")).unwrap() > 10)


# -- child workflows (found by definition_key in the worker) ---------------------------


class Doubler(WorkflowDefinition[int]):
    """value -> value * 2, in two nodes."""

    name = "doubler"
    definition_key = "tests.doubler.v1"

    @classmethod
    def build_with(cls, app: Horsies, ledger: str, value: TaskResult[int, TaskError],
                   tag: str = "inner", *args: Any, **kwargs: Any) -> WorkflowSpec[int]:
        start = TaskNode(fn=wf_number, kwargs={"ledger": ledger, "label": f"{tag}_n",
                                               "value": value.unwrap()}, node_id="n")
        twice = TaskNode(fn=wf_double, kwargs={"ledger": ledger, "label": f"{tag}_x2"},
                         waits_for=[start], args_from={"value": start}, node_id="x2")
        return app.workflow(name=cls.name, tasks=[start, twice], output=twice)


class PlusOneThenDouble(WorkflowDefinition[int]):
    """value -> (value + 1) * 2, the doubling in a child of its own (nesting)."""

    name = "plus_one_then_double"
    definition_key = "tests.plus_one_then_double.v1"

    @classmethod
    def build_with(cls, app: Horsies, ledger: str, value: TaskResult[int, TaskError],
                   *args: Any, **kwargs: Any) -> WorkflowSpec[int]:
        plus = TaskNode(fn=wf_number, kwargs={"ledger": ledger, "label": "outer_n",
                                              "value": value.unwrap() + 1}, node_id="plus")
        inner = SubWorkflowNode(Doubler, kwargs={"ledger": ledger}, waits_for=[plus],
                                args_from={"value": plus}, node_id="inner")
        return app.workflow(name=cls.name, tasks=[plus, inner], output=inner)


class FailingChild(WorkflowDefinition[str]):
    """One node that fails, one that depends on it (skipped)."""

    name = "failing_child"
    definition_key = "tests.failing_child.v1"

    @classmethod
    def build_with(cls, app: Horsies, ledger: str, *args: Any, **kwargs: Any
                   ) -> WorkflowSpec[str]:
        bad = TaskNode(fn=wf_step, kwargs={"ledger": ledger, "label": "child_bad", "fail": True},
                       node_id="bad")
        after = TaskNode(fn=wf_step, kwargs={"ledger": ledger, "label": "child_after"},
                         waits_for=[bad], node_id="after")
        return app.workflow(name=cls.name, tasks=[bad, after], output=after)


class GatedChild(WorkflowDefinition[str]):
    """A node that runs until `gate` exists, then one more."""

    name = "gated_child"
    definition_key = "tests.gated_child.v1"

    @classmethod
    def build_with(cls, app: Horsies, ledger: str, gate: str, *args: Any, **kwargs: Any
                   ) -> WorkflowSpec[str]:
        hold = TaskNode(fn=wf_wait, kwargs={"ledger": ledger, "label": "child_hold",
                                            "gate": gate}, node_id="hold")
        after = TaskNode(fn=wf_step, kwargs={"ledger": ledger, "label": "child_after"},
                         waits_for=[hold], node_id="after")
        return app.workflow(name=cls.name, tasks=[hold, after], output=after)


class PausingChild(WorkflowDefinition[str]):
    """A child with on_error="pause": a failing node, then a recovery node."""

    name = "pausing_child"
    definition_key = "tests.pausing_child.v1"

    @classmethod
    def build_with(cls, app: Horsies, ledger: str, *args: Any, **kwargs: Any
                   ) -> WorkflowSpec[str]:
        bad = TaskNode(fn=wf_step, kwargs={"ledger": ledger, "label": "child_bad", "fail": True},
                       node_id="bad")
        rescue = TaskNode(fn=wf_step, kwargs={"ledger": ledger, "label": "child_rescue"},
                          waits_for=[bad], allow_failed_deps=True, node_id="rescue")
        return app.workflow(name=cls.name, tasks=[bad, rescue], output=rescue,
                            on_error="pause")


app.discover_tasks(["tests.integration.workflow_apps"])
