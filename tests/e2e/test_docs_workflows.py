"""docs/workflows.md runs as written against a real `horsies worker`.

The page's `weather/` modules are written to a temporary package, a worker is
started from the CLI on `weather.tasks:app`, and each script of the page runs in
its own interpreter, in page order; its output must be exactly the `text` block
the page shows under it. The page's crash claims are checked with the workflow
test app, whose recovery thresholds are a few seconds.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from horsies import (
    OperationalErrorCode,
    TaskNode,
    TaskResult,
    WorkflowStatus,
    WorkflowTaskStatus,
)
from horsies.codec import dumps_json
from tests.conftest import query
from tests.doc_blocks import write_files
from tests.e2e import test_workflows as base
from tests.e2e.test_workflows import APP as WORKFLOW_APP
from tests.e2e.test_workflows import REPO

DOC = Path(__file__).resolve().parents[2] / "docs" / "workflows.md"


def test_every_script_prints_what_the_page_shows(
    tmp_path: Path, worker_env: dict[str, str], start_worker: Any
) -> None:
    scripts = write_files(DOC, tmp_path)
    assert len(scripts) >= 10
    worker = start_worker(["weather.tasks:app", "--processes=2"], worker_env, cwd=tmp_path)
    worker.wait_for("Worker started")

    mismatches = []
    for script in scripts:
        out = subprocess.run([sys.executable, script.file], check=False, cwd=tmp_path,
                             env=worker_env, capture_output=True, text=True, timeout=240)
        if out.returncode != 0 or out.stdout != script.prints:
            mismatches.append(f"--- {script.file} (exit {out.returncode})\nexpected:\n"
                              f"{script.prints}\ngot:\n{out.stdout}\n{out.stderr[-4000:]}")
    assert not mismatches, "\n".join(mismatches) + "\nworker:\n" + "".join(worker.lines[-40:])

    assert worker.stop() == 0


# -- "What survives a crash": a worker killed in the middle of a workflow task ----------

# The workflow test app (recovery thresholds of a few seconds) and its fixture.
wf = base.wf


def test_a_worker_killed_mid_task_fails_that_node_and_the_rest_goes_on(
    wf: Any, tmp_path: Path, worker_env: dict[str, str], start_worker: Any
) -> None:
    """The node whose task was running gets WORKER_CRASHED, its tolerant dependent runs
    with that error, an independent branch completes, and the workflow ends FAILED with
    the crash as its error; the killed task never ran a second time."""
    ledger = str(tmp_path / "ledger")
    slow = TaskNode(fn=wf.wf_step, kwargs={"ledger": ledger, "label": "slow", "seconds": 120.0},
                    node_id="slow")
    after = TaskNode(fn=wf.wf_inspect, kwargs={"ledger": ledger, "label": "after"},
                     waits_for=[slow], args_from={"seen": slow}, allow_failed_deps=True,
                     node_id="after")
    other = TaskNode(fn=wf.wf_step, kwargs={"ledger": ledger, "label": "other"},
                     node_id="other")
    spec = wf.app.workflow(name="crash", tasks=[slow, after, other],
                           definition_key="tests.docs.crash.v1")

    first = start_worker([WORKFLOW_APP, "--processes=1"], worker_env, cwd=REPO)
    first.wait_for("Worker started")
    handle = spec.start().unwrap()
    _wait_for_line(Path(ledger), "slow")
    first.kill()

    second = start_worker([WORKFLOW_APP, "--processes=1"], worker_env, cwd=REPO)
    second.wait_for("Worker started")
    outcome = handle.get(timeout_ms=120_000)

    assert outcome.is_err(), outcome
    assert outcome.err_value.error_code == OperationalErrorCode.WORKER_CRASHED
    assert handle.status().unwrap() == WorkflowStatus.FAILED
    found = {info.node_id: info.status for info in handle.tasks().unwrap()}
    assert found == {"slow": WorkflowTaskStatus.FAILED, "after": WorkflowTaskStatus.COMPLETED,
                     "other": WorkflowTaskStatus.COMPLETED}
    assert handle.result_for(after).ok_value == f"err:{OperationalErrorCode.WORKER_CRASHED}"
    assert Path(ledger).read_text().split().count("slow") == 1


def _wait_for_line(path: Path, label: str, timeout: float = 60.0) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if path.exists() and label in path.read_text().split():
            return
        time.sleep(0.1)
    raise AssertionError(f"{label} never started")


def test_a_result_stored_before_a_crash_still_moves_the_workflow(
    wf: Any, pg_url: str, tmp_path: Path, worker_env: dict[str, str], start_worker: Any
) -> None:
    """A worker that died between storing a task's result and advancing the workflow
    (simulated: the root's task row is ended by hand while no worker runs): the reaper
    gives the node that result, and the workflow continues from there."""
    ledger = str(tmp_path / "ledger")
    first = TaskNode(fn=wf.wf_number, kwargs={"ledger": ledger, "label": "n", "value": 2},
                     node_id="n")
    twice = TaskNode(fn=wf.wf_double, kwargs={"ledger": ledger, "label": "x2"},
                     waits_for=[first], args_from={"value": first}, node_id="x2")
    spec = wf.app.workflow(name="stored", tasks=[first, twice], output=twice,
                           definition_key="tests.docs.stored.v1")
    handle = spec.start().unwrap()
    [(task_id,)] = query(pg_url, "SELECT task_id::text FROM horsies_workflow_tasks "
                                 "WHERE workflow_id = %s AND node_id = 'n'",
                         (handle.workflow_id,))
    stored = dumps_json(TaskResult(ok=21)).unwrap()
    query(pg_url, "UPDATE horsies_tasks SET status = 'COMPLETED', result = %s, "
                  "completed_at = now() WHERE id = %s", (stored, task_id))

    worker = start_worker([WORKFLOW_APP, "--processes=1"], worker_env, cwd=REPO)
    worker.wait_for("Worker started")
    outcome = handle.get(timeout_ms=120_000)

    assert outcome.is_ok(), outcome
    assert outcome.ok_value == 42            # x2 ran on the stored 21
    assert handle.result_for(first).ok_value == 21
    assert Path(ledger).read_text().split() == ["x2"]   # n itself never ran
    worker.wait_for("stuck workflow task(s)")
