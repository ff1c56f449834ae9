"""Reading the dashboard read models of the broker (monitoring.md §2.9).

The functions take a connection and let psycopg errors through; the broker
turns them into error values. Queries run unprepared (see dashboard.sql):
each is planned with its parameter values, so the optional filter conditions
fold away and the partial indexes serve what they can.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

import psycopg

from horsies.db.inspect import _attempts
from horsies.monitoring import (
    ClusterSummary,
    DeadWorker,
    FacetValue,
    OverloadedWorker,
    QueueStats,
    SnapshotAgeBucket,
    StaleClaimWorker,
    TaskBreakdownRow,
    TaskDetail,
    TaskFacets,
    TaskFilter,
    TaskRow,
    TaskStatusCounts,
    UtilizationPoint,
    WorkerAlerts,
    WorkerState,
    WorkerStatePoint,
    WorkflowDetail,
    WorkflowNodeRow,
    WorkflowRow,
    WorkflowSummary,
)
from horsies.sql import queries
from horsies.states import TaskStatus, WorkflowStatus, WorkflowTaskStatus

__all__ = [
    "cluster_summary",
    "dead_workers",
    "list_tasks",
    "list_workflows",
    "pct",
    "queue_stats",
    "ratio",
    "snapshot_age_distribution",
    "task_breakdown",
    "task_detail",
    "task_facets",
    "task_status_counts",
    "utilization_trend",
    "worker_alerts",
    "worker_history",
    "worker_states",
    "workflow_detail",
    "workflow_summary",
]

Row = tuple[Any, ...]
Conn = psycopg.AsyncConnection[Any]

ACTIVE_AGE_S = 120
UNASSIGNED = "unassigned"
TOTAL = "TOTAL"


async def _rows(conn: Conn, name: str, params: Mapping[str, Any]) -> list[Row]:
    cur = await conn.execute(queries[name], params, prepare=False)
    return await cur.fetchall()


def _quantize(value: Decimal, places: int) -> float:
    return float(value.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_EVEN))


def ratio(part: int | Decimal, whole: int | Decimal, places: int) -> float | None:
    """``part / whole`` rounded half-to-even; None when `whole` is 0."""
    if not whole:
        return None
    return _quantize(Decimal(part) / Decimal(whole), places)


def pct(part: int | Decimal, whole: int | Decimal, places: int) -> float | None:
    """``100 × part / whole`` rounded half-to-even; None when `whole` is 0."""
    if not whole:
        return None
    return _quantize(Decimal(100) * Decimal(part) / Decimal(whole), places)


# -- tasks ------------------------------------------------------------------------


async def task_status_counts(conn: Conn, terminal_window_s: int | None) -> TaskStatusCounts:
    (row,) = await _rows(conn, "dashboard_task_status_counts", {"window_s": terminal_window_s})
    counts = [int(n) for n in row]
    return TaskStatusCounts(
        pending=counts[0], claimed=counts[1], running=counts[2], completed=counts[3],
        failed=counts[4], cancelled=counts[5], expired=counts[6], total=sum(counts))


async def queue_stats(conn: Conn, terminal_window_s: int | None,
                      configured: Mapping[str, tuple[int | None, int | None]]
                      ) -> list[QueueStats]:
    """`configured` maps the app's queues to (priority, max_concurrency)."""
    found = {row[0]: row for row in await _rows(conn, "dashboard_queue_stats_list",
                                                 {"window_s": terminal_window_s})}
    stats = []
    for name in set(found) | set(configured):
        row = found.get(name) or (name, None, None, 0, 0, 0, 0, 0, 0, 0, 0, None, 0)
        priority, max_concurrency = configured.get(name, (row[1], row[2]))
        stats.append(QueueStats(
            name=name, priority=priority, max_concurrency=max_concurrency,
            pending=row[3], scheduled=row[4], claimed=row[5], running=row[6],
            completed=row[7], failed=row[8], cancelled=row[9], expired=row[10],
            oldest_pending_age_s=row[11] if row[3] else None, workers=row[12]))
    stats.sort(key=lambda s: (s.priority is None, s.priority or 0, s.name))
    return stats


# -- workers ----------------------------------------------------------------------


def _alive(lifecycle: str, age_s: float) -> bool:
    return lifecycle != "STOPPED" and age_s <= ACTIVE_AGE_S


def _worker_state(row: Row) -> WorkerState:
    (worker_id, hostname, pid, snapshot_at, started_at, lifecycle, processes, batch,
     per_worker, cap, running, claimed, mem_mb, mem_pct, cpu_pct, queues, priorities,
     concurrency, recovery, version, age_s) = row
    return WorkerState(
        worker_id=worker_id, hostname=hostname, pid=pid, snapshot_at=snapshot_at,
        worker_started_at=started_at, lifecycle=lifecycle, processes=processes,
        max_claim_batch=batch, max_claim_per_worker=per_worker, cluster_wide_cap=cap,
        tasks_running=running, tasks_claimed=claimed, memory_usage_mb=mem_mb,
        memory_percent=mem_pct, cpu_percent=cpu_pct, queues=list(queues),
        queue_priorities=priorities, queue_max_concurrency=concurrency,
        recovery_config=recovery, horsies_version=version,
        alive=_alive(lifecycle, age_s), age_s=age_s,
        uptime_s=(snapshot_at - started_at).total_seconds(),
        utilization_pct=pct(running, processes, 1))


async def worker_states(conn: Conn, include_inactive: bool) -> list[WorkerState]:
    query = "dashboard_worker_latest_all" if include_inactive else "dashboard_worker_latest_active"
    states = [_worker_state(row) for row in await _rows(conn, query, {})]
    if not include_inactive:
        states = [s for s in states if s.alive]
    states.sort(key=lambda s: (s.hostname, s.worker_id))
    return states


async def worker_history(conn: Conn, window_s: int,
                         worker_id: str | None) -> list[WorkerStatePoint]:
    rows = await _rows(conn, "dashboard_worker_history_list",
                       {"window_s": window_s, "worker_id": worker_id})
    return [WorkerStatePoint(worker_id=r[0], snapshot_at=r[1], tasks_running=r[2],
                             tasks_claimed=r[3], processes=r[4], cpu_percent=r[5],
                             memory_percent=r[6]) for r in rows]


def _average(values: list[float | None]) -> float | None:
    known = [Decimal(str(v)) for v in values if v is not None]
    return _quantize(sum(known, Decimal(0)) / len(known), 1) if known else None


async def cluster_summary(conn: Conn) -> ClusterSummary:
    active = await worker_states(conn, include_inactive=False)
    capacity = sum(s.processes for s in active)
    running = sum(s.tasks_running for s in active)
    return ClusterSummary(
        active_workers=len(active), total_capacity=capacity, total_running=running,
        total_claimed=sum(s.tasks_claimed for s in active),
        utilization_pct=pct(running, capacity, 2),
        avg_cpu_percent=_average([s.cpu_percent for s in active]),
        avg_memory_percent=_average([s.memory_percent for s in active]))


async def utilization_trend(conn: Conn, window_s: int, bucket_s: int) -> list[UtilizationPoint]:
    rows = await _rows(conn, "dashboard_utilization_trend_list",
                       {"window_s": window_s, "bucket_s": bucket_s})
    return [UtilizationPoint(bucket_start=start, utilization_pct=pct(running, capacity, 2) or 0.0,
                             total_running=float(running), total_capacity=float(capacity))
            for start, running, capacity in rows]


async def worker_alerts(conn: Conn) -> WorkerAlerts:
    recent = await _rows(conn, "dashboard_worker_latest_recent", {})
    overloaded = [
        OverloadedWorker(worker_id=r[0], hostname=r[1], memory_percent=r[2], cpu_percent=r[3],
                         tasks_running=r[4], processes=r[5], snapshot_at=r[6])
        for r in recent
        if (r[2] is not None and r[2] > 85) or (r[3] is not None and r[3] > 80)]
    stale = [
        StaleClaimWorker(worker_id=s.worker_id, hostname=s.hostname,
                         tasks_running=s.tasks_running, tasks_claimed=s.tasks_claimed,
                         claim_ratio=ratio(s.tasks_claimed, s.tasks_running, 2),
                         snapshot_at=s.snapshot_at)
        for s in await worker_states(conn, include_inactive=False)
        if s.tasks_claimed > 2 * s.tasks_running]
    return WorkerAlerts(overloaded=overloaded, stale_claims=stale)


async def dead_workers(conn: Conn, offline_after_s: int) -> list[DeadWorker]:
    rows = await _rows(conn, "dashboard_worker_dead_list", {"offline_after_s": offline_after_s})
    return [DeadWorker(worker_id=r[0], hostname=r[1], pid=r[2], last_seen=r[3], offline_s=r[4],
                       tasks_at_death=r[5]) for r in rows]


async def snapshot_age_distribution(conn: Conn) -> list[SnapshotAgeBucket]:
    rows = await _rows(conn, "dashboard_snapshot_age_buckets", {})
    return [SnapshotAgeBucket(label=r[0], snapshot_count=r[1], unique_workers=r[2])
            for r in rows]


# -- task lists -------------------------------------------------------------------


def _filter_params(task_filter: TaskFilter) -> dict[str, Any]:
    return {
        "statuses": sorted(task_filter.statuses), "worker_id": task_filter.worker_id,
        "unassigned": task_filter.unassigned, "retried_only": task_filter.retried_only,
        "task_names": sorted(task_filter.task_names), "queues": sorted(task_filter.queues),
        "error_codes": sorted(task_filter.error_codes), "text": task_filter.text,
    }


async def task_breakdown(conn: Conn, statuses: frozenset[str], retried_only: bool,
                         ids_per_worker: int) -> list[TaskBreakdownRow]:
    rows = await _rows(conn, "dashboard_task_breakdown_list",
                       {"statuses": sorted(statuses), "retried_only": retried_only,
                        "ids_per_worker": max(0, ids_per_worker)})
    found = []
    for r in rows:
        is_total, worker = r[0], r[1]
        found.append(TaskBreakdownRow(
            worker_id=TOTAL if is_total else (UNASSIGNED if worker is None else worker),
            total=r[2], pending=r[3], claimed=r[4], running=r[5], completed=r[6], failed=r[7],
            cancelled=r[8], expired=r[9], retried=r[10],
            task_ids=[] if is_total else list(r[11]),
            retry_counts=[] if is_total else list(r[12])))
    return found


async def task_facets(conn: Conn, task_filter: TaskFilter) -> TaskFacets:
    params = _filter_params(task_filter)
    rows = await _rows(conn, "dashboard_task_facets_list",
                       {k: params[k] for k in ("statuses", "worker_id", "unassigned",
                                               "retried_only")})
    facets: dict[str, list[FacetValue]] = {"task_names": [], "queues": [], "error_codes": []}
    for facet, value, count in rows:
        facets[facet].append(FacetValue(value, count))
    return TaskFacets(**facets)


# The windows list_tasks tries in turn, widest last (None: every row). A
# window's answer is final once it holds `limit` rows: every row outside it
# changed earlier. The day step keeps a filter on a rare status (FAILED is a
# few percent of the rows) off a sort of the whole table.
RECENT_WINDOWS_S: tuple[int | None, ...] = (3600, 86400, None)


async def list_tasks(conn: Conn, task_filter: TaskFilter, limit: int) -> list[TaskRow]:
    """The newest rows changed in the last hour; only when they are fewer than
    `limit` the last day, then all rows (each answer is a prefix of the next)."""
    params = {**_filter_params(task_filter), "limit": max(0, limit)}
    for recent_s in RECENT_WINDOWS_S:
        rows = await _rows(conn, "dashboard_task_list", {**params, "recent_s": recent_s})
        if len(rows) >= params["limit"]:
            break
    return [TaskRow(id=r[0], task_name=r[1], queue_name=r[2], status=TaskStatus(r[3]),
                    error_code=r[4], retry_count=r[5], max_retries=r[6],
                    claimed_by_worker_id=r[7], enqueued_at=r[8], started_at=r[9],
                    completed_at=r[10], failed_at=r[11], updated_at=r[12]) for r in rows]


async def task_detail(conn: Conn, task_id: str) -> TaskDetail | None:
    found = await _rows(conn, "dashboard_task_detail_get", {"id": task_id})
    if not found:
        return None
    r = found[0]
    stored = await _rows(conn, "task_attempts_get", {"id": task_id})
    node = await _rows(conn, "dashboard_task_workflow_node_get", {"id": task_id})
    workflow: dict[str, Any] = {}
    if node:
        workflow = dict(zip(("workflow_id", "workflow_name", "workflow_status",
                             "node_task_index", "node_id"), node[0], strict=True))
    return TaskDetail(
        id=r[0], task_name=r[1], status=TaskStatus(r[2]), queue_name=r[3], priority=r[4],
        retry_count=r[5], max_retries=r[6], next_retry_at=r[7], sent_at=r[8],
        enqueued_at=r[9], claimed_at=r[10], started_at=r[11], completed_at=r[12],
        failed_at=r[13], worker_hostname=r[14], worker_pid=r[15], worker_process_name=r[16],
        error_code=r[17], result=r[18], failed_reason=r[19], claimed_by_worker_id=r[20],
        created_at=r[21], updated_at=r[22], claimed=r[23], enqueue_sha=r[24],
        claim_expires_at=r[25], good_until=r[26], args=r[27], kwargs=r[28],
        task_options=r[29], run_seq=r[30], attempts=_attempts(r[:21], stored), **workflow)


# -- workflows --------------------------------------------------------------------


async def workflow_summary(conn: Conn) -> WorkflowSummary:
    (row,) = await _rows(conn, "dashboard_workflow_summary", {})
    pending, running, completed, failed, paused, cancelled = (int(n) for n in row)
    return WorkflowSummary(pending=pending, running=running, completed=completed,
                           failed=failed, paused=paused, cancelled=cancelled,
                           total=pending + running + completed + failed + paused + cancelled)


_WORKFLOW_ROW_FIELDS = (
    "id", "name", "status", "on_error", "depth", "parent_workflow_id", "sent_at", "created_at",
    "started_at", "completed_at", "updated_at", "total_nodes", "completed_nodes", "failed_nodes",
    "running_nodes", "pending_nodes", "enqueued_nodes", "skipped_nodes")


def _workflow_fields(r: Row) -> dict[str, Any]:
    """The WorkflowRow fields of the first 18 columns of the list and detail queries."""
    fields = dict(zip(_WORKFLOW_ROW_FIELDS, r, strict=False))
    fields["status"] = WorkflowStatus(fields["status"])
    return fields


async def list_workflows(conn: Conn, statuses: frozenset[str], limit: int) -> list[WorkflowRow]:
    rows = await _rows(conn, "dashboard_workflow_list",
                       {"statuses": sorted(statuses), "limit": max(0, limit)})
    return [WorkflowRow(**_workflow_fields(r)) for r in rows]


def _node(r: Row) -> WorkflowNodeRow:
    return WorkflowNodeRow(
        task_index=r[0], node_id=r[1], task_name=r[2], queue_name=r[3], priority=r[4],
        status=WorkflowTaskStatus(r[5]), dependencies=list(r[6]), args_from=r[7],
        workflow_ctx_from=None if r[8] is None else list(r[8]), allow_failed_deps=r[9],
        join_type=r[10], min_success=r[11], task_options=r[12], task_id=r[13],
        is_subworkflow=r[14], sub_workflow_id=r[15], sub_workflow_name=r[16],
        started_at=r[17], completed_at=r[18], result=r[19], error=r[20])


async def workflow_detail(conn: Conn, workflow_id: str) -> WorkflowDetail | None:
    found = await _rows(conn, "dashboard_workflow_detail_get", {"id": workflow_id})
    if not found:
        return None
    r = found[0]
    nodes = await _rows(conn, "dashboard_workflow_nodes_list", {"id": workflow_id})
    return WorkflowDetail(
        **_workflow_fields(r), output_task_index=r[18], success_policy=r[19],
        definition_key=r[20], root_workflow_id=r[21], result=r[22], error=r[23],
        parent_workflow_name=r[24], nodes=[_node(n) for n in nodes])
