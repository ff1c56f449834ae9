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

from horsies import (
    AppConfig,
    Horsies,
    NodeKey,
    PostgresConfig,
    RecoveryConfig,
    TaskError,
    TaskResult,
    WorkerResilienceConfig,
    WorkflowContext,
    WorkflowMeta,
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


app.discover_tasks(["tests.integration.workflow_apps"])
