"""Large workflows run by a real worker (`--processes=2`): a 1,000-node fan-out/fan-in
and a 10,000-node fan-out. Every node must run exactly once and the workflow end
COMPLETED. The wall times of start() and of the whole run are printed (run with
-s to see them).
"""

from __future__ import annotations

import time
from typing import Any

from horsies import TaskNode, WorkflowStatus, WorkflowTaskStatus
from tests.e2e import test_workflows as base
from tests.e2e.test_workflows import WAIT_MS, runs_of, statuses, step

wf, ledger, worker = base.wf, base.ledger, base.worker  # fixtures of test_workflows


def run(wf: Any, name: str, tasks: list[Any], **options: Any) -> tuple[Any, Any]:
    began = time.perf_counter()
    spec = wf.app.workflow(name=name, tasks=tasks, definition_key=f"tests.{name}.v1",
                           **options)
    built = time.perf_counter()
    handle = spec.start().unwrap()
    started = time.perf_counter()
    outcome = handle.get(timeout_ms=WAIT_MS)
    ended = time.perf_counter()
    print(f"\n{name}: {len(tasks)} nodes; spec built in {built - began:.2f}s, "
          f"start() {started - built:.2f}s, start to end {ended - built:.2f}s")
    return handle, outcome


def test_fan_out_fan_in_of_1000_nodes(wf: Any, worker: Any, ledger: str) -> None:
    root = step(wf, ledger, "root")
    middle = [step(wf, ledger, f"m{i}", waits_for=[root]) for i in range(998)]
    read = [middle[0], middle[500], middle[997]]
    join = TaskNode(fn=wf.wf_gather, kwargs={"ledger": ledger, "label": "join",
                                             "sources": ["m0", "m500", "m997"]},
                    waits_for=middle, workflow_ctx_from=read, node_id="join")
    handle, outcome = run(wf, "fan_1000", [root, *middle, join], output=join)
    assert outcome.is_ok(), outcome
    assert outcome.ok_value == "999:m0,m500,m997"
    assert set(statuses(handle).values()) == {WorkflowTaskStatus.COMPLETED}
    ran = runs_of(ledger)
    assert len(ran) == 1000 and set(ran.values()) == {1}


def test_fan_out_of_10000_nodes(wf: Any, worker: Any, ledger: str) -> None:
    root = step(wf, ledger, "root")
    leaves = [step(wf, ledger, f"l{i}", waits_for=[root]) for i in range(9_999)]
    handle, outcome = run(wf, "fan_10000", [root, *leaves])
    assert outcome.is_ok(), outcome
    assert len(outcome.ok_value) == 9_999  # every sink's result (§9.3)
    assert handle.status().unwrap() == WorkflowStatus.COMPLETED
    assert set(statuses(handle).values()) == {WorkflowTaskStatus.COMPLETED}
    ran = runs_of(ledger)
    assert len(ran) == 10_000 and set(ran.values()) == {1}
