-- Read-only queries of the broker's dashboard read models (monitoring.md §2.9).
-- Parameters use psycopg's %(name)s style. horsies.db.dashboard runs them
-- unprepared, so each is planned with its parameter values: a condition such
-- as (%(x)s IS NULL OR col = %(x)s) folds to a plain comparison before
-- planning, and the partial indexes apply.
--
-- "Now" is statement_timestamp() (the database clock). A time window over
-- terminal rows is the single condition
--     updated_at >= COALESCE(now - window, '-infinity')
-- which idx_horsies_tasks_updated_brin serves when a window is given.
-- An active worker's latest snapshot is at most 120 seconds old, so it is
-- found by a range scan of idx_horsies_worker_states_snapshot_at; the latest
-- snapshot of every worker is found by a loose index scan of
-- idx_horsies_worker_states_worker_snapshot (one probe per worker id).

-- name: dashboard_task_status_counts
-- Tasks per status: in-flight ones in full, terminal ones changed inside the window (all when it is NULL).
-- Indexes: PENDING idx_horsies_tasks_claimable, CLAIMED/RUNNING idx_horsies_tasks_active (partial), terminal idx_horsies_tasks_updated_brin.
SELECT p.pending, a.claimed, a.running, d.completed, d.failed, d.cancelled, d.expired
FROM (SELECT count(*) AS pending FROM horsies_tasks WHERE status = 'PENDING') AS p
CROSS JOIN (
    SELECT count(*) FILTER (WHERE status = 'CLAIMED') AS claimed,
           count(*) FILTER (WHERE status = 'RUNNING') AS running
    FROM horsies_tasks WHERE status IN ('CLAIMED', 'RUNNING')
) AS a
CROSS JOIN (
    SELECT count(*) FILTER (WHERE status = 'COMPLETED') AS completed,
           count(*) FILTER (WHERE status = 'FAILED') AS failed,
           count(*) FILTER (WHERE status = 'CANCELLED') AS cancelled,
           count(*) FILTER (WHERE status = 'EXPIRED') AS expired
    FROM horsies_tasks
    WHERE status IN ('COMPLETED', 'FAILED', 'CANCELLED', 'EXPIRED')
      AND updated_at >= COALESCE(statement_timestamp() - %(window_s)s::integer * INTERVAL '1 second',
                                 '-infinity')
) AS d;

-- name: dashboard_queue_stats_list
-- Per queue: task counts, the oldest claimable age, and the active workers serving it (newest snapshot's settings).
-- Indexes: PENDING idx_horsies_tasks_claimable (index only), CLAIMED/RUNNING idx_horsies_tasks_active, terminal idx_horsies_tasks_updated_brin, snapshots idx_horsies_worker_states_snapshot_at.
WITH live AS (
    SELECT DISTINCT ON (s.worker_id) s.worker_id, s.snapshot_at, s.lifecycle, s.queues,
           s.queue_priorities, s.queue_max_concurrency
    FROM horsies_worker_states AS s
    WHERE s.snapshot_at >= statement_timestamp() - INTERVAL '120 seconds'
    ORDER BY s.worker_id, s.snapshot_at DESC
), served AS (
    SELECT q.queue AS queue_name, count(*) AS workers,
           (array_agg((l.queue_priorities ->> q.queue)::integer
                      ORDER BY l.snapshot_at DESC, l.worker_id))[1] AS priority,
           (array_agg((l.queue_max_concurrency ->> q.queue)::integer
                      ORDER BY l.snapshot_at DESC, l.worker_id))[1] AS max_concurrency
    FROM live AS l CROSS JOIN LATERAL unnest(l.queues) AS q(queue)
    WHERE l.lifecycle <> 'STOPPED'
    GROUP BY q.queue
), waiting AS (
    SELECT queue_name,
           count(*) FILTER (WHERE enqueued_at <= statement_timestamp()) AS pending,
           count(*) FILTER (WHERE enqueued_at > statement_timestamp()) AS scheduled,
           min(enqueued_at) FILTER (WHERE enqueued_at <= statement_timestamp()) AS oldest
    FROM horsies_tasks WHERE status = 'PENDING'
    GROUP BY queue_name
), inflight AS (
    SELECT queue_name,
           count(*) FILTER (WHERE status = 'CLAIMED') AS claimed,
           count(*) FILTER (WHERE status = 'RUNNING') AS running
    FROM horsies_tasks WHERE status IN ('CLAIMED', 'RUNNING')
    GROUP BY queue_name
), done AS (
    SELECT queue_name,
           count(*) FILTER (WHERE status = 'COMPLETED') AS completed,
           count(*) FILTER (WHERE status = 'FAILED') AS failed,
           count(*) FILTER (WHERE status = 'CANCELLED') AS cancelled,
           count(*) FILTER (WHERE status = 'EXPIRED') AS expired
    FROM horsies_tasks
    WHERE status IN ('COMPLETED', 'FAILED', 'CANCELLED', 'EXPIRED')
      AND updated_at >= COALESCE(statement_timestamp() - %(window_s)s::integer * INTERVAL '1 second',
                                 '-infinity')
    GROUP BY queue_name
), names AS (
    SELECT queue_name FROM waiting UNION SELECT queue_name FROM inflight
    UNION SELECT queue_name FROM done UNION SELECT queue_name FROM served
)
SELECT n.queue_name::text, sv.priority, sv.max_concurrency,
       COALESCE(w.pending, 0), COALESCE(w.scheduled, 0),
       COALESCE(i.claimed, 0), COALESCE(i.running, 0),
       COALESCE(d.completed, 0), COALESCE(d.failed, 0), COALESCE(d.cancelled, 0),
       COALESCE(d.expired, 0),
       EXTRACT(EPOCH FROM statement_timestamp() - w.oldest)::double precision,
       COALESCE(sv.workers, 0)
FROM names AS n
LEFT JOIN waiting AS w ON w.queue_name = n.queue_name
LEFT JOIN inflight AS i ON i.queue_name = n.queue_name
LEFT JOIN done AS d ON d.queue_name = n.queue_name
LEFT JOIN served AS sv ON sv.queue_name = n.queue_name;

-- name: dashboard_worker_latest_active
-- The latest snapshot of each worker whose latest snapshot is at most 120 s old (STOPPED ones included; the caller filters).
-- Index: idx_horsies_worker_states_snapshot_at (range of the last 120 s).
SELECT DISTINCT ON (s.worker_id)
       s.worker_id, s.hostname, s.pid, s.snapshot_at, s.worker_started_at, s.lifecycle,
       s.processes, s.max_claim_batch, s.max_claim_per_worker, s.cluster_wide_cap,
       s.tasks_running, s.tasks_claimed, s.memory_usage_mb, s.memory_percent, s.cpu_percent,
       s.queues, s.queue_priorities, s.queue_max_concurrency, s.recovery_config,
       s.horsies_version,
       EXTRACT(EPOCH FROM statement_timestamp() - s.snapshot_at)::double precision AS age_s
FROM horsies_worker_states AS s
WHERE s.snapshot_at >= statement_timestamp() - INTERVAL '120 seconds'
ORDER BY s.worker_id, s.snapshot_at DESC;

-- name: dashboard_worker_latest_all
-- The latest snapshot of every worker that still has snapshots.
-- Index: idx_horsies_worker_states_worker_snapshot, as a loose index scan (one probe per worker id).
WITH RECURSIVE ids AS (
    (SELECT s.worker_id FROM horsies_worker_states AS s ORDER BY s.worker_id LIMIT 1)
    UNION ALL
    SELECT (SELECT s.worker_id FROM horsies_worker_states AS s
            WHERE s.worker_id > ids.worker_id ORDER BY s.worker_id LIMIT 1)
    FROM ids WHERE ids.worker_id IS NOT NULL
)
SELECT s.worker_id, s.hostname, s.pid, s.snapshot_at, s.worker_started_at, s.lifecycle,
       s.processes, s.max_claim_batch, s.max_claim_per_worker, s.cluster_wide_cap,
       s.tasks_running, s.tasks_claimed, s.memory_usage_mb, s.memory_percent, s.cpu_percent,
       s.queues, s.queue_priorities, s.queue_max_concurrency, s.recovery_config,
       s.horsies_version,
       EXTRACT(EPOCH FROM statement_timestamp() - s.snapshot_at)::double precision AS age_s
FROM ids
CROSS JOIN LATERAL (
    SELECT * FROM horsies_worker_states AS x
    WHERE x.worker_id = ids.worker_id
    ORDER BY x.snapshot_at DESC LIMIT 1
) AS s
WHERE ids.worker_id IS NOT NULL;

-- name: dashboard_worker_history_list
-- Snapshots inside the window, of one worker or of all, by worker then time.
-- Index: idx_horsies_worker_states_worker_snapshot for one worker, idx_horsies_worker_states_snapshot_at for all.
SELECT s.worker_id, s.snapshot_at, s.tasks_running, s.tasks_claimed, s.processes,
       s.cpu_percent, s.memory_percent
FROM horsies_worker_states AS s
WHERE s.snapshot_at >= statement_timestamp() - %(window_s)s::integer * INTERVAL '1 second'
  AND (%(worker_id)s::text IS NULL OR s.worker_id = %(worker_id)s::text)
ORDER BY s.worker_id, s.snapshot_at, s.id;

-- name: dashboard_utilization_trend_list
-- Per epoch-aligned bucket: each worker's average running and capacity, summed over workers.
-- Index: idx_horsies_worker_states_snapshot_at (range of the window).
WITH per_worker AS (
    SELECT to_timestamp(floor(EXTRACT(EPOCH FROM s.snapshot_at) / %(bucket_s)s::integer)
                        * %(bucket_s)s::integer) AS bucket_start,
           avg(s.tasks_running::numeric) AS running, avg(s.processes::numeric) AS capacity
    FROM horsies_worker_states AS s
    WHERE s.snapshot_at >= statement_timestamp() - %(window_s)s::integer * INTERVAL '1 second'
    GROUP BY 1, s.worker_id
)
SELECT bucket_start, sum(running) AS total_running, sum(capacity) AS total_capacity
FROM per_worker
GROUP BY bucket_start
ORDER BY bucket_start;

-- name: dashboard_worker_latest_recent
-- The latest snapshot of each worker whose latest snapshot is at most 5 minutes old (overload alerts).
-- Index: idx_horsies_worker_states_snapshot_at (range of the last 5 minutes).
SELECT DISTINCT ON (s.worker_id)
       s.worker_id, s.hostname, s.memory_percent, s.cpu_percent, s.tasks_running,
       s.processes, s.snapshot_at
FROM horsies_worker_states AS s
WHERE s.snapshot_at >= statement_timestamp() - INTERVAL '5 minutes'
ORDER BY s.worker_id, s.snapshot_at DESC;

-- name: dashboard_worker_dead_list
-- Workers whose latest snapshot is older than the threshold and not STOPPED; last seen first.
-- Index: idx_horsies_worker_states_worker_snapshot, as a loose index scan (one probe per worker id).
WITH RECURSIVE ids AS (
    (SELECT s.worker_id FROM horsies_worker_states AS s ORDER BY s.worker_id LIMIT 1)
    UNION ALL
    SELECT (SELECT s.worker_id FROM horsies_worker_states AS s
            WHERE s.worker_id > ids.worker_id ORDER BY s.worker_id LIMIT 1)
    FROM ids WHERE ids.worker_id IS NOT NULL
)
SELECT s.worker_id, s.hostname, s.pid, s.snapshot_at AS last_seen,
       EXTRACT(EPOCH FROM statement_timestamp() - s.snapshot_at)::double precision AS offline_s,
       s.tasks_running + s.tasks_claimed AS tasks_at_death
FROM ids
CROSS JOIN LATERAL (
    SELECT * FROM horsies_worker_states AS x
    WHERE x.worker_id = ids.worker_id
    ORDER BY x.snapshot_at DESC LIMIT 1
) AS s
WHERE ids.worker_id IS NOT NULL
  AND s.lifecycle <> 'STOPPED'
  AND s.snapshot_at < statement_timestamp() - %(offline_after_s)s::integer * INTERVAL '1 second'
ORDER BY s.snapshot_at DESC, s.worker_id;

-- name: dashboard_snapshot_age_buckets
-- Snapshots and distinct workers per age bucket, all five buckets in order, zero-filled (a boundary falls into the older bucket).
-- Index: idx_horsies_worker_states_worker_snapshot, index only (it counts every snapshot, bounded by worker_state_retention_hours).
-- Each snapshot is put in its bucket once and counted per (bucket, worker), then per bucket: joining every snapshot to every bucket and counting distinct workers sorted all of them on disk (230 ms for a day of 10 workers).
WITH buckets (ord, label) AS (
    VALUES (1, '< 1 hour'), (2, '1-24 hours'), (3, '1-7 days'), (4, '7-30 days'), (5, '> 30 days')
), per_worker AS (
    SELECT CASE WHEN a.age < INTERVAL '1 hour' THEN 1
                WHEN a.age < INTERVAL '24 hours' THEN 2
                WHEN a.age < INTERVAL '7 days' THEN 3
                WHEN a.age < INTERVAL '30 days' THEN 4
                ELSE 5 END AS ord,
           a.worker_id, count(*) AS n
    FROM (SELECT s.worker_id, statement_timestamp() - s.snapshot_at AS age
          FROM horsies_worker_states AS s) AS a
    GROUP BY 1, a.worker_id
)
SELECT b.label, COALESCE(sum(p.n), 0)::bigint AS snapshot_count,
       count(p.worker_id) AS unique_workers
FROM buckets AS b
LEFT JOIN per_worker AS p ON p.ord = b.ord
GROUP BY b.ord, b.label
ORDER BY b.ord;

-- name: dashboard_task_breakdown_list
-- Tasks grouped by claimed_by_worker_id after the status and retried filters, with up to n ids per group; the grand total last.
-- Index: in-flight statuses idx_horsies_tasks_claimable / idx_horsies_tasks_active; terminal statuses scan the matching rows.
WITH f AS (
    SELECT t.id, t.claimed_by_worker_id AS w, t.status, t.retry_count, t.enqueued_at,
           row_number() OVER (PARTITION BY t.claimed_by_worker_id
                              ORDER BY t.enqueued_at, t.id) AS rn
    FROM horsies_tasks AS t
    WHERE (cardinality(%(statuses)s::text[]) = 0 OR t.status = ANY(%(statuses)s::text[]))
      AND (NOT %(retried_only)s::boolean OR t.retry_count > 0)
)
SELECT GROUPING(w) = 1 AS is_total, w, count(*) AS total,
       count(*) FILTER (WHERE status = 'PENDING') AS pending,
       count(*) FILTER (WHERE status = 'CLAIMED') AS claimed,
       count(*) FILTER (WHERE status = 'RUNNING') AS running,
       count(*) FILTER (WHERE status = 'COMPLETED') AS completed,
       count(*) FILTER (WHERE status = 'FAILED') AS failed,
       count(*) FILTER (WHERE status = 'CANCELLED') AS cancelled,
       count(*) FILTER (WHERE status = 'EXPIRED') AS expired,
       count(*) FILTER (WHERE retry_count > 0) AS retried,
       COALESCE(array_agg(id::text ORDER BY enqueued_at, id)
                FILTER (WHERE rn <= %(ids_per_worker)s::integer), '{}') AS task_ids,
       COALESCE(array_agg(retry_count ORDER BY enqueued_at, id)
                FILTER (WHERE rn <= %(ids_per_worker)s::integer), '{}') AS retry_counts
FROM f
GROUP BY GROUPING SETS ((w), ())
ORDER BY GROUPING(w), w NULLS LAST;

-- name: dashboard_task_facets_list
-- Top task names, queues and error codes with counts under the status/worker/retried filters.
-- Index: in-flight statuses idx_horsies_tasks_claimable / idx_horsies_tasks_active; a worker id idx_horsies_tasks_active.
WITH f AS MATERIALIZED (
    SELECT t.task_name::text AS task_name, t.queue_name::text AS queue_name, t.error_code
    FROM horsies_tasks AS t
    WHERE (cardinality(%(statuses)s::text[]) = 0 OR t.status = ANY(%(statuses)s::text[]))
      AND (%(worker_id)s::text IS NULL OR t.claimed_by_worker_id = %(worker_id)s::text)
      AND (NOT %(unassigned)s::boolean OR t.claimed_by_worker_id IS NULL)
      AND (NOT %(retried_only)s::boolean OR t.retry_count > 0)
)
(SELECT 'task_names' AS facet, task_name AS value, count(*) AS n FROM f
 GROUP BY task_name ORDER BY n DESC, value LIMIT 30)
UNION ALL
(SELECT 'queues', queue_name, count(*) AS n FROM f
 GROUP BY queue_name ORDER BY n DESC, queue_name LIMIT 30)
UNION ALL
(SELECT 'error_codes', error_code, count(*) AS n FROM f WHERE error_code IS NOT NULL
 GROUP BY error_code ORDER BY n DESC, error_code LIMIT 20);

-- name: dashboard_task_list
-- Tasks matching every filter field and changed within recent_s seconds (any time when NULL), most recently changed first.
-- Index: in-flight status filters idx_horsies_tasks_claimable / idx_horsies_tasks_active; recent_s idx_horsies_tasks_updated_brin (the caller asks the last hour first, then the last day, and all rows only when those give fewer than the limit); otherwise a top-N sort of the matching rows.
SELECT t.id::text, t.task_name::text, t.queue_name::text, t.status, t.error_code,
       t.retry_count, t.max_retries, t.claimed_by_worker_id, t.enqueued_at, t.started_at,
       t.completed_at, t.failed_at, t.updated_at
FROM horsies_tasks AS t
WHERE (cardinality(%(statuses)s::text[]) = 0 OR t.status = ANY(%(statuses)s::text[]))
  AND (%(worker_id)s::text IS NULL OR t.claimed_by_worker_id = %(worker_id)s::text)
  AND (NOT %(unassigned)s::boolean OR t.claimed_by_worker_id IS NULL)
  AND (NOT %(retried_only)s::boolean OR t.retry_count > 0)
  AND (cardinality(%(task_names)s::text[]) = 0 OR t.task_name = ANY(%(task_names)s::text[]))
  AND (cardinality(%(queues)s::text[]) = 0 OR t.queue_name = ANY(%(queues)s::text[]))
  AND (cardinality(%(error_codes)s::text[]) = 0 OR t.error_code = ANY(%(error_codes)s::text[]))
  AND (%(text)s::text IS NULL
       OR strpos(t.id::text, lower(%(text)s::text)) > 0
       OR strpos(lower(t.task_name), lower(%(text)s::text)) > 0)
  AND t.updated_at >= COALESCE(statement_timestamp() - %(recent_s)s::integer * INTERVAL '1 second',
                               '-infinity')
ORDER BY t.updated_at DESC, t.id
LIMIT %(limit)s::integer;

-- name: dashboard_task_detail_get
-- Every column of one task; the first 21 are task_info_get's, for the attempts built from the row.
-- Index: horsies_tasks_pkey.
SELECT id::text, task_name, status, queue_name, priority, retry_count, max_retries,
       next_retry_at, sent_at, enqueued_at, claimed_at, started_at, completed_at,
       failed_at, worker_hostname, worker_pid, worker_process_name, error_code,
       result, failed_reason, claimed_by_worker_id,
       created_at, updated_at, claimed, enqueue_sha, claim_expires_at, good_until,
       args, kwargs, task_options, run_seq
FROM horsies_tasks
WHERE id = %(id)s::uuid;

-- name: dashboard_task_workflow_node_get
-- The workflow node a task runs for, with its workflow's name and status; no row for a plain task.
-- Index: idx_horsies_workflow_tasks_task_id, then horsies_workflows_pkey.
SELECT wt.workflow_id::text, w.name::text, w.status, wt.task_index, wt.node_id::text
FROM horsies_workflow_tasks AS wt
JOIN horsies_workflows AS w ON w.id = wt.workflow_id
WHERE wt.task_id = %(id)s::uuid
LIMIT 1;

-- name: dashboard_workflow_summary
-- Workflows (all depths) per status.
-- Index: idx_horsies_workflows_status, index only.
SELECT count(*) FILTER (WHERE status = 'PENDING') AS pending,
       count(*) FILTER (WHERE status = 'RUNNING') AS running,
       count(*) FILTER (WHERE status = 'COMPLETED') AS completed,
       count(*) FILTER (WHERE status = 'FAILED') AS failed,
       count(*) FILTER (WHERE status = 'PAUSED') AS paused,
       count(*) FILTER (WHERE status = 'CANCELLED') AS cancelled
FROM horsies_workflows;

-- name: dashboard_workflow_list
-- Workflows with the given statuses (all when empty), newest created_at first, with their node counts.
-- Index: a top-N sort of the matching workflows (idx_horsies_workflows_status for a status filter); nodes uq_horsies_workflow_task_index per listed workflow.
SELECT w.id::text, w.name::text, w.status, w.on_error::text, w.depth,
       w.parent_workflow_id::text, w.sent_at, w.created_at, w.started_at, w.completed_at,
       w.updated_at, n.total, n.completed, n.failed, n.running, n.pending, n.enqueued, n.skipped
FROM (
    SELECT * FROM horsies_workflows AS x
    WHERE cardinality(%(statuses)s::text[]) = 0 OR x.status = ANY(%(statuses)s::text[])
    ORDER BY x.created_at DESC, x.id
    LIMIT %(limit)s::integer
) AS w
CROSS JOIN LATERAL (
    SELECT count(*) AS total,
           count(*) FILTER (WHERE t.status = 'COMPLETED') AS completed,
           count(*) FILTER (WHERE t.status = 'FAILED') AS failed,
           count(*) FILTER (WHERE t.status = 'RUNNING') AS running,
           count(*) FILTER (WHERE t.status IN ('PENDING', 'READY')) AS pending,
           count(*) FILTER (WHERE t.status = 'ENQUEUED') AS enqueued,
           count(*) FILTER (WHERE t.status = 'SKIPPED') AS skipped
    FROM horsies_workflow_tasks AS t WHERE t.workflow_id = w.id
) AS n
ORDER BY w.created_at DESC, w.id;

-- name: dashboard_workflow_detail_get
-- One workflow's columns (the first 18 as dashboard_workflow_list's), with its node counts.
-- Index: horsies_workflows_pkey; nodes uq_horsies_workflow_task_index.
SELECT w.id::text, w.name::text, w.status, w.on_error::text, w.depth,
       w.parent_workflow_id::text, w.sent_at, w.created_at, w.started_at, w.completed_at,
       w.updated_at, n.total, n.completed, n.failed, n.running, n.pending, n.enqueued, n.skipped,
       w.output_task_index, w.success_policy, w.definition_key::text,
       w.root_workflow_id::text, w.result, w.error, p.name::text
FROM horsies_workflows AS w
LEFT JOIN horsies_workflows AS p ON p.id = w.parent_workflow_id
CROSS JOIN LATERAL (
    SELECT count(*) AS total,
           count(*) FILTER (WHERE t.status = 'COMPLETED') AS completed,
           count(*) FILTER (WHERE t.status = 'FAILED') AS failed,
           count(*) FILTER (WHERE t.status = 'RUNNING') AS running,
           count(*) FILTER (WHERE t.status IN ('PENDING', 'READY')) AS pending,
           count(*) FILTER (WHERE t.status = 'ENQUEUED') AS enqueued,
           count(*) FILTER (WHERE t.status = 'SKIPPED') AS skipped
    FROM horsies_workflow_tasks AS t WHERE t.workflow_id = w.id
) AS n
WHERE w.id = %(id)s::uuid;

-- name: dashboard_workflow_nodes_list
-- Every node of one workflow by task_index, with its subworkflow's id and name when it is one.
-- Index: uq_horsies_workflow_task_index.
SELECT t.task_index, t.node_id::text, t.task_name::text, t.queue_name::text, t.priority,
       t.status, t.dependencies, t.args_from, t.workflow_ctx_from, t.allow_failed_deps,
       t.join_type::text, t.min_success, t.task_options, t.task_id::text, t.is_subworkflow,
       t.sub_workflow_id::text, t.sub_workflow_name::text, t.started_at, t.completed_at,
       t.result, t.error
FROM horsies_workflow_tasks AS t
WHERE t.workflow_id = %(id)s::uuid
ORDER BY t.task_index;
