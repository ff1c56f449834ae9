"""Tasks of paused and cancelled workflows never start (workflows.md §13.5,
§13.7; workers.md §6.2), including the moments no notification announces: a
claim in flight while the pause commits, a retry written after it.

No worker runs here: the tests stage what a worker's transaction would hold
with real connections and locks, and call the engine functions the worker
calls, against a real database.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from horsies import TaskNode, WorkflowStatus
from horsies.sql import queries
from horsies.workflows import engine
from tests.workers import app_module_at


@pytest.fixture
def wf(pg_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    yield from app_module_at("tests.integration.workflow_apps", pg_url, monkeypatch)


def started(wf: Any, name: str) -> Any:
    """A two-node chain: `first` enqueued (its task PENDING, no worker), `second` waiting."""
    first = TaskNode(fn=wf.wf_step, kwargs={"ledger": "/dev/null", "label": "a"},
                     node_id="first")
    second = TaskNode(fn=wf.wf_step, kwargs={"ledger": "/dev/null", "label": "b"},
                      waits_for=[first], node_id="second")
    return wf.app.workflow(name=name, tasks=[first, second],
                           definition_key=f"tests.{name}.v1").start().unwrap()


def node(pg_url: str, workflow_id: str, node_id: str) -> tuple[str, str | None, str | None]:
    """(node status, task id, task status)."""
    with psycopg.connect(pg_url) as conn:
        row = conn.execute(
            "SELECT wt.status, wt.task_id::text, t.status FROM horsies_workflow_tasks wt "
            "LEFT JOIN horsies_tasks t ON t.id = wt.task_id "
            "WHERE wt.workflow_id = %s AND wt.node_id = %s", (workflow_id, node_id)).fetchone()
    assert row is not None
    return row[0], row[1], row[2]


async def _in_transaction(pg_url: str, call: Any) -> Any:
    async with await psycopg.AsyncConnection.connect(pg_url) as conn:
        # A lock wait that should not happen fails the test instead of hanging it.
        await conn.execute("SET lock_timeout = '10s'")
        async with conn.transaction():
            return await call(conn)


def test_pause_stops_an_unstarted_task_and_resume_enqueues_a_fresh_one(
        wf: Any, pg_url: str) -> None:
    handle = started(wf, "stop_pending")
    _, old_task, task_status = node(pg_url, handle.workflow_id, "first")
    assert task_status == "PENDING"
    assert handle.pause().unwrap() is True
    assert node(pg_url, handle.workflow_id, "first") == ("READY", None, None)
    with psycopg.connect(pg_url) as conn:
        row = conn.execute("SELECT status, result FROM horsies_tasks WHERE id = %s",
                           (old_task,)).fetchone()
    assert row == ("CANCELLED", None)  # T10: no result
    assert handle.resume().unwrap() is True
    status, new_task, task_status = node(pg_url, handle.workflow_id, "first")
    assert (status, task_status) == ("ENQUEUED", "PENDING") and new_task != old_task
    assert handle.cancel().unwrap() is None


def test_a_claim_in_flight_during_a_pause_is_stopped_when_it_is_confirmed(
        wf: Any, pg_url: str) -> None:
    """A worker's claim holds the row while pause commits: pause skips it (no wait,
    no deadlock); the claim commits CLAIMED; the worker's diagnosis of the claim
    it cannot confirm ends it (T10) and puts the node back to READY."""
    handle = started(wf, "stop_claimed")
    _, task_id, _ = node(pg_url, handle.workflow_id, "first")
    with psycopg.connect(pg_url) as claim:
        claim.execute("UPDATE horsies_tasks SET status = 'CLAIMED', claimed = TRUE, "
                      "claimed_at = now(), claimed_by_worker_id = 'w1', "
                      "claim_expires_at = now() + interval '1 minute' WHERE id = %s",
                      (task_id,))
        assert handle.pause().unwrap() is True  # returns while the claim holds the row
        claim.commit()
    assert node(pg_url, handle.workflow_id, "first") == ("ENQUEUED", task_id, "CLAIMED")
    stopped = asyncio.run(_in_transaction(
        pg_url, lambda conn: engine.stop_claims(conn, [task_id])))
    assert stopped == {task_id}
    assert node(pg_url, handle.workflow_id, "first") == ("READY", None, None)
    with psycopg.connect(pg_url) as conn:
        assert conn.execute("SELECT status, claimed_by_worker_id FROM horsies_tasks "
                            "WHERE id = %s", (task_id,)).fetchone() == ("CANCELLED", None)
    assert handle.resume().unwrap() is True
    assert node(pg_url, handle.workflow_id, "first")[0] == "ENQUEUED"
    handle.cancel().unwrap()


def test_a_retry_written_after_a_pause_is_stopped_by_the_cycle_that_writes_it(
        wf: Any, pg_url: str) -> None:
    """The task was running when the workflow paused (a started task runs on); it
    failed and its retry puts the row back to PENDING: the same transaction, once
    it holds the workflow, ends the row and readies the node for resume."""
    handle = started(wf, "stop_retry")
    _, task_id, _ = node(pg_url, handle.workflow_id, "first")
    with psycopg.connect(pg_url) as conn:
        conn.execute("UPDATE horsies_tasks SET status = 'RUNNING', claimed_at = now(), "
                     "claimed_by_worker_id = 'w1', started_at = now(), worker_pid = 1 "
                     "WHERE id = %s", (task_id,))
    assert handle.pause().unwrap() is True
    assert node(pg_url, handle.workflow_id, "first") == ("ENQUEUED", task_id, "RUNNING")

    async def retry(conn: psycopg.AsyncConnection[Any]) -> int:
        await conn.execute("UPDATE horsies_tasks SET status = 'PENDING', "
                           "claimed_at = NULL, claimed_by_worker_id = NULL WHERE id = %s",
                           (task_id,))
        return await engine.tasks_ended(conn, [task_id])

    asyncio.run(_in_transaction(pg_url, retry))
    assert node(pg_url, handle.workflow_id, "first") == ("READY", None, None)
    handle.cancel().unwrap()


def test_cancel_ends_unstarted_tasks_and_skips_every_open_node(wf: Any, pg_url: str) -> None:
    handle = started(wf, "stop_cancel")
    _, task_id, _ = node(pg_url, handle.workflow_id, "first")
    assert handle.cancel().unwrap() is None
    assert handle.status().unwrap() == WorkflowStatus.CANCELLED
    assert node(pg_url, handle.workflow_id, "first") == ("SKIPPED", task_id, "CANCELLED")
    assert node(pg_url, handle.workflow_id, "second")[0] == "SKIPPED"
    assert handle.pause().unwrap() is False and handle.resume().unwrap() is False
    with psycopg.connect(pg_url) as conn:
        assert conn.execute("SELECT nodes_left, completed_at FROM horsies_workflows "
                            "WHERE id = %s", (handle.workflow_id,)).fetchone() == (0, None)


def test_control_of_an_unknown_workflow_is_not_found(wf: Any) -> None:
    from horsies import HandleErrorCode, WorkflowHandle, pause_workflow_sync

    broker = wf.app.get_broker()
    missing = "0194f0b2-0000-7000-8000-000000000000"
    for outcome in (pause_workflow_sync(broker, missing), WorkflowHandle(missing, broker).resume(),
                    WorkflowHandle(missing, broker).cancel(),
                    WorkflowHandle("not-a-uuid", broker).pause()):
        assert outcome.err_value.code == HandleErrorCode.WORKFLOW_NOT_FOUND


def _complete(pg_url: str, task_id: str, value: Any, app: Any) -> None:
    """What a worker's cycle does for a node task that returned `value`."""
    from horsies import TaskResult
    from horsies.codec import dumps_json

    async def cycle(conn: psycopg.AsyncConnection[Any]) -> int:
        await conn.execute(
            "UPDATE horsies_tasks SET status = 'COMPLETED', completed_at = now(), "
            "result = %s WHERE id = %s", (dumps_json(TaskResult(ok=value)).ok_value, task_id))
        return await engine.tasks_ended(conn, [task_id], app=app)

    asyncio.run(_in_transaction(pg_url, cycle))


def test_a_child_that_ends_while_its_parent_is_locked_is_told_by_recovery(
        wf: Any, pg_url: str) -> None:
    """The only lock taken child-before-parent is taken without waiting: a parent
    held elsewhere when its child ends is told by the reaper's recovery (§17 case 4)."""
    from horsies import SubWorkflowNode

    child = SubWorkflowNode(wf.Doubler, kwargs={"ledger": "/dev/null",
                                                "value": wf.TaskResult(ok=4)},
                            node_id="child")
    handle = wf.app.workflow(name="told_late", tasks=[child], output=child,
                             definition_key="tests.told_late.v1").start().unwrap()
    child_id = handle.tasks().unwrap()[0].sub_workflow_id
    _complete(pg_url, node(pg_url, child_id, "n")[1], 4, wf.app)
    with psycopg.connect(pg_url) as holder:
        # The parent held as the engine holds a workflow (a pause, another cycle).
        holder.execute(queries["wf_lock"], {"ids": [handle.workflow_id]})
        _complete(pg_url, node(pg_url, child_id, "x2")[1], 8, wf.app)  # does not wait
        holder.rollback()
    assert node(pg_url, handle.workflow_id, "child")[0] == "RUNNING"
    assert asyncio.run(_in_transaction(pg_url, lambda c: engine.recover(c, wf.app))) >= 1
    assert node(pg_url, handle.workflow_id, "child")[0] == "COMPLETED"
    assert handle.get(timeout_ms=0).ok_value == 8
