"""Subworkflows, conditions, pause, resume and cancel with real workers
(workflows.md §7, §8, §10, §13.5–§13.7).

Every node appends its label to a ledger when it starts, so each test can
check that no node ran twice and that nothing ran that should not have.
Nodes that must be caught mid-run wait for a gate file the test creates.
"""

# ruff: noqa: F811 - the fixtures imported from test_workflows are test parameters here
from __future__ import annotations

import time
from collections import Counter
from pathlib import Path
from typing import Any

import psycopg

from horsies import (
    OperationalErrorCode,
    OutcomeCode,
    SubWorkflowError,
    SubWorkflowNode,
    SuccessCase,
    SuccessPolicy,
    TaskNode,
    WorkflowHandle,
    WorkflowStatus,
    WorkflowTaskStatus,
    pause_workflow_sync,
    resume_workflow_sync,
)
from tests.e2e.test_workflows import (  # noqa: F401 - fixtures
    WAIT_MS,
    finish,
    ledger,
    runs_of,
    statuses,
    step,
    wf,
    worker,
)

S = WorkflowTaskStatus


def wait_until(check: Any, what: str, timeout_s: float = 60.0) -> Any:
    """Poll `check` until it returns something truthy (events no notification announces)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


def node_status(handle: Any, node_id: str) -> S:
    return statuses(handle)[node_id]


def gate_node(wf: Any, ledger: str, label: str, gate: Path, **options: Any) -> TaskNode[str]:
    return TaskNode(fn=wf.wf_wait, kwargs={"ledger": ledger, "label": label, "gate": str(gate)},
                    node_id=label, **options)


def task_statuses(pg_url: str, workflow_id: str) -> list[str]:
    with psycopg.connect(pg_url) as conn:
        return [row[0] for row in conn.execute(
            "SELECT t.status FROM horsies_workflow_tasks wt JOIN horsies_tasks t "
            "ON t.id = wt.task_id WHERE wt.workflow_id = %s", (workflow_id,))]


# -- subworkflows (§10) ---------------------------------------------------------------


def test_nested_subworkflows_pass_results_up(wf: Any, worker: Any, ledger: str,
                                             pg_url: str) -> None:
    seed = TaskNode(fn=wf.wf_number, kwargs={"ledger": ledger, "label": "seed", "value": 3},
                    node_id="seed")
    outer = SubWorkflowNode(wf.PlusOneThenDouble, kwargs={"ledger": ledger},
                            waits_for=[seed], args_from={"value": seed}, node_id="outer")
    last = TaskNode(fn=wf.wf_double, kwargs={"ledger": ledger, "label": "last"},
                    waits_for=[outer], args_from={"value": outer}, node_id="last")
    handle, outcome = finish(wf, "nested", [seed, outer, last], output=last)
    assert outcome.is_ok(), outcome
    assert outcome.ok_value == 16  # (3 + 1) * 2 in the grandchild, * 2 again here
    assert runs_of(ledger) == Counter({"seed": 1, "outer_n": 1, "inner_n": 1, "inner_x2": 1,
                                       "last": 1})
    info = {i.node_id: i for i in handle.tasks().unwrap()}["outer"]
    assert info.status == S.COMPLETED and info.sub_workflow_id is not None
    summary = info.sub_workflow_summary
    assert summary is not None
    assert (summary.status, summary.output, summary.total_tasks, summary.completed_tasks) == (
        WorkflowStatus.COMPLETED, 8, 2, 2)
    with psycopg.connect(pg_url) as conn:
        rows = conn.execute(
            "SELECT depth, root_workflow_id::text, status FROM horsies_workflows "
            "WHERE root_workflow_id = %s ORDER BY depth", (handle.workflow_id,)).fetchall()
    assert rows == [(0, handle.workflow_id, "COMPLETED"), (1, handle.workflow_id, "COMPLETED"),
                    (2, handle.workflow_id, "COMPLETED")]
    child = WorkflowHandle(info.sub_workflow_id, handle.broker)
    assert child.get(timeout_ms=0).ok_value == 8


def test_a_failed_child_fails_its_parent_node(wf: Any, worker: Any, ledger: str) -> None:
    child = SubWorkflowNode(wf.FailingChild, kwargs={"ledger": ledger}, node_id="child")
    after = step(wf, ledger, "after", waits_for=[child])
    handle, outcome = finish(wf, "child_fails", [child, after])
    assert handle.status().unwrap() == WorkflowStatus.FAILED
    error = outcome.err_value
    assert isinstance(error, SubWorkflowError), error
    assert error.error_code == OutcomeCode.SUBWORKFLOW_FAILED
    assert error.sub_workflow_summary.status == WorkflowStatus.FAILED
    assert (error.sub_workflow_summary.failed_tasks,
            error.sub_workflow_summary.skipped_tasks) == (1, 1)
    assert statuses(handle) == {"child": S.FAILED, "after": S.SKIPPED}
    assert runs_of(ledger) == Counter({"child_bad": 1})


# -- conditions (§7) ------------------------------------------------------------------


def test_conditions_skip_run_and_fail_nodes(wf: Any, worker: Any, ledger: str,
                                            pg_url: str) -> None:
    measure = TaskNode(fn=wf.wf_number, kwargs={"ledger": ledger, "label": "measure",
                                                "value": 42}, node_id="measure")
    skipped = step(wf, ledger, "skipped", waits_for=[measure], skip_when=wf.over_ten)
    below = step(wf, ledger, "below", waits_for=[skipped])
    runs = step(wf, ledger, "runs", waits_for=[measure], run_when=wf.always)
    not_met = step(wf, ledger, "not_met", waits_for=[measure], run_when=wf.never)
    broken = step(wf, ledger, "broken", waits_for=[measure], skip_when=wf.broken)
    root = step(wf, ledger, "root", run_when=wf.never)  # a root's join holds at start
    handle, outcome = finish(wf, "conditions",
                             [measure, skipped, below, runs, not_met, broken, root])
    assert statuses(handle) == {"measure": S.COMPLETED, "skipped": S.SKIPPED,
                                "below": S.SKIPPED, "runs": S.COMPLETED,
                                "not_met": S.SKIPPED, "broken": S.FAILED, "root": S.SKIPPED}
    assert runs_of(ledger) == Counter({"measure": 1, "runs": 1})
    assert outcome.err_value.error_code == OperationalErrorCode.CONDITION_EVALUATION_ERROR
    assert "the condition broke" in outcome.err_value.message
    with psycopg.connect(pg_url) as conn:
        recorded = dict(conn.execute(
            "SELECT node_id, error::jsonb #>> '{error_code,__builtin_task_code__}' "
            "FROM horsies_workflow_tasks "
            "WHERE workflow_id = %s AND error IS NOT NULL", (handle.workflow_id,)).fetchall())
    assert recorded == {"skipped": "CONDITION_SKIPPED", "not_met": "CONDITION_NOT_MET",
                        "root": "CONDITION_NOT_MET"}


# -- pause and resume (§8, §13.5) ----------------------------------------------------------


def test_on_error_pause_holds_the_rest_until_resume(wf: Any, worker: Any, ledger: str,
                                                    tmp_path: Path) -> None:
    bad = step(wf, ledger, "bad", fail=True)
    rescue = step(wf, ledger, "rescue", waits_for=[bad], allow_failed_deps=True)
    spec = wf.app.workflow(name="pausing", tasks=[bad, rescue], on_error="pause",
                           definition_key="tests.pausing.v1")
    handle = spec.start().unwrap()
    outcome = handle.get(timeout_ms=WAIT_MS)
    assert outcome.err_value.error_code == OutcomeCode.WORKFLOW_PAUSED
    assert statuses(handle) == {"bad": S.FAILED, "rescue": S.PENDING}
    assert resume_workflow_sync(handle.broker, handle.workflow_id).unwrap() is True
    final = handle.get(timeout_ms=WAIT_MS)
    assert handle.status().unwrap() == WorkflowStatus.FAILED
    assert final.err_value.error_code == "STEP_FAILED"  # resume never clears the error
    assert statuses(handle) == {"bad": S.FAILED, "rescue": S.COMPLETED}
    assert runs_of(ledger) == Counter({"bad": 1, "rescue": 1})


def test_pause_by_hand_holds_dependents_and_resume_runs_each_once(
        wf: Any, worker: Any, ledger: str, tmp_path: Path) -> None:
    gate = tmp_path / "gate"
    hold = gate_node(wf, ledger, "hold", gate)
    later = [step(wf, ledger, f"later{i}", waits_for=[hold]) for i in range(3)]
    spec = wf.app.workflow(name="by_hand", tasks=[hold, *later],
                           definition_key="tests.by_hand.v1")
    handle = spec.start().unwrap()
    wait_until(lambda: "hold" in runs_of(ledger), "the held node to start")
    assert pause_workflow_sync(handle.broker, handle.workflow_id).unwrap() is True
    assert handle.pause().unwrap() is False  # already paused: no change
    assert handle.get(timeout_ms=0).err_value.error_code == OutcomeCode.WORKFLOW_PAUSED
    gate.touch()
    wait_until(lambda: node_status(handle, "hold") == S.COMPLETED, "the held node to end")
    # The node that was executing finished; nothing downstream moved while paused.
    assert statuses(handle) == {"hold": S.COMPLETED, **{f"later{i}": S.PENDING
                                                       for i in range(3)}}
    assert handle.status().unwrap() == WorkflowStatus.PAUSED
    assert handle.resume().unwrap() is True
    assert handle.get(timeout_ms=WAIT_MS).is_ok()
    assert runs_of(ledger) == Counter({"hold": 1, "later0": 1, "later1": 1, "later2": 1})


def test_pausing_a_parent_pauses_its_child_and_resume_finishes_both(
        wf: Any, worker: Any, ledger: str, tmp_path: Path) -> None:
    gate = tmp_path / "gate"
    child = SubWorkflowNode(wf.GatedChild, kwargs={"ledger": ledger, "gate": str(gate)},
                            node_id="child")
    spec = wf.app.workflow(name="parent_pause", tasks=[child], output=child,
                           definition_key="tests.parent_pause.v1")
    handle = spec.start().unwrap()
    wait_until(lambda: "child_hold" in runs_of(ledger), "the child's node to start")
    child_id = {i.node_id: i for i in handle.tasks().unwrap()}["child"].sub_workflow_id
    child_handle = WorkflowHandle(child_id, handle.broker)
    assert handle.pause().unwrap() is True
    assert child_handle.status().unwrap() == WorkflowStatus.PAUSED
    gate.touch()
    wait_until(lambda: node_status(child_handle, "hold") == S.COMPLETED, "the child's node")
    assert node_status(child_handle, "after") == S.PENDING
    assert handle.resume().unwrap() is True
    assert handle.get(timeout_ms=WAIT_MS).ok_value == "child_after"
    assert child_handle.status().unwrap() == WorkflowStatus.COMPLETED
    assert runs_of(ledger) == Counter({"child_hold": 1, "child_after": 1})


def test_a_child_paused_on_its_own_error_leaves_its_parent_running(
        wf: Any, worker: Any, ledger: str) -> None:
    child = SubWorkflowNode(wf.PausingChild, kwargs={"ledger": ledger}, node_id="child")
    after = step(wf, ledger, "after", waits_for=[child], allow_failed_deps=True)
    spec = wf.app.workflow(name="child_pauses", tasks=[child, after],
                           definition_key="tests.child_pauses.v1")
    handle = spec.start().unwrap()
    child_id = wait_until(lambda: {i.node_id: i for i in handle.tasks().unwrap()}[
        "child"].sub_workflow_id, "the child to start")
    child_handle = WorkflowHandle(child_id, handle.broker)
    assert child_handle.get(timeout_ms=WAIT_MS).err_value.error_code == (
        OutcomeCode.WORKFLOW_PAUSED)
    assert handle.status().unwrap() == WorkflowStatus.RUNNING
    assert statuses(handle) == {"child": S.RUNNING, "after": S.PENDING}
    assert child_handle.resume().unwrap() is True
    outcome = handle.get(timeout_ms=WAIT_MS)
    # The child still fails (resume keeps its error); its node fails in the parent,
    # whose tolerant dependent runs.
    assert child_handle.status().unwrap() == WorkflowStatus.FAILED
    assert isinstance(outcome.err_value, SubWorkflowError), outcome
    assert statuses(handle) == {"child": S.FAILED, "after": S.COMPLETED}
    assert runs_of(ledger) == Counter({"child_bad": 1, "child_rescue": 1, "after": 1})


# -- cancel (§13.7) ----------------------------------------------------------------------


def test_cancel_stops_everything_not_started(wf: Any, worker: Any, ledger: str,
                                             tmp_path: Path, pg_url: str) -> None:
    gate = tmp_path / "gate"
    hold = gate_node(wf, ledger, "hold", gate)
    child = SubWorkflowNode(wf.GatedChild, kwargs={"ledger": ledger, "gate": str(gate)},
                            node_id="child")
    after = step(wf, ledger, "after", waits_for=[hold])
    spec = wf.app.workflow(name="cancelled", tasks=[hold, child, after],
                           definition_key="tests.cancelled.v1")
    handle = spec.start().unwrap()
    wait_until(lambda: {"hold", "child_hold"} <= set(runs_of(ledger)), "both held nodes")
    child_id = {i.node_id: i for i in handle.tasks().unwrap()}["child"].sub_workflow_id
    assert handle.cancel().unwrap() is None
    assert handle.status().unwrap() == WorkflowStatus.CANCELLED
    child_handle = WorkflowHandle(child_id, handle.broker)
    assert child_handle.status().unwrap() == WorkflowStatus.CANCELLED
    assert handle.get(timeout_ms=0).err_value.error_code == OutcomeCode.WORKFLOW_CANCELLED
    gate.touch()
    wait_until(lambda: node_status(handle, "hold") == S.COMPLETED, "the held node to end")
    wait_until(lambda: node_status(child_handle, "hold") == S.COMPLETED, "the child's node")
    assert statuses(handle) == {"hold": S.COMPLETED, "child": S.FAILED, "after": S.SKIPPED}
    assert node_status(child_handle, "after") == S.SKIPPED
    assert handle.cancel().unwrap() is None  # idempotent
    assert handle.status().unwrap() == WorkflowStatus.CANCELLED
    assert runs_of(ledger) == Counter({"hold": 1, "child_hold": 1})
    assert "PENDING" not in task_statuses(pg_url, handle.workflow_id)


def test_cancelling_a_child_by_hand_fails_its_parent_node(wf: Any, worker: Any, ledger: str,
                                                          tmp_path: Path) -> None:
    gate = tmp_path / "gate"
    child = SubWorkflowNode(wf.GatedChild, kwargs={"ledger": ledger, "gate": str(gate)},
                            node_id="child")
    after = step(wf, ledger, "after", waits_for=[child], allow_failed_deps=True)
    spec = wf.app.workflow(name="child_cancelled", tasks=[child, after],
                           definition_key="tests.child_cancelled.v1")
    handle = spec.start().unwrap()
    wait_until(lambda: "child_hold" in runs_of(ledger), "the child's node to start")
    child_id = {i.node_id: i for i in handle.tasks().unwrap()}["child"].sub_workflow_id
    assert WorkflowHandle(child_id, handle.broker).cancel().unwrap() is None
    outcome = handle.get(timeout_ms=WAIT_MS)
    assert isinstance(outcome.err_value, SubWorkflowError), outcome
    assert outcome.err_value.sub_workflow_summary.status == WorkflowStatus.CANCELLED
    assert statuses(handle) == {"child": S.FAILED, "after": S.COMPLETED}
    gate.touch()
    assert runs_of(ledger) == Counter({"child_hold": 1, "after": 1})


# -- partial success (§9.2) ------------------------------------------------------------


def test_partial_success_completes_when_one_case_holds(wf: Any, worker: Any,
                                                       ledger: str) -> None:
    ftp = step(wf, ledger, "ftp", fail=True)
    bucket = step(wf, ledger, "bucket")
    mail = step(wf, ledger, "mail", fail=True)
    policy = SuccessPolicy(cases=[SuccessCase(required=[ftp]), SuccessCase(required=[bucket])],
                           optional=[mail])
    handle, outcome = finish(wf, "distribute", [ftp, bucket, mail], success_policy=policy)
    assert handle.status().unwrap() == WorkflowStatus.COMPLETED, outcome
    assert runs_of(ledger) == Counter({"ftp": 1, "bucket": 1, "mail": 1})


# -- races (§13.5, §13.7): control operations against a worker finishing nodes -----------

TERMINAL = {S.COMPLETED, S.FAILED, S.SKIPPED}


def ended(handle: Any) -> dict[str, S] | None:
    """Every node's status once all are terminal (running tasks of a cancelled
    workflow still end their nodes), else None."""
    seen = statuses(handle)
    return seen if set(seen.values()) <= TERMINAL else None


def test_pause_resume_and_cancel_raced_against_a_worker(wf: Any, worker: Any, ledger: str,
                                                        tmp_path: Path) -> None:
    """50 workflows, each paused and resumed (or cancelled) at a random moment
    while the worker finishes its nodes: no node runs twice, none is lost, and
    the final status is the documented one every time. A gated root keeps each
    workflow RUNNING until the control operation is done."""
    rng = __import__("random").Random(20261207)
    for it in range(50):
        gate = tmp_path / f"gate{it}"
        held = gate_node(wf, ledger, f"i{it}_g", gate)
        roots = [step(wf, ledger, f"i{it}_r{k}") for k in range(3)]
        mids = [step(wf, ledger, f"i{it}_m{k}", waits_for=[r]) for k, r in enumerate(roots)]
        join = step(wf, ledger, f"i{it}_j", waits_for=[*mids, held])
        handle = wf.app.workflow(name=f"race{it}", tasks=[held, *roots, *mids, join],
                                 definition_key="tests.race.v1").start().unwrap()
        cancel = it % 3 == 2
        time.sleep(rng.uniform(0, 0.02))
        assert handle.pause().unwrap() is True, it
        time.sleep(rng.uniform(0, 0.005))
        if cancel:
            assert handle.cancel().unwrap() is None
        else:
            assert handle.resume().unwrap() is True, it
        gate.touch()
        final = handle.get(timeout_ms=WAIT_MS)
        seen = wait_until(lambda h=handle: ended(h), "every node to end")
        counts = runs_of(ledger)
        ran = {label for label in counts if label.startswith(f"i{it}_")}
        assert all(counts[label] == 1 for label in ran), (it, counts)
        if cancel:
            assert handle.status().unwrap() == WorkflowStatus.CANCELLED, it
            assert final.err_value.error_code == OutcomeCode.WORKFLOW_CANCELLED
            # Nothing lost, nothing late: a node that ran has its result, and every
            # node that did not is SKIPPED (its task, if any, never started).
            assert {k for k, v in seen.items() if v == S.COMPLETED} == ran, (it, seen, ran)
            assert {v for k, v in seen.items() if k not in ran} <= {S.SKIPPED}, (it, seen)
        else:
            assert final.is_ok(), (it, final)
            assert handle.status().unwrap() == WorkflowStatus.COMPLETED
            assert ran == set(seen) and set(seen.values()) == {S.COMPLETED}, (it, seen, ran)
