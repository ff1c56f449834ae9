"""Workers killed in the middle of a 200-node workflow (workflows.md §17, workers.md §10,
runs.md §3), with real workers started from the CLI.

The workflow mixes chains, fan-outs and joins; every node sleeps 0.05-0.2 s, so
that many are in flight when a process is killed. What must hold afterwards:

- no node ran twice (the ledger), and every node and the workflow ended;
- a node whose task was cut short ends FAILED with WORKER_CRASHED, and so may a
  node whose task was handed to a killed worker's child up to the child's mark
  without starting (runs.md §3 bounds those); every other node ends as it ran;
- the final statuses are those of the oracle (§16.8) fed with the outcomes the
  nodes actually had, and the workflow's error is the one it names.
"""

from __future__ import annotations

import os
import random
import signal
from pathlib import Path
from typing import Any

from horsies import OperationalErrorCode, WorkflowStatus, WorkflowTaskStatus
from horsies.worker.main import START_ALLOWANCE
from tests.e2e import test_workflows as base
from tests.e2e.test_runs import children_of, query, wait_until
from tests.e2e.test_workflows import APP, REPO, WAIT_MS, build, runs_of, step
from tests.workflow_oracle import mixed_dag, simulate

wf, ledger = base.wf, base.ledger  # the workflow app and ledger fixtures of test_workflows

SIZE = 200
VICTIM = 84  # the node whose child is killed: 18 levels deep, a quorum and a join wait for it
S = WorkflowTaskStatus


def start_dag(wf: Any, ledger: str, seed: int, *, victim_seconds: float | None = None
              ) -> tuple[Any, list[Any], dict[int, bool]]:
    rng = random.Random(seed)
    shape, outcomes = mixed_dag(rng, SIZE)
    seconds = [round(rng.uniform(0.05, 0.2), 3) for _ in shape]
    if victim_seconds is not None:
        seconds[VICTIM], outcomes[VICTIM] = victim_seconds, True
    spec = wf.app.workflow(name=f"crash_{seed}", tasks=build(wf, ledger, shape, outcomes, seconds),
                           definition_key=f"tests.crash_{seed}.v1")
    return spec.start().unwrap(), shape, outcomes


def held_by(url: str, pids: list[int]) -> int:
    """Tasks assigned to these children and not ended (started or not)."""
    return query(url, "SELECT count(*) FROM horsies_tasks WHERE status = 'RUNNING' "
                      "AND worker_pid = ANY(%s)", (pids,))[0][0]


def check_against_oracle(handle: Any, shape: list[Any], outcomes: dict[int, bool],
                         ledger: str) -> dict[int, bool]:
    """The checks of the module docstring; returns {crashed node: whether it ran}."""
    outcome = handle.get(timeout_ms=WAIT_MS)
    ran = runs_of(ledger)
    assert max(ran.values()) == 1, [label for label, n in ran.items() if n > 1]
    infos = {info.node_id: info for info in handle.tasks().unwrap()}
    status = [infos[f"n{i}"].status for i in range(len(shape))]
    assert set(status) <= {S.COMPLETED, S.FAILED, S.SKIPPED}, status
    assert all(info.completed_at is not None for info in infos.values())
    crashed: dict[int, bool] = {}
    for i, found in enumerate(status):
        label, result = f"n{i}", infos[f"n{i}"].result
        if found == S.SKIPPED:
            assert label not in ran and result is None, label
        elif found == S.COMPLETED:
            assert outcomes[i] and ran[label] == 1 and result.ok_value == label, label
        elif result.err_value.error_code == OperationalErrorCode.WORKER_CRASHED:
            crashed[i] = label in ran
        else:  # failed by itself, as planned
            assert not outcomes[i] and ran[label] == 1, label
            assert result.err_value.error_code == "STEP_FAILED", (label, result)
    assert set(ran) <= {f"n{i}" for i, s in enumerate(status) if s != S.SKIPPED}

    expected = simulate(shape, {i: s == S.COMPLETED for i, s in enumerate(status)
                                if s != S.SKIPPED})
    assert status == list(expected.statuses)
    assert handle.status().unwrap() == WorkflowStatus(expected.status)
    if expected.error_index is not None:
        named = infos[f"n{expected.error_index}"].result.err_value
        assert outcome.is_err() and (outcome.err_value.error_code, outcome.err_value.message
                                     ) == (named.error_code, named.message)
    else:
        assert outcome.is_ok(), outcome
    return crashed


def test_main_process_killed_mid_workflow(wf: Any, ledger: str, worker_env: dict[str, str],
                                          start_worker: Any, pg_url: str) -> None:
    """Two workers share the workflow; one of them dies, the other recovers its tasks."""
    first, second = (start_worker([APP, "--processes=2"], worker_env, cwd=REPO)
                     for _ in range(2))
    first.wait_for("Worker started")
    second.wait_for("Worker started")
    handle, shape, outcomes = start_dag(wf, ledger, seed=1)
    children = children_of(first.proc.pid)
    wait_until(lambda: sum(runs_of(ledger).values()) >= 60 and held_by(pg_url, children) >= 2,
               "60 nodes run and tasks in flight on the first worker")
    os.kill(first.proc.pid, signal.SIGKILL)  # the main process only: children see it die
    first.proc.wait(10)

    crashed = check_against_oracle(handle, shape, outcomes, ledger)
    assert not any(Path(f"/proc/{c}").exists() for c in children)  # they exited on their own
    # The tasks in flight on the dead worker took the crash path; those of them that
    # never started are bounded by the allowance of each child.
    assert crashed
    assert sum(not started for started in crashed.values()) <= START_ALLOWANCE * len(children)
    errors = [handle.tasks().unwrap()[i].result.err_value for i in crashed]
    assert {e.message for e in errors} == {
        "Worker process crashed (no runner heartbeat for 3000ms = 3.0s)"}
    assert {e.data["worker_pid"] for e in errors} <= set(children)
    second.wait_for("Reaper recovered")
    assert second.stop() == 0


def test_child_killed_while_running_a_node(wf: Any, ledger: str, worker_env: dict[str, str],
                                           start_worker: Any, pg_url: str) -> None:
    worker = start_worker([APP, "--processes=2"], worker_env, cwd=REPO)
    worker.wait_for("Worker started")
    # The victim would sleep for longer than the test: it is in its task when killed.
    handle, shape, outcomes = start_dag(wf, ledger, seed=2, victim_seconds=600)
    victim = f"n{VICTIM}"
    assert any(VICTIM in node.deps for node in shape)  # its failure reaches its dependents
    # Killed as soon as it starts: the next task already handed to its child waits
    # behind it, and what depends on that one must not hold the test up.
    wait_until(lambda: runs_of(ledger)[victim] == 1, "the victim to start")
    [(pid,)] = query(pg_url, "SELECT t.worker_pid FROM horsies_tasks t JOIN "
                             "horsies_workflow_tasks wt ON wt.task_id = t.id "
                             "WHERE wt.node_id = %s AND t.status = 'RUNNING'", (victim,))
    assert pid in children_of(worker.proc.pid)
    os.kill(pid, signal.SIGKILL)

    crashed = check_against_oracle(handle, shape, outcomes, ledger)
    assert crashed == {VICTIM: True}  # only the task it was in: what it held went back
    error = handle.tasks().unwrap()[VICTIM].result.err_value
    assert error.message == (f"Worker child process {pid} exited with code -9 "
                             "while running the task")
    assert worker.proc.poll() is None  # the worker survived, with a new child
    assert pid not in children_of(worker.proc.pid) and len(children_of(worker.proc.pid)) == 2
    assert worker.stop() == 0


def test_children_killed_while_runs_are_handed_out(wf: Any, ledger: str, pg_url: str,
                                                   worker_env: dict[str, str],
                                                   start_worker: Any) -> None:
    """Nodes of a millisecond each keep a cycle in flight nearly all the time, so a
    child killed at a random moment is often one the cycle in flight is giving a run
    to. The main process must end the tasks of every dead child itself, at once
    (workers.md §10, runs.md §3): nothing may be left for the reaper, which would
    hold the tasks back for running_stale_threshold_ms (5 minutes by default)."""
    worker = start_worker([APP, "--processes=2"], worker_env, cwd=REPO)
    worker.wait_for("Worker started")
    root = step(wf, ledger, "root")
    leaves = [step(wf, ledger, f"l{i}", waits_for=[root], seconds=0.001) for i in range(3_000)]
    spec = wf.app.workflow(name="handed_out", tasks=[root, *leaves],
                           definition_key="tests.handed_out.v1")
    handle = spec.start().unwrap()
    kills = 6
    for n in range(kills):
        wait_until(lambda at=400 * (n + 1): sum(runs_of(ledger).values()) >= at,
                   "more nodes to run")
        children = children_of(worker.proc.pid)
        os.kill(children[n % len(children)], signal.SIGKILL)
    handle.get(timeout_ms=WAIT_MS)
    ran = runs_of(ledger)
    assert max(ran.values()) == 1
    infos = handle.tasks().unwrap()
    assert {info.node_id for info in infos if info.status == S.COMPLETED} <= set(ran)
    # The task each child was in (it may have died before its first line), and the one
    # before it if its result was not sent yet.
    crashed = [info for info in infos if info.status != S.COMPLETED]
    assert len(crashed) <= 2 * kills and all(
        info.result.err_value.error_code == OperationalErrorCode.WORKER_CRASHED
        for info in crashed)
    assert query(pg_url, "SELECT count(*) FROM horsies_task_attempts WHERE failed_reason "
                         "LIKE 'Worker process crashed%'")[0][0] == 0
    assert not [line for line in worker.lines if "Reaper" in line and "Reaper config" not in line]
    assert worker.stop() == 0
