"""Result types of the broker's dashboard read models (monitoring.md §2.9).

Every type is a frozen ``msgspec.Struct``. Times are timezone-aware
``datetime``s from the database clock; durations (``age_s``, ``uptime_s``,
``offline_s``, ``oldest_pending_age_s``) are seconds as floats. Percentages
are rounded half-to-even at the precision each method states.
"""

from __future__ import annotations

import datetime
from typing import Any

import msgspec

from horsies.info import TaskAttemptInfo
from horsies.states import TaskStatus, WorkflowStatus, WorkflowTaskStatus

__all__ = [
    "ClusterSummary",
    "DeadWorker",
    "FacetValue",
    "OverloadedWorker",
    "QueueStats",
    "SnapshotAgeBucket",
    "StaleClaimWorker",
    "TaskBreakdownRow",
    "TaskDetail",
    "TaskFacets",
    "TaskFilter",
    "TaskRow",
    "TaskStatusCounts",
    "UtilizationPoint",
    "WorkerAlerts",
    "WorkerState",
    "WorkerStatePoint",
    "WorkflowDetail",
    "WorkflowNodeRow",
    "WorkflowRow",
    "WorkflowSummary",
]


class TaskStatusCounts(msgspec.Struct, frozen=True, kw_only=True):
    """Tasks per status; `total` is the sum of the seven."""

    pending: int
    claimed: int
    running: int
    completed: int
    failed: int
    cancelled: int
    expired: int
    total: int


class QueueStats(msgspec.Struct, frozen=True, kw_only=True):
    """One queue's task counts and the active workers serving it."""

    name: str
    priority: int | None
    max_concurrency: int | None
    pending: int
    scheduled: int
    claimed: int
    running: int
    completed: int
    failed: int
    cancelled: int
    expired: int
    oldest_pending_age_s: float | None
    workers: int


class WorkerState(msgspec.Struct, frozen=True, kw_only=True):
    """A worker's latest snapshot (every column but ``id``) and figures derived from it."""

    worker_id: str
    hostname: str
    pid: int
    snapshot_at: datetime.datetime
    worker_started_at: datetime.datetime
    lifecycle: str
    processes: int
    max_claim_batch: int
    max_claim_per_worker: int
    cluster_wide_cap: int | None
    tasks_running: int
    tasks_claimed: int
    memory_usage_mb: float | None
    memory_percent: float | None
    cpu_percent: float | None
    queues: list[str]
    queue_priorities: dict[str, Any] | None
    queue_max_concurrency: dict[str, Any] | None
    recovery_config: dict[str, Any] | None
    horsies_version: str | None
    alive: bool
    age_s: float
    uptime_s: float
    utilization_pct: float | None


class WorkerStatePoint(msgspec.Struct, frozen=True, kw_only=True):
    """One snapshot of a worker's load."""

    worker_id: str
    snapshot_at: datetime.datetime
    tasks_running: int
    tasks_claimed: int
    processes: int
    cpu_percent: float | None
    memory_percent: float | None


class ClusterSummary(msgspec.Struct, frozen=True, kw_only=True):
    """Totals over the latest snapshot of every active worker."""

    active_workers: int
    total_capacity: int
    total_running: int
    total_claimed: int
    utilization_pct: float | None
    avg_cpu_percent: float | None
    avg_memory_percent: float | None


class UtilizationPoint(msgspec.Struct, frozen=True, kw_only=True):
    """Cluster utilization in one time bucket (per-worker averages, summed)."""

    bucket_start: datetime.datetime
    utilization_pct: float
    total_running: float
    total_capacity: float


class OverloadedWorker(msgspec.Struct, frozen=True, kw_only=True):
    """A recent snapshot above the memory or CPU threshold."""

    worker_id: str
    hostname: str
    memory_percent: float | None
    cpu_percent: float | None
    tasks_running: int
    processes: int
    snapshot_at: datetime.datetime


class StaleClaimWorker(msgspec.Struct, frozen=True, kw_only=True):
    """An active worker holding more than twice as many claims as it runs."""

    worker_id: str
    hostname: str
    tasks_running: int
    tasks_claimed: int
    claim_ratio: float | None
    snapshot_at: datetime.datetime


class WorkerAlerts(msgspec.Struct, frozen=True, kw_only=True):
    overloaded: list[OverloadedWorker]
    stale_claims: list[StaleClaimWorker]


class DeadWorker(msgspec.Struct, frozen=True, kw_only=True):
    """A worker that stopped writing snapshots without stopping cleanly."""

    worker_id: str
    hostname: str
    pid: int
    last_seen: datetime.datetime
    offline_s: float
    tasks_at_death: int


class SnapshotAgeBucket(msgspec.Struct, frozen=True, kw_only=True):
    label: str
    snapshot_count: int
    unique_workers: int


class TaskFilter(msgspec.Struct, frozen=True, kw_only=True):
    """Which tasks `list_tasks` (and, in part, `get_task_facets`) return.

    Empty sets and ``None`` match everything. `worker_id` and `unassigned`
    cannot be combined (``ValueError``).
    """

    statuses: frozenset[str] = frozenset()
    worker_id: str | None = None
    unassigned: bool = False
    retried_only: bool = False
    task_names: frozenset[str] = frozenset()
    queues: frozenset[str] = frozenset()
    error_codes: frozenset[str] = frozenset()
    text: str | None = None

    def __post_init__(self) -> None:
        if self.worker_id is not None and self.unassigned:
            raise ValueError("TaskFilter: worker_id and unassigned cannot be combined")


class TaskBreakdownRow(msgspec.Struct, frozen=True, kw_only=True):
    """Counts of one worker's tasks (or of ``unassigned`` ones, or the ``TOTAL``)."""

    worker_id: str
    total: int
    pending: int
    claimed: int
    running: int
    completed: int
    failed: int
    cancelled: int
    expired: int
    retried: int
    task_ids: list[str]
    retry_counts: list[int]


class FacetValue(msgspec.Struct, frozen=True):
    value: str
    count: int


class TaskFacets(msgspec.Struct, frozen=True, kw_only=True):
    task_names: list[FacetValue]
    queues: list[FacetValue]
    error_codes: list[FacetValue]


class TaskRow(msgspec.Struct, frozen=True, kw_only=True):
    """One task in a list."""

    id: str
    task_name: str
    queue_name: str
    status: TaskStatus
    error_code: str | None
    retry_count: int
    max_retries: int
    claimed_by_worker_id: str | None
    enqueued_at: datetime.datetime
    started_at: datetime.datetime | None
    completed_at: datetime.datetime | None
    failed_at: datetime.datetime | None
    updated_at: datetime.datetime


class TaskDetail(msgspec.Struct, frozen=True, kw_only=True):
    """Every column of one task (payloads as their stored text), its attempts
    newest first, and its workflow node when it is one."""

    id: str
    task_name: str
    queue_name: str
    status: TaskStatus
    priority: int
    retry_count: int
    max_retries: int
    claimed: bool
    enqueue_sha: str
    sent_at: datetime.datetime
    enqueued_at: datetime.datetime
    created_at: datetime.datetime
    updated_at: datetime.datetime
    claimed_at: datetime.datetime | None
    claim_expires_at: datetime.datetime | None
    started_at: datetime.datetime | None
    completed_at: datetime.datetime | None
    failed_at: datetime.datetime | None
    good_until: datetime.datetime | None
    next_retry_at: datetime.datetime | None
    claimed_by_worker_id: str | None
    worker_hostname: str | None
    worker_pid: int | None
    worker_process_name: str | None
    run_seq: int | None
    args: str | None
    kwargs: str | None
    task_options: str | None
    result: str | None
    error_code: str | None
    failed_reason: str | None
    attempts: list[TaskAttemptInfo]
    workflow_id: str | None = None
    workflow_name: str | None = None
    workflow_status: str | None = None
    node_task_index: int | None = None
    node_id: str | None = None


class WorkflowSummary(msgspec.Struct, frozen=True, kw_only=True):
    """Workflows (all depths) per status; `total` is the sum of the six."""

    pending: int
    running: int
    completed: int
    failed: int
    paused: int
    cancelled: int
    total: int


class WorkflowRow(msgspec.Struct, frozen=True, kw_only=True):
    """One workflow in a list, with the counts of its nodes per status.

    `pending_nodes` counts ``PENDING`` and ``READY`` nodes.
    """

    id: str
    name: str
    status: WorkflowStatus
    on_error: str
    depth: int
    parent_workflow_id: str | None
    sent_at: datetime.datetime
    created_at: datetime.datetime
    started_at: datetime.datetime | None
    completed_at: datetime.datetime | None
    updated_at: datetime.datetime
    total_nodes: int
    completed_nodes: int
    failed_nodes: int
    running_nodes: int
    pending_nodes: int
    enqueued_nodes: int
    skipped_nodes: int


class WorkflowNodeRow(msgspec.Struct, frozen=True, kw_only=True):
    """One node of a workflow (`result` and `error` as their stored text)."""

    task_index: int
    node_id: str | None
    task_name: str
    queue_name: str
    priority: int
    status: WorkflowTaskStatus
    dependencies: list[int]
    args_from: dict[str, Any] | None
    workflow_ctx_from: list[str] | None
    allow_failed_deps: bool
    join_type: str
    min_success: int | None
    task_options: str | None
    task_id: str | None
    is_subworkflow: bool
    sub_workflow_id: str | None
    sub_workflow_name: str | None
    started_at: datetime.datetime | None
    completed_at: datetime.datetime | None
    result: str | None
    error: str | None


class WorkflowDetail(WorkflowRow, frozen=True, kw_only=True):
    """Everything about one workflow: its row, stored outcome and nodes by `task_index`.

    `parent_workflow_name` is filled for a subworkflow (ours: the detail view
    names the parent).
    """

    output_task_index: int | None
    success_policy: dict[str, Any] | None
    definition_key: str | None
    root_workflow_id: str | None
    result: str | None
    error: str | None
    parent_workflow_name: str | None
    nodes: list[WorkflowNodeRow]
