"""A database seeded for the monitor: tasks in every status, workers with
snapshots of several ages (one STOPPED), and workflows in every status.

Shared by the workflow read-model tests, the monitor's pilot tests and
tools/monitor_screenshots.py. Workflow rows are inserted with SQL: the engine
does not produce every status (PENDING is reserved) on demand. Ages are well
clear of every threshold, so no assertion depends on timing.
"""

from __future__ import annotations

import uuid
from typing import Any

from horsies import Horsies
from tests.conftest import query
from tests.integration.test_dashboard import make_app, seed_tasks, seed_workers

__all__ = ["WORKFLOW_STATUSES", "make_app", "seed_all", "seed_workflows"]

WORKFLOW_STATUSES = ("PENDING", "RUNNING", "COMPLETED", "FAILED", "PAUSED", "CANCELLED")


def _workflow(url: str, name: str, status: str, created_min_ago: int, *,
              parent: str | None = None, result: str | None = None, error: str | None = None,
              policy: str | None = None, on_error: str = "fail") -> str:
    wf_id = str(uuid.uuid4())
    started = status != "PENDING"
    done = status in ("COMPLETED", "FAILED", "CANCELLED")
    query(url, """
        INSERT INTO horsies_workflows (
            id, parent_workflow_id, root_workflow_id, sent_at, created_at, updated_at,
            started_at, completed_at, depth, status, on_error, name, definition_key,
            success_policy, output_task_index, result, error)
        VALUES (%(id)s::uuid, %(parent)s::uuid, COALESCE(%(parent)s::uuid, %(id)s::uuid),
                now() - %(ago)s * interval '1 minute', now() - %(ago)s * interval '1 minute',
                now() - %(ago)s * interval '1 minute' + interval '30 seconds',
                CASE WHEN %(started)s::boolean THEN now() - %(ago)s * interval '1 minute' END,
                CASE WHEN %(done)s::boolean THEN now() - %(ago)s * interval '1 minute'
                                        + interval '90 seconds' END,
                CASE WHEN %(parent)s::uuid IS NULL THEN 0 ELSE 1 END, %(status)s::text, %(on_error)s,
                %(name)s::text, %(name)s::text || ':v1', %(policy)s::jsonb,
                CASE WHEN %(status)s::text = 'COMPLETED' THEN 2 END, %(result)s, %(error)s)""",
        {"id": wf_id, "parent": parent, "ago": created_min_ago, "started": started,
         "done": done, "status": status, "on_error": on_error, "name": name,
         "policy": policy, "result": result, "error": error})
    return wf_id


def _node(url: str, wf_id: str, index: int, status: str, *, deps: tuple[int, ...] = (),
          task_id: str | None = None, node_id: str | None = None, join: str = "all",
          min_success: int | None = None, allow_failed: bool = False, priority: int = 100,
          sub: tuple[str, str] | None = None, result: str | None = None,
          error: str | None = None) -> None:
    query(url, """
        INSERT INTO horsies_workflow_tasks (
            id, workflow_id, task_id, sub_workflow_id, task_index, priority, min_success,
            allow_failed_deps, is_subworkflow, status, join_type, queue_name, task_name,
            node_id, dependencies, args_from, workflow_ctx_from, task_options,
            sub_workflow_name, started_at, completed_at, result, error)
        VALUES (gen_random_uuid(), %(wf)s::uuid, %(task)s::uuid, %(sub_id)s::uuid, %(index)s, %(priority)s,
                %(min)s, %(allow)s, %(is_sub)s, %(status)s::text, %(join)s, 'high', %(name)s,
                %(node_id)s, %(deps)s, %(args_from)s::jsonb, %(ctx)s, '{}', %(sub_name)s,
                CASE WHEN %(status)s::text IN ('RUNNING', 'COMPLETED', 'FAILED') THEN now() END,
                CASE WHEN %(status)s::text IN ('COMPLETED', 'FAILED') THEN now() END,
                %(result)s, %(error)s)""",
        {"wf": wf_id, "task": task_id, "sub_id": sub[0] if sub else None, "index": index,
         "priority": priority, "min": min_success, "allow": allow_failed,
         "is_sub": sub is not None, "status": status, "join": join,
         "name": sub[1] if sub else ("add" if index % 2 == 0 else "mul"), "node_id": node_id,
         "deps": list(deps), "args_from": '{"x": 0}' if deps else None,
         "ctx": ["n0"] if deps else None, "sub_name": sub[1] if sub else None,
         "result": result, "error": error})


def seed_workflows(url: str, node_task_id: str | None = None) -> dict[str, str]:
    """One workflow per status, newest first in WORKFLOW_STATUSES order, plus a
    subworkflow of the RUNNING one (created last). The RUNNING workflow has a
    node in each node status; its node 0 runs `node_task_id` when given."""
    ids: dict[str, str] = {}
    for position, status in enumerate(WORKFLOW_STATUSES):
        ids[status] = _workflow(
            url, f"wf_{status.lower()}", status, created_min_ago=10 + 10 * position,
            result='{"ok": 42}' if status == "COMPLETED" else None,
            error='{"error_code": "BOOM", "message": "node 1 failed"}'
            if status in ("FAILED", "PAUSED") else None,
            policy='{"cases": [{"required": [0]}]}' if status == "COMPLETED" else None,
            on_error="pause" if status == "PAUSED" else "fail")
    running = ids["RUNNING"]
    ids["SUB"] = _workflow(url, "wf_child", "RUNNING", created_min_ago=1, parent=running)
    _node(url, running, 0, "COMPLETED", task_id=node_task_id, node_id="n0",
          result='{"ok": 3}')
    _node(url, running, 1, "FAILED", deps=(0,),
          error='{"error_code": "BOOM", "message": "it broke"}')
    _node(url, running, 2, "RUNNING", deps=(0,), allow_failed=True, priority=5)
    _node(url, running, 3, "ENQUEUED", deps=(1, 2), join="quorum", min_success=1)
    _node(url, running, 4, "READY", deps=(0,), join="any")
    _node(url, running, 5, "PENDING", deps=(3, 4))
    _node(url, running, 6, "SKIPPED", deps=(1,))
    _node(url, running, 7, "RUNNING", deps=(0,), sub=(ids["SUB"], "wf_child"))
    for status in ("COMPLETED", "FAILED", "PAUSED", "CANCELLED", "PENDING"):
        wf = ids[status]
        node_status = {"COMPLETED": "COMPLETED", "FAILED": "FAILED", "PAUSED": "FAILED",
                       "CANCELLED": "SKIPPED", "PENDING": "PENDING"}[status]
        _node(url, wf, 0, "COMPLETED" if status != "PENDING" else "READY")
        _node(url, wf, 1, node_status, deps=(0,))
        _node(url, wf, 2, "COMPLETED" if status == "COMPLETED" else "PENDING", deps=(1,))
    _node(url, ids["SUB"], 0, "RUNNING")
    return ids


def seed_all(app: Horsies, url: str) -> dict[str, Any]:
    """Tasks, workers and workflows; the RUNNING workflow's node 0 is task `done1`."""
    tasks = seed_tasks(app, url)
    seed_workers(url)
    workflows = seed_workflows(url, node_task_id=tasks["done1"])
    return {"tasks": tasks, "workflows": workflows}
