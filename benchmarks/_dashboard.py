"""A dashboard-sized database and the dashboard calls, for bench_dashboard.py and dashboard_plans.py.

`seed` fills an empty database with 1,000,000 finished tasks by default (95 %
COMPLETED, 3 % FAILED, 1 % EXPIRED, 1 % CANCELLED, over 5 queues and 12 task
names, `updated_at` spread evenly over the last 7 days and written in time
order as a real drain writes them), the attempts a failure or a retry leaves
behind, 4,000 in-flight tasks (3,000 PENDING of which 300 scheduled, 300
CLAIMED, 700 RUNNING), and one day of worker snapshots of 10 workers at the
worker's 5 s interval: 8 alive, one dead 10 minutes ago, one STOPPED 2 hours
ago; and 20,000 workflows of 5 nodes over the same 7 days (2 % RUNNING, 1 %
PAUSED, 2 % FAILED, 1 % CANCELLED). Plain SQL: a benchmark is not the package.

`CALLS` are the dashboard methods with the arguments the monitor uses on a
refresh; `REFRESH` is the set of calls of one Dashboard-tab refresh
(monitoring.md §3.3).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import psycopg

from horsies import PostgresConfig, TaskFilter
from horsies.db.broker import PostgresBroker

FINISHED_TASKS = 1_000_000
WORKFLOWS = 20_000
WORKERS = 10
LIVE_WORKERS = 8
SNAPSHOT_INTERVAL_S = 5  # horsies.worker.snapshots.INTERVAL_S
SNAPSHOT_SPAN_S = 86_400

QUEUES = ("default", "high", "low", "emails", "reports")
TASK_NAMES = ("add", "mul", "send_email", "send_sms", "render_report", "resize_image",
              "sync_account", "charge_card", "refund", "index_document", "webhook",
              "cleanup")

_FINISHED = """
INSERT INTO horsies_tasks (
    id, sent_at, enqueued_at, created_at, updated_at, priority, retry_count, max_retries,
    claimed, status, queue_name, task_name, enqueue_sha, claimed_at, claim_expires_at,
    started_at, completed_at, failed_at, good_until, next_retry_at, worker_pid, args, kwargs,
    task_options, result, error_code, failed_reason, claimed_by_worker_id, worker_hostname,
    worker_process_name, run_seq)
SELECT gen_random_uuid(), g.sent, g.sent, g.sent, g.t_end, g.prio, g.retries, g.max_retries,
       FALSE, g.status, g.queue, g.task, md5(g.i::text) || md5((-g.i)::text),
       CASE WHEN g.started THEN g.t_end - g.run - INTERVAL '5 milliseconds' END, NULL,
       CASE WHEN g.started THEN g.t_end - g.run END,
       CASE WHEN g.status = 'COMPLETED' THEN g.t_end END,
       CASE WHEN g.status = 'FAILED' THEN g.t_end END,
       CASE WHEN g.status = 'EXPIRED' THEN g.t_end - INTERVAL '1 second' END, NULL,
       CASE WHEN g.started THEN 1000 + g.child END,
       '[' || g.i || ', ' || (g.i %% 97) || ']', '{}',
       CASE WHEN g.max_retries > 0
            THEN '{"auto_retry_for": ["TASK_EXCEPTION"], "retry_policy": {"max_retries": 3}}' END,
       CASE g.status WHEN 'COMPLETED' THEN '{"ok": ' || g.i || '}'
                     WHEN 'FAILED' THEN '{"err": {"error_code": "' || g.code
                                        || '", "message": "boom ' || g.i || '"}}' END,
       CASE WHEN g.status = 'FAILED' THEN g.code END,
       CASE WHEN g.status = 'FAILED' THEN 'task raised: boom ' || g.i END,
       CASE WHEN g.started THEN (%(worker_ids)s::text[])[1 + g.i %% %(live)s] END,
       CASE WHEN g.started THEN 'host-' || (1 + g.i %% %(live)s) END,
       CASE WHEN g.started THEN 'horsies-child-' || g.child END,
       CASE WHEN g.started THEN g.i END
FROM (
    SELECT r.*, r.status IN ('COMPLETED', 'FAILED') AS started,
           r.t_end - r.run - r.wait AS sent,
           CASE WHEN r.retries > 0 OR r.status = 'FAILED' THEN 3 ELSE 0 END AS max_retries
    FROM (
        SELECT i,
               statement_timestamp() - INTERVAL '7 days'
                   + (i * (604800.0 / %(n)s)) * INTERVAL '1 second' AS t_end,
               (ARRAY['default', 'high', 'low', 'emails', 'reports'])[1 + (i * 7) %% 5] AS queue,
               (ARRAY['add', 'mul', 'send_email', 'send_sms', 'render_report', 'resize_image',
                      'sync_account', 'charge_card', 'refund', 'index_document', 'webhook',
                      'cleanup'])[1 + (i * 13) %% 12] AS task,
               CASE WHEN h < 95 THEN 'COMPLETED' WHEN h < 98 THEN 'FAILED'
                    WHEN h < 99 THEN 'EXPIRED' ELSE 'CANCELLED' END AS status,
               (ARRAY['TASK_EXCEPTION', 'WORKER_CRASHED', 'UPSTREAM_TIMEOUT',
                      'CARD_DECLINED'])[1 + i %% 4] AS code,
               CASE WHEN h < 95 AND i %% 50 = 0 THEN 1 + i %% 3
                    WHEN h >= 95 AND h < 98 THEN 3 ELSE 0 END AS retries,
               CASE WHEN (i * 7) %% 5 = 1 THEN 10 ELSE 100 END AS prio,
               (50 + i %% 400) * INTERVAL '1 millisecond' AS run,
               (i %% 200) * INTERVAL '10 milliseconds' AS wait,
               1 + i %% 4 AS child
        FROM (SELECT i, ((i::bigint * 7919 + i / 1000) %% 100)::integer AS h
              FROM generate_series(1, %(n)s) AS i) AS s
    ) AS r
) AS g
ORDER BY g.i
"""

# One row per failed attempt (a retried task's earlier attempts and a FAILED
# task's last one); an attempt that completed the task writes no row.
_ATTEMPTS = """
INSERT INTO horsies_task_attempts (
    task_id, started_at, finished_at, attempt, worker_pid, will_retry, outcome, error_code,
    error_message, failed_reason, worker_id, worker_hostname, worker_process_name)
SELECT t.id, t.started_at - (t.retry_count - a.n + 2) * INTERVAL '2 seconds',
       t.started_at - (t.retry_count - a.n + 2) * INTERVAL '2 seconds' + INTERVAL '100 ms',
       a.n, t.worker_pid, a.n <= t.retry_count, 'FAILED', COALESCE(t.error_code, 'TASK_EXCEPTION'),
       'boom', 'task raised: boom', t.claimed_by_worker_id, t.worker_hostname,
       t.worker_process_name
FROM horsies_tasks AS t
CROSS JOIN LATERAL generate_series(
    1, t.retry_count + CASE WHEN t.status = 'FAILED' THEN 1 ELSE 0 END) AS a(n)
WHERE t.status IN ('COMPLETED', 'FAILED') AND (t.retry_count > 0 OR t.status = 'FAILED')
ORDER BY t.updated_at, a.n
"""

_IN_FLIGHT = """
INSERT INTO horsies_tasks (
    id, sent_at, enqueued_at, created_at, updated_at, priority, retry_count, max_retries,
    claimed, status, queue_name, task_name, enqueue_sha, claimed_at, claim_expires_at,
    started_at, worker_pid, args, kwargs, claimed_by_worker_id, worker_hostname,
    worker_process_name, run_seq)
SELECT gen_random_uuid(), g.sent, g.enq, g.sent,
       CASE g.status WHEN 'PENDING' THEN g.sent ELSE statement_timestamp() - g.i * INTERVAL '20 ms' END,
       100, 0, 0, g.status = 'CLAIMED', g.status, g.queue, g.task,
       md5(g.i::text || 'f') || md5((-g.i)::text || 'f'),
       CASE WHEN g.status <> 'PENDING' THEN statement_timestamp() - g.i * INTERVAL '20 ms' END,
       CASE WHEN g.status = 'CLAIMED' THEN statement_timestamp() + INTERVAL '60 seconds' END,
       CASE WHEN g.status = 'RUNNING' THEN statement_timestamp() - g.i * INTERVAL '10 ms' END,
       CASE WHEN g.status = 'RUNNING' THEN 1000 + 1 + g.i %% 4 END,
       '[' || g.i || ', 1]', '{}',
       CASE WHEN g.status <> 'PENDING' THEN (%(worker_ids)s::text[])[1 + g.i %% %(live)s] END,
       CASE WHEN g.status <> 'PENDING' THEN 'host-' || (1 + g.i %% %(live)s) END,
       CASE WHEN g.status = 'RUNNING' THEN 'horsies-child-' || (1 + g.i %% 4) END,
       CASE WHEN g.status <> 'PENDING' THEN %(n)s + g.i END
FROM (
    SELECT i,
           CASE WHEN i <= 3000 THEN 'PENDING' WHEN i <= 3300 THEN 'CLAIMED' ELSE 'RUNNING' END
               AS status,
           statement_timestamp() - (i %% 600) * INTERVAL '1 second' AS sent,
           CASE WHEN i <= 300 THEN statement_timestamp() + (i %% 60 + 1) * INTERVAL '1 minute'
                ELSE statement_timestamp() - (i %% 600) * INTERVAL '1 second' END AS enq,
           (ARRAY['default', 'high', 'low', 'emails', 'reports'])[1 + (i * 7) %% 5] AS queue,
           (ARRAY['add', 'mul', 'send_email', 'send_sms', 'render_report', 'resize_image',
                  'sync_account', 'charge_card', 'refund', 'index_document', 'webhook',
                  'cleanup'])[1 + (i * 13) %% 12] AS task
    FROM generate_series(1, 4000) AS i
) AS g
"""

# Worker w (1-based) writes a snapshot every 5 s over the last day; worker 9
# stopped writing 10 minutes ago without saying so (dead), worker 10 stopped
# cleanly 2 hours ago (its last snapshot is STOPPED).
_SNAPSHOTS = """
INSERT INTO horsies_worker_states (
    snapshot_at, worker_started_at, memory_usage_mb, memory_percent, cpu_percent, pid,
    processes, max_claim_batch, max_claim_per_worker, cluster_wide_cap, tasks_running,
    tasks_claimed, worker_id, hostname, lifecycle, queues, queue_priorities,
    queue_max_concurrency, recovery_config, horsies_version)
SELECT x.at, statement_timestamp() - INTERVAL '1 day 1 hour',
       180 + (x.k %% 40), 4.5 + (x.k %% 10) / 10.0,
       CASE WHEN x.w = 1 THEN 85 + x.k %% 10 ELSE 20 + (x.k * x.w) %% 50 END,
       4000 + x.w, 4, 4, 8, NULL,
       (x.k + x.w) %% 5, CASE WHEN x.w = 2 THEN 6 + x.k %% 3 ELSE (x.k * x.w) %% 3 END,
       (%(worker_ids)s::text[])[x.w], 'host-' || x.w,
       CASE WHEN x.w = 10 AND x.s = 7200 THEN 'STOPPED' ELSE 'RUNNING' END,
       ARRAY['default', 'high', 'low', 'emails', 'reports'],
       '{"default": 100, "high": 10, "low": 100, "emails": 50, "reports": 100}'::jsonb,
       '{"default": null, "high": 8, "low": null, "emails": 4, "reports": 2}'::jsonb,
       '{"auto_requeue_stale_claimed": true, "claimed_stale_threshold_ms": 120000}'::jsonb,
       '0.1.0'
FROM (
    SELECT w, s, s / %(interval)s AS k,
           statement_timestamp() - s * INTERVAL '1 second' - w * INTERVAL '300 ms' AS at
    FROM generate_series(1, %(workers)s) AS w
    CROSS JOIN generate_series(%(span)s, 0, -%(interval)s) AS s
    WHERE (w <= %(live)s) OR (w = 9 AND s >= 600) OR (w = 10 AND s >= 7200)
) AS x
ORDER BY x.at
"""

# Workflows of 5 nodes each, created over the last 7 days in time order: 2 %
# still RUNNING (their last two nodes not done), 1 % PAUSED, 2 % FAILED, 1 %
# CANCELLED, the rest COMPLETED.
_WORKFLOWS = """
INSERT INTO horsies_workflows (
    id, root_workflow_id, sent_at, created_at, updated_at, started_at, completed_at, depth,
    status, on_error, name, definition_key)
SELECT g.id, g.id, g.at, g.at, g.at + INTERVAL '2 seconds', g.at,
       CASE WHEN g.status IN ('COMPLETED', 'FAILED', 'CANCELLED')
            THEN g.at + INTERVAL '2 seconds' END,
       0, g.status, CASE WHEN g.status = 'PAUSED' THEN 'pause' ELSE 'fail' END,
       'pipeline_' || (g.i %% 7), 'pipeline_' || (g.i %% 7) || ':v1'
FROM (
    SELECT i, md5('wf' || i)::uuid AS id,
           statement_timestamp() - INTERVAL '7 days'
               + (i * (604800.0 / %(workflows_n)s)) * INTERVAL '1 second' AS at,
           CASE WHEN i %% 100 < 2 THEN 'RUNNING' WHEN i %% 100 < 3 THEN 'PAUSED'
                WHEN i %% 100 < 5 THEN 'FAILED' WHEN i %% 100 < 6 THEN 'CANCELLED'
                ELSE 'COMPLETED' END AS status
    FROM generate_series(1, %(workflows_n)s) AS i
) AS g
ORDER BY g.i;

INSERT INTO horsies_workflow_tasks (
    id, workflow_id, task_index, status, task_name, queue_name, dependencies)
SELECT gen_random_uuid(), w.id, n,
       CASE WHEN w.status = 'COMPLETED' OR n < 3 THEN 'COMPLETED'
            WHEN w.status = 'RUNNING' THEN (ARRAY['RUNNING', 'PENDING'])[n - 2]
            WHEN w.status = 'CANCELLED' THEN 'SKIPPED' ELSE 'FAILED' END,
       'step_' || n, 'default', CASE WHEN n = 0 THEN '{}'::integer[] ELSE ARRAY[n - 1] END
FROM horsies_workflows AS w CROSS JOIN generate_series(0, 4) AS n
ORDER BY w.created_at, n
"""

# What a running worker adds every 5 s: one snapshot per live worker, now.
_FRESH_SNAPSHOTS = """
INSERT INTO horsies_worker_states (
    snapshot_at, worker_started_at, memory_usage_mb, memory_percent, cpu_percent, pid,
    processes, max_claim_batch, max_claim_per_worker, cluster_wide_cap, tasks_running,
    tasks_claimed, worker_id, hostname, lifecycle, queues, queue_priorities,
    queue_max_concurrency, recovery_config, horsies_version)
SELECT DISTINCT ON (worker_id)
       statement_timestamp(), worker_started_at, memory_usage_mb, memory_percent, cpu_percent,
       pid, processes, max_claim_batch, max_claim_per_worker, cluster_wide_cap, tasks_running,
       tasks_claimed, worker_id, hostname, lifecycle, queues, queue_priorities,
       queue_max_concurrency, recovery_config, horsies_version
FROM horsies_worker_states
WHERE worker_id = ANY(%(live_ids)s::text[])
ORDER BY worker_id, snapshot_at DESC
"""


def worker_ids() -> list[str]:
    """Fixed worker ids (uuid-shaped, like a worker's), so reseeding gives the same data."""
    return [f"00000000-0000-4000-8000-{w:012d}" for w in range(1, WORKERS + 1)]


def seed(url: str, finished: int = FINISHED_TASKS) -> dict[str, Any]:
    """Create the schema in the empty database `url` and fill it; returns what the calls need."""
    broker = PostgresBroker(PostgresConfig(database_url=url))
    try:
        broker.ensure_schema()
    finally:
        broker.close()
    ids = worker_ids()
    params = {"n": finished, "worker_ids": ids, "live": LIVE_WORKERS, "workers": WORKERS,
              "span": SNAPSHOT_SPAN_S, "interval": SNAPSHOT_INTERVAL_S,
              "workflows_n": WORKFLOWS}
    with psycopg.connect(url, autocommit=True) as conn:
        with conn.transaction():
            conn.execute("SET LOCAL synchronous_commit = off")
            # In-flight rows first: inserted after the finished ones they
            # would fill the free space the bulk insert leaves in its pages,
            # a recent updated_at in every block range of the last day.
            conn.execute(_IN_FLIGHT, params)
            conn.execute(_FINISHED, params)
            conn.execute(_ATTEMPTS)
            conn.execute(_SNAPSHOTS, params)
            for statement in _WORKFLOWS.split(";\n"):
                conn.execute(statement, params)
        conn.execute("VACUUM ANALYZE")
        row = conn.execute(
            "SELECT id::text FROM horsies_tasks WHERE status = 'FAILED' "
            "ORDER BY updated_at DESC LIMIT 1").fetchone()
        workflow = conn.execute(
            "SELECT id::text FROM horsies_workflows WHERE status = 'RUNNING' "
            "ORDER BY created_at DESC LIMIT 1").fetchone()
    assert row is not None and workflow is not None
    return {"detail_id": row[0], "worker_ids": ids, "workflow_id": workflow[0]}


def refresh_snapshots(url: str, info: dict[str, Any]) -> None:
    """One current snapshot per live worker, so they count as active when the calls run."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(_FRESH_SNAPSHOTS, {"live_ids": info["worker_ids"][:LIVE_WORKERS]})


Call = Callable[[PostgresBroker, dict[str, Any]], Awaitable[Any]]

CALLS: dict[str, Call] = {
    "get_task_status_counts": lambda b, i: b.get_task_status_counts(terminal_window_s=86400),
    "get_queue_stats": lambda b, i: b.get_queue_stats(),
    "get_worker_states": lambda b, i: b.get_worker_states(),
    "get_worker_history": lambda b, i: b.get_worker_history(
        window_s=1800, worker_id=i["worker_ids"][0]),
    "get_cluster_summary": lambda b, i: b.get_cluster_summary(),
    "get_utilization_trend": lambda b, i: b.get_utilization_trend(),
    "get_worker_alerts": lambda b, i: b.get_worker_alerts(),
    "get_dead_workers": lambda b, i: b.get_dead_workers(),
    "get_snapshot_age_distribution": lambda b, i: b.get_snapshot_age_distribution(),
    "get_task_breakdown": lambda b, i: b.get_task_breakdown(
        statuses=frozenset({"CLAIMED", "RUNNING"})),
    "get_task_facets": lambda b, i: b.get_task_facets(
        TaskFilter(statuses=frozenset({"CLAIMED", "RUNNING"}))),
    "list_tasks_status": lambda b, i: b.list_tasks(TaskFilter(statuses=frozenset({"FAILED"}))),
    "list_tasks_queue": lambda b, i: b.list_tasks(TaskFilter(queues=frozenset({"emails"}))),
    "list_tasks_all": lambda b, i: b.list_tasks(TaskFilter()),
    "get_task_detail": lambda b, i: b.get_task_detail(i["detail_id"]),
    "get_workflow_summary": lambda b, i: b.get_workflow_summary(),
    "list_workflows": lambda b, i: b.list_workflows(
        statuses=frozenset({"PENDING", "RUNNING", "PAUSED"})),
    "list_workflows_all": lambda b, i: b.list_workflows(),
    "get_workflow_detail": lambda b, i: b.get_workflow_detail(i["workflow_id"]),
}

# One Dashboard-tab refresh (monitoring.md §3.3).
REFRESH = ("get_cluster_summary", "get_task_status_counts", "get_queue_stats",
           "get_utilization_trend", "get_worker_alerts", "get_dead_workers",
           "get_workflow_summary")


async def call(broker: PostgresBroker, info: dict[str, Any], name: str) -> Any:
    """Run one call; an error value becomes an exception, so a broken query never times as fast."""
    result = await CALLS[name](broker, info)
    if result.is_err():
        raise RuntimeError(f"{name}: {result!r}")
    return result


async def refresh(broker: PostgresBroker, info: dict[str, Any]) -> None:
    """The Dashboard tab's data sources, loaded concurrently as the monitor loads its panels."""
    await asyncio.gather(*(call(broker, info, name) for name in REFRESH))
