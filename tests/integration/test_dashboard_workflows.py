"""The workflow read models of the broker against a real PostgreSQL
(monitoring.md §2.9: get_workflow_summary, list_workflows, get_workflow_detail,
and the workflow fields of get_task_detail)."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from horsies import Horsies, Ok, WorkflowStatus, WorkflowSummary, WorkflowTaskStatus
from horsies.db.broker import PostgresBroker
from tests.conftest import query, read_only
from tests.integration.monitor_seed import WORKFLOW_STATUSES, make_app, seed_all
from tests.integration.test_dashboard import app, assert_err, broker, down, ok

__all__ = ["app", "broker", "down"]  # fixtures, re-used


def _seed(app: Horsies, url: str) -> dict[str, Any]:
    return seed_all(app, url)


def test_workflow_summary(broker: PostgresBroker, app: Horsies, pg_url: str) -> None:
    assert ok(broker.get_workflow_summary()) == WorkflowSummary(
        pending=0, running=0, completed=0, failed=0, paused=0, cancelled=0, total=0)
    _seed(app, pg_url)
    # the subworkflow counts too (all depths)
    assert ok(broker.get_workflow_summary()) == WorkflowSummary(
        pending=1, running=2, completed=1, failed=1, paused=1, cancelled=1, total=7)


def test_list_workflows(broker: PostgresBroker, app: Horsies, pg_url: str) -> None:
    ids = _seed(app, pg_url)["workflows"]
    rows = ok(broker.list_workflows())
    # newest created_at first: the subworkflow, then the statuses in seeding order
    assert [r.id for r in rows] == [ids["SUB"]] + [ids[s] for s in WORKFLOW_STATUSES]
    assert [r.status for r in rows] == [WorkflowStatus.RUNNING] + [
        WorkflowStatus(s) for s in WORKFLOW_STATUSES]
    running = rows[2]
    assert (running.name, running.on_error, running.depth, running.parent_workflow_id) == (
        "wf_running", "fail", 0, None)
    assert (running.total_nodes, running.completed_nodes, running.failed_nodes,
            running.running_nodes, running.pending_nodes, running.enqueued_nodes,
            running.skipped_nodes) == (8, 1, 1, 2, 2, 1, 1)
    sub = rows[0]
    assert (sub.depth, sub.parent_workflow_id, sub.total_nodes) == (1, ids["RUNNING"], 1)
    pending = rows[1]
    assert pending.started_at is None and pending.completed_at is None
    done = rows[3]
    assert done.completed_at is not None and done.started_at is not None
    picked = ok(broker.list_workflows(statuses=frozenset({"PAUSED", "FAILED"})))
    assert [r.id for r in picked] == [ids["FAILED"], ids["PAUSED"]]
    assert [r.id for r in ok(broker.list_workflows(limit=2))] == [ids["SUB"], ids["PENDING"]]
    assert ok(broker.list_workflows(statuses=frozenset({"NOPE"}))) == []


def test_workflow_detail(broker: PostgresBroker, app: Horsies, pg_url: str) -> None:
    seeded = _seed(app, pg_url)
    ids = seeded["workflows"]
    detail = ok(broker.get_workflow_detail(ids["RUNNING"]))
    assert detail is not None
    listed = {r.id: r for r in ok(broker.list_workflows())}[ids["RUNNING"]]
    # the WorkflowRow fields are the list's
    for field in listed.__struct_fields__:
        assert getattr(detail, field) == getattr(listed, field), field
    assert (detail.definition_key, detail.root_workflow_id, detail.output_task_index,
            detail.success_policy, detail.result, detail.error,
            detail.parent_workflow_name) == (
        "wf_running:v1", ids["RUNNING"], None, None, None, None, None)
    assert [n.task_index for n in detail.nodes] == list(range(8))
    assert [n.status for n in detail.nodes] == [WorkflowTaskStatus(s) for s in (
        "COMPLETED", "FAILED", "RUNNING", "ENQUEUED", "READY", "PENDING", "SKIPPED", "RUNNING")]
    n0, n1, n2, n3, n4, _, _, n7 = detail.nodes
    assert (n0.node_id, n0.task_id, n0.task_name, n0.queue_name, n0.result, n0.dependencies,
            n0.args_from, n0.workflow_ctx_from) == (
        "n0", seeded["tasks"]["done1"], "add", "high", '{"ok": 3}', [], None, None)
    assert n1.error == '{"error_code": "BOOM", "message": "it broke"}'
    assert (n1.args_from, n1.workflow_ctx_from) == ({"x": 0}, ["n0"])
    assert (n2.allow_failed_deps, n2.priority, n2.started_at is not None) == (True, 5, True)
    assert (n3.join_type, n3.min_success, n3.dependencies) == ("quorum", 1, [1, 2])
    assert n4.join_type == "any"
    assert (n7.is_subworkflow, n7.sub_workflow_id, n7.sub_workflow_name) == (
        True, ids["SUB"], "wf_child")
    done = ok(broker.get_workflow_detail(ids["COMPLETED"]))
    assert (done.output_task_index, done.success_policy, done.result) == (
        2, {"cases": [{"required": [0]}]}, '{"ok": 42}')
    sub = ok(broker.get_workflow_detail(ids["SUB"]))
    assert (sub.parent_workflow_id, sub.parent_workflow_name, sub.root_workflow_id) == (
        ids["RUNNING"], "wf_running", ids["RUNNING"])
    paused = ok(broker.get_workflow_detail(ids["PAUSED"]))
    assert (paused.status, paused.on_error, paused.error is not None) == (
        WorkflowStatus.PAUSED, "pause", True)
    assert ok(broker.get_workflow_detail(str(uuid.uuid4()))) is None
    assert ok(broker.get_workflow_detail("not-a-uuid")) is None


def test_task_detail_names_the_workflow_node(broker: PostgresBroker, app: Horsies,
                                             pg_url: str) -> None:
    seeded = _seed(app, pg_url)
    detail = ok(broker.get_task_detail(seeded["tasks"]["done1"]))
    assert (detail.workflow_id, detail.workflow_name, detail.workflow_status,
            detail.node_task_index, detail.node_id) == (
        seeded["workflows"]["RUNNING"], "wf_running", "RUNNING", 0, "n0")
    plain = ok(broker.get_task_detail(seeded["tasks"]["f1"]))
    assert plain.workflow_id is None and plain.node_id is None


def test_workflow_reads_only_read(app: Horsies, pg_url: str) -> None:
    ids = _seed(app, pg_url)["workflows"]
    tables = ("horsies_workflows", "horsies_workflow_tasks")
    before = [query(pg_url, f"SELECT * FROM {t} ORDER BY id") for t in tables]
    reader = make_app(read_only(pg_url)).get_broker()

    async def read_all() -> list[Any]:
        return [await reader.get_workflow_summary(), await reader.list_workflows(),
                await reader.get_workflow_detail(ids["RUNNING"])]

    try:
        outcomes = asyncio.run(read_all())
    finally:
        reader.close()
    assert all(isinstance(o, Ok) for o in outcomes), outcomes
    assert [query(pg_url, f"SELECT * FROM {t} ORDER BY id") for t in tables] == before


def test_workflow_reads_of_a_database_that_is_down(down: PostgresBroker) -> None:
    for read in (down.get_workflow_summary(), down.list_workflows(),
                 down.get_workflow_detail(str(uuid.uuid4()))):
        assert_err(asyncio.run(read), retryable=True)
