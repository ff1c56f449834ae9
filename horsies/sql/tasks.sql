-- Task queries: the producer side (insert, read) and the worker's claim,
-- confirm, finalize and release statements. Parameters use psycopg's
-- %(name)s style. Every status change names the status it expects
-- (the compare-and-set rule of the lifecycle chapter).

-- name: task_insert
-- T1: insert one PENDING row, idempotent on the id; returns the id when inserted.
INSERT INTO horsies_tasks (
    id, task_name, queue_name, priority, args, kwargs, status,
    sent_at, enqueued_at, good_until, task_options, max_retries, enqueue_sha
) VALUES (
    %(id)s, %(task_name)s, %(queue_name)s, %(priority)s, %(args)s, %(kwargs)s, 'PENDING',
    %(sent_at)s,
    statement_timestamp() + %(delay_seconds)s * INTERVAL '1 second',
    %(good_until)s, %(task_options)s, %(max_retries)s, %(enqueue_sha)s
)
ON CONFLICT (id) DO NOTHING
RETURNING id;

-- name: task_sha_get
-- Stored fingerprint of one task, to tell a replayed send from a different one.
SELECT enqueue_sha FROM horsies_tasks WHERE id = %(id)s;

-- name: task_result_get
-- What a result waiter needs: the status and the stored result.
SELECT status, result FROM horsies_tasks WHERE id = %(id)s;

-- name: task_info_get
-- One task's metadata for TaskHandle.info().
SELECT id::text, task_name, status, queue_name, priority, retry_count, max_retries,
       next_retry_at, sent_at, enqueued_at, claimed_at, started_at, completed_at,
       failed_at, worker_hostname, worker_pid, worker_process_name, error_code,
       result, failed_reason
FROM horsies_tasks
WHERE id = %(id)s;

-- name: task_attempts_get
-- Finished attempts of one task, newest first.
SELECT task_id::text, attempt, outcome, will_retry, started_at, finished_at, error_code,
       error_message, failed_reason, worker_id, worker_hostname, worker_pid,
       worker_process_name
FROM horsies_task_attempts
WHERE task_id = %(id)s
ORDER BY attempt DESC;

-- name: claim_lock
-- Serializes claim passes of every worker on this database.
SELECT pg_advisory_xact_lock(%(key)s);

-- name: task_lease_sweep_many
-- T6: expired claims of the served queues go back to PENDING, keeping their place.
UPDATE horsies_tasks
SET status = 'PENDING', claimed = FALSE, claimed_at = NULL,
    claimed_by_worker_id = NULL, claim_expires_at = NULL,
    updated_at = statement_timestamp()
WHERE status = 'CLAIMED'
  AND claim_expires_at < statement_timestamp()
  AND queue_name = ANY(%(queues)s);

-- name: task_inflight_counts
-- Running and live-claimed rows per queue, for the cluster and queue caps.
SELECT queue_name,
       count(*) FILTER (WHERE status = 'RUNNING') AS running,
       count(*) FILTER (WHERE status = 'CLAIMED'
                          AND (claim_expires_at IS NULL
                               OR claim_expires_at > statement_timestamp())) AS claimed
FROM horsies_tasks
WHERE status IN ('CLAIMED', 'RUNNING')
GROUP BY queue_name;

-- name: task_claim_many
-- T2: claim up to %(limit)s claimable rows of one queue in claim order.
WITH picked AS (
    SELECT id
    FROM horsies_tasks
    WHERE status = 'PENDING'
      AND queue_name = %(queue)s
      AND enqueued_at <= statement_timestamp()
      AND (next_retry_at IS NULL OR next_retry_at <= statement_timestamp())
      AND (good_until IS NULL OR good_until > statement_timestamp())
    ORDER BY priority, enqueued_at, id
    LIMIT %(limit)s
    FOR UPDATE SKIP LOCKED
)
UPDATE horsies_tasks AS t
SET status = 'CLAIMED', claimed = TRUE,
    claimed_at = statement_timestamp(),
    claimed_by_worker_id = %(worker_id)s,
    claim_expires_at = statement_timestamp() + %(lease_ms)s * INTERVAL '1 millisecond',
    updated_at = statement_timestamp()
FROM picked
WHERE t.id = picked.id
RETURNING t.id::text, t.task_name, t.queue_name, t.priority, t.enqueued_at,
          t.args, t.kwargs;

-- name: task_claim_start_many
-- T2 and T4 in one statement for idle children when no cap needs counting: claim
-- up to one task per child, in claim order, and start it on that child.
WITH picked AS (
    SELECT p.id, row_number() OVER (ORDER BY p.priority, p.enqueued_at, p.id) AS slot
    FROM (
        SELECT id, priority, enqueued_at
        FROM horsies_tasks
        WHERE status = 'PENDING'
          AND queue_name = %(queue)s
          AND enqueued_at <= statement_timestamp()
          AND (next_retry_at IS NULL OR next_retry_at <= statement_timestamp())
          AND (good_until IS NULL OR good_until > statement_timestamp())
        ORDER BY priority, enqueued_at, id
        LIMIT %(limit)s
        FOR UPDATE SKIP LOCKED
    ) AS p
), child AS (
    SELECT * FROM unnest(%(pids)s::int[]) WITH ORDINALITY AS c(pid, slot)
)
UPDATE horsies_tasks AS t
SET status = 'RUNNING', claimed = FALSE, claimed_at = statement_timestamp(),
    claimed_by_worker_id = %(worker_id)s, claim_expires_at = NULL,
    started_at = statement_timestamp(),
    worker_pid = child.pid, worker_hostname = %(hostname)s,
    worker_process_name = 'worker-' || child.pid,
    updated_at = statement_timestamp()
FROM picked JOIN child USING (slot)
WHERE t.id = picked.id
RETURNING child.pid, t.id::text, t.task_name, t.args, t.kwargs;

-- name: task_started_orphans
-- After a start whose commit went unacknowledged: own RUNNING rows on the given
-- children that were never handed to them.
SELECT t.worker_pid, t.id::text, t.task_name, t.args, t.kwargs
FROM horsies_tasks AS t
WHERE t.status = 'RUNNING'
  AND t.claimed_by_worker_id = %(worker_id)s
  AND t.worker_pid = ANY(%(pids)s::int[])
  AND NOT (t.id = ANY(%(known)s::uuid[]));

-- name: task_confirm_many
-- T4: ownership confirmation for tasks handed to idle children, one statement per batch.
WITH pick(id, pid) AS (
    SELECT * FROM unnest(%(ids)s::uuid[], %(pids)s::int[])
)
UPDATE horsies_tasks AS t
SET status = 'RUNNING', claimed = FALSE, claim_expires_at = NULL,
    started_at = statement_timestamp(),
    worker_pid = pick.pid, worker_hostname = %(hostname)s,
    worker_process_name = 'worker-' || pick.pid,
    updated_at = statement_timestamp()
FROM pick
WHERE t.id = pick.id
  AND t.status = 'CLAIMED'
  AND t.claimed_by_worker_id = %(worker_id)s
  AND (t.claim_expires_at IS NULL OR t.claim_expires_at > statement_timestamp())
  AND (t.good_until IS NULL OR t.good_until > statement_timestamp())
RETURNING t.id::text;

-- name: task_expire_claimed_many
-- T8: owned claims whose deadline passed before they could start.
UPDATE horsies_tasks
SET status = 'EXPIRED', claimed = FALSE, claim_expires_at = NULL,
    failed_at = statement_timestamp(), updated_at = statement_timestamp(),
    error_code = 'TASK_EXPIRED',
    result = '{"__task_result__":true,"ok":null,"err":{"__task_error__":true,'
             || '"error_code":{"__builtin_task_code__":"TASK_EXPIRED"},'
             || '"message":"Task expired: good_until deadline passed before execution started",'
             || '"data":{"task_id":"' || id::text || '","worker_id":"' || %(worker_id)s || '"}}}'
WHERE id = ANY(%(ids)s::uuid[])
  AND status = 'CLAIMED'
  AND claimed_by_worker_id = %(worker_id)s
  AND good_until IS NOT NULL AND good_until <= statement_timestamp()
RETURNING id::text;

-- name: task_release_many
-- T5: give owned claims back (shutdown, dispatch failure); they keep their FIFO place.
UPDATE horsies_tasks
SET status = 'PENDING', claimed = FALSE, claimed_at = NULL,
    claimed_by_worker_id = NULL, claim_expires_at = NULL,
    updated_at = statement_timestamp()
WHERE id = ANY(%(ids)s::uuid[])
  AND status = 'CLAIMED'
  AND claimed_by_worker_id = %(worker_id)s;

-- name: task_finalize_lock_many
-- Phase 1 of finalization: lock the batch's RUNNING rows in id order.
SELECT t.id::text, t.queue_name, t.retry_count, t.max_retries, t.task_options,
       t.good_until, t.started_at, t.claimed_by_worker_id,
       t.worker_hostname, t.worker_pid, t.worker_process_name,
       clock_timestamp() AS db_now
FROM horsies_tasks AS t
WHERE t.id = ANY(%(ids)s::uuid[]) AND t.status = 'RUNNING'
ORDER BY t.id
FOR UPDATE;

-- name: task_complete_many
-- T11: successes of one batch.
UPDATE horsies_tasks AS t
SET status = 'COMPLETED', completed_at = statement_timestamp(),
    result = r.result, error_code = NULL, updated_at = statement_timestamp()
FROM unnest(%(ids)s::uuid[], %(results)s::text[]) AS r(id, result)
WHERE t.id = r.id AND t.status = 'RUNNING';

-- name: task_complete_batch
-- T11 for a batch of successes in one statement: lock in id order, complete, write
-- the attempt rows and the capacity notices; returns the ids it completed.
WITH r AS (
    SELECT * FROM unnest(%(ids)s::uuid[], %(results)s::text[]) AS r(id, result)
), locked AS (
    SELECT t.id FROM horsies_tasks AS t
    WHERE t.id = ANY(%(ids)s::uuid[]) AND t.status = 'RUNNING'
    ORDER BY t.id
    FOR UPDATE
), done AS (
    UPDATE horsies_tasks AS t
    SET status = 'COMPLETED', completed_at = statement_timestamp(),
        result = r.result, error_code = NULL, updated_at = statement_timestamp()
    FROM r, locked
    WHERE t.id = r.id AND t.id = locked.id
    RETURNING t.id, t.queue_name, t.retry_count, t.started_at, t.claimed_by_worker_id,
              t.worker_hostname, t.worker_pid, t.worker_process_name
), attempts AS (
    INSERT INTO horsies_task_attempts (
        task_id, attempt, outcome, will_retry, started_at, finished_at, worker_id,
        worker_hostname, worker_pid, worker_process_name
    )
    SELECT id, retry_count + 1, 'COMPLETED', FALSE, started_at, statement_timestamp(),
           claimed_by_worker_id, worker_hostname, worker_pid, worker_process_name
    FROM done
    ON CONFLICT (task_id, attempt) DO UPDATE
    SET outcome = EXCLUDED.outcome, will_retry = EXCLUDED.will_retry,
        started_at = EXCLUDED.started_at, finished_at = EXCLUDED.finished_at,
        error_code = NULL, error_message = NULL, failed_reason = NULL,
        worker_id = EXCLUDED.worker_id, worker_hostname = EXCLUDED.worker_hostname,
        worker_pid = EXCLUDED.worker_pid, worker_process_name = EXCLUDED.worker_process_name
), notices AS (
    SELECT count(pg_notify(n.channel, n.payload)) AS sent
    FROM (
        SELECT 'task_new' AS channel, 'capacity:' || min(id::text) AS payload FROM done
        UNION ALL
        SELECT 'task_queue_' || queue_name, 'capacity:' || min(id::text)
        FROM done GROUP BY queue_name
    ) AS n
    WHERE n.payload IS NOT NULL
)
SELECT done.id::text FROM done, notices;

-- name: task_fail_many
-- T12/T13: failures of one batch that will not be retried.
UPDATE horsies_tasks AS t
SET status = 'FAILED', failed_at = statement_timestamp(),
    result = r.result, error_code = r.error_code, failed_reason = r.failed_reason,
    updated_at = statement_timestamp()
FROM unnest(%(ids)s::uuid[], %(results)s::text[], %(error_codes)s::text[],
            %(failed_reasons)s::text[]) AS r(id, result, error_code, failed_reason)
WHERE t.id = r.id AND t.status = 'RUNNING';

-- name: task_retry_many
-- T14: failures of one batch that go back to PENDING at their next_retry_at.
UPDATE horsies_tasks AS t
SET status = 'PENDING', retry_count = t.retry_count + 1,
    next_retry_at = r.next_retry_at, enqueued_at = r.next_retry_at,
    error_code = NULL, claimed = FALSE, claimed_at = NULL,
    claimed_by_worker_id = NULL, claim_expires_at = NULL,
    updated_at = statement_timestamp()
FROM unnest(%(ids)s::uuid[], %(next_retry_ats)s::timestamptz[]) AS r(id, next_retry_at)
WHERE t.id = r.id AND t.status = 'RUNNING'
  AND (t.good_until IS NULL OR r.next_retry_at < t.good_until);

-- name: task_attempt_upsert_many
-- One attempt row per finished attempt, written with the transition that ends it.
INSERT INTO horsies_task_attempts (
    task_id, attempt, outcome, will_retry, started_at, finished_at, error_code,
    error_message, failed_reason, worker_id, worker_hostname, worker_pid, worker_process_name
)
SELECT a.task_id, a.attempt, a.outcome, a.will_retry, a.started_at, statement_timestamp(),
       a.error_code, a.error_message, a.failed_reason, a.worker_id, a.worker_hostname,
       a.worker_pid, a.worker_process_name
FROM unnest(%(task_ids)s::uuid[], %(attempts)s::int[], %(outcomes)s::text[],
            %(will_retries)s::bool[], %(started_ats)s::timestamptz[],
            %(error_codes)s::text[], %(error_messages)s::text[], %(failed_reasons)s::text[],
            %(worker_ids)s::text[], %(worker_hostnames)s::text[], %(worker_pids)s::int[],
            %(worker_process_names)s::text[])
     AS a(task_id, attempt, outcome, will_retry, started_at, error_code, error_message,
          failed_reason, worker_id, worker_hostname, worker_pid, worker_process_name)
ON CONFLICT (task_id, attempt) DO UPDATE
SET outcome = EXCLUDED.outcome, will_retry = EXCLUDED.will_retry,
    started_at = EXCLUDED.started_at, finished_at = EXCLUDED.finished_at,
    error_code = EXCLUDED.error_code, error_message = EXCLUDED.error_message,
    failed_reason = EXCLUDED.failed_reason, worker_id = EXCLUDED.worker_id,
    worker_hostname = EXCLUDED.worker_hostname, worker_pid = EXCLUDED.worker_pid,
    worker_process_name = EXCLUDED.worker_process_name;

-- name: task_crash_lock
-- Crash path: lock a RUNNING task of this worker run by a child that died.
SELECT t.id::text, t.queue_name, t.retry_count, t.max_retries, t.task_options,
       t.good_until, t.started_at, t.claimed_by_worker_id,
       t.worker_hostname, t.worker_pid, t.worker_process_name,
       clock_timestamp() AS db_now
FROM horsies_tasks AS t
WHERE t.id = %(id)s AND t.status = 'RUNNING'
  AND t.claimed_by_worker_id = %(worker_id)s AND t.worker_pid = %(pid)s
FOR UPDATE;

-- name: channel_listen
-- Subscribe to one channel; {channel} is filled in as a quoted identifier.
LISTEN {channel};

-- name: queue_notify
-- A plain wake-up on one channel (capacity freed, retry due).
SELECT pg_notify(%(channel)s, %(payload)s);

-- name: worker_state_insert
-- One worker-state snapshot.
INSERT INTO horsies_worker_states (
    worker_id, hostname, pid, processes, max_claim_batch, max_claim_per_worker,
    cluster_wide_cap, queues, queue_priorities, queue_max_concurrency, recovery_config,
    tasks_running, tasks_claimed, memory_usage_mb, memory_percent, cpu_percent,
    worker_started_at, lifecycle, horsies_version
) VALUES (
    %(worker_id)s, %(hostname)s, %(pid)s, %(processes)s, %(max_claim_batch)s,
    %(max_claim_per_worker)s, %(cluster_wide_cap)s, %(queues)s, %(queue_priorities)s,
    %(queue_max_concurrency)s, %(recovery_config)s, %(tasks_running)s, %(tasks_claimed)s,
    %(memory_usage_mb)s, %(memory_percent)s, %(cpu_percent)s, %(worker_started_at)s,
    %(lifecycle)s, %(horsies_version)s
);

-- name: task_copy_many
-- T1 in bulk: one COPY of a whole send_many batch; enqueued_at defaults to now().
COPY horsies_tasks (
    id, task_name, queue_name, priority, args, kwargs, status, sent_at,
    good_until, task_options, max_retries, enqueue_sha
) FROM STDIN;

-- name: task_sha_get_many
-- Stored fingerprints of a batch, to recognise a resend whose first try committed.
SELECT id::text, enqueue_sha FROM horsies_tasks WHERE id = ANY(%(ids)s::uuid[]);

-- name: demo_active_workers
-- Whether another worker wrote a live snapshot in the last two minutes.
SELECT EXISTS (
    SELECT 1 FROM (
        SELECT DISTINCT ON (worker_id) worker_id, lifecycle, snapshot_at
        FROM horsies_worker_states
        WHERE snapshot_at > now() - INTERVAL '2 minutes'
        ORDER BY worker_id, snapshot_at DESC
    ) latest
    WHERE lifecycle <> 'STOPPED'
);

-- name: demo_task_times
-- Status and timing of the demo's tasks.
SELECT status, enqueued_at, COALESCE(completed_at, failed_at)
FROM horsies_tasks WHERE id = ANY(%(ids)s::uuid[]);

-- name: demo_unfinished_count
-- How many of the demo's tasks are not terminal yet.
SELECT count(*) FROM horsies_tasks
WHERE id BETWEEN %(first)s::uuid AND %(last)s::uuid
  AND status NOT IN ('COMPLETED', 'FAILED', 'CANCELLED', 'EXPIRED');

-- name: demo_delete_tasks
-- Remove the demo's rows (attempts go with them).
DELETE FROM horsies_tasks WHERE id = ANY(%(ids)s::uuid[]);

-- name: heartbeat_claimer_insert
-- Claimer heartbeat: one row per task this worker holds CLAIMED (feeds the stale-claim check).
INSERT INTO horsies_heartbeats (task_id, sender_id, role, hostname, pid)
SELECT id, %(worker_id)s, 'claimer', %(hostname)s, %(pid)s
FROM horsies_tasks
WHERE status = 'CLAIMED' AND claimed_by_worker_id = %(worker_id)s;

-- name: task_lease_renew
-- T3: renew the leases of this worker's claims that are not older than max_claim_renew_age_ms.
UPDATE horsies_tasks
SET claim_expires_at = statement_timestamp() + %(lease_ms)s * INTERVAL '1 millisecond',
    updated_at = statement_timestamp()
WHERE status = 'CLAIMED'
  AND claimed_by_worker_id = %(worker_id)s
  AND claimed_at >= statement_timestamp() - %(max_claim_renew_age_ms)s * INTERVAL '1 millisecond';

-- name: heartbeat_runner_insert_many
-- Runner heartbeats of every child that reported during the last interval, one statement.
INSERT INTO horsies_heartbeats (task_id, sender_id, role, hostname, pid)
SELECT b.task_id, b.sender_id, 'runner', %(hostname)s, b.pid
FROM unnest(%(task_ids)s::uuid[], %(sender_ids)s::text[], %(pids)s::int[])
     AS b(task_id, sender_id, pid);

-- name: task_requeue_stale_claimed
-- T7: stale claims (no claimer heartbeat since the threshold) go back to PENDING.
WITH stale AS (
    SELECT t.id
    FROM horsies_tasks AS t
    LEFT JOIN LATERAL (
        SELECT max(h.sent_at) AS last_beat
        FROM horsies_heartbeats AS h
        WHERE h.task_id = t.id AND h.role = 'claimer'
    ) AS hb ON TRUE
    WHERE t.status = 'CLAIMED'
      AND GREATEST(hb.last_beat, t.claimed_at)
          < statement_timestamp() - %(threshold_ms)s * INTERVAL '1 millisecond'
    FOR UPDATE OF t SKIP LOCKED
)
UPDATE horsies_tasks AS t
SET status = 'PENDING', claimed = FALSE, claimed_at = NULL,
    claimed_by_worker_id = NULL, claim_expires_at = NULL,
    updated_at = statement_timestamp()
FROM stale
WHERE t.id = stale.id AND t.status = 'CLAIMED';

-- name: task_stale_running_scan
-- Candidates for the stale-run crash path: RUNNING rows without a recent runner heartbeat.
SELECT t.id::text
FROM horsies_tasks AS t
LEFT JOIN LATERAL (
    SELECT max(h.sent_at) AS last_beat
    FROM horsies_heartbeats AS h
    WHERE h.task_id = t.id AND h.role = 'runner'
) AS hb ON TRUE
WHERE t.status = 'RUNNING'
  AND GREATEST(hb.last_beat, t.started_at)
      < statement_timestamp() - %(threshold_ms)s * INTERVAL '1 millisecond'
ORDER BY t.id
FOR UPDATE OF t SKIP LOCKED;

-- name: task_stale_running_lock
-- Crash path of the reaper: lock one RUNNING row that is still stale under the lock.
SELECT t.id::text, t.queue_name, t.retry_count, t.max_retries, t.task_options,
       t.good_until, t.started_at, t.claimed_by_worker_id,
       t.worker_hostname, t.worker_pid, t.worker_process_name,
       clock_timestamp() AS db_now
FROM horsies_tasks AS t
WHERE t.id = %(id)s AND t.status = 'RUNNING'
  AND GREATEST(
        (SELECT max(h.sent_at) FROM horsies_heartbeats AS h
         WHERE h.task_id = t.id AND h.role = 'runner'),
        t.started_at)
      < clock_timestamp() - %(threshold_ms)s * INTERVAL '1 millisecond'
FOR UPDATE OF t SKIP LOCKED;

-- name: task_expire_pending
-- T9: PENDING rows whose good_until passed become EXPIRED with the TASK_EXPIRED result.
UPDATE horsies_tasks
SET status = 'EXPIRED', failed_at = statement_timestamp(), updated_at = statement_timestamp(),
    error_code = 'TASK_EXPIRED',
    result = '{"__task_result__":true,"ok":null,"err":{"__task_error__":true,'
             || '"error_code":{"__builtin_task_code__":"TASK_EXPIRED"},'
             || '"message":"Task expired: good_until deadline passed before execution started",'
             || '"data":null}}'
WHERE status = 'PENDING'
  AND good_until IS NOT NULL AND good_until <= statement_timestamp();

-- name: retention_try_lock
-- One worker prunes at a time: try the retention advisory lock (session level).
SELECT pg_try_advisory_lock(%(key)s);

-- name: retention_unlock
-- Release the retention advisory lock.
SELECT pg_advisory_unlock(%(key)s);

-- name: retention_heartbeats_delete
-- Retention: one chunk of heartbeat rows older than the threshold.
DELETE FROM horsies_heartbeats
WHERE id IN (
    SELECT id FROM horsies_heartbeats
    WHERE sent_at < statement_timestamp() - %(hours)s * INTERVAL '1 hour'
    LIMIT %(chunk)s
);

-- name: retention_worker_states_delete
-- Retention: one chunk of worker-state snapshots older than the threshold.
DELETE FROM horsies_worker_states
WHERE id IN (
    SELECT id FROM horsies_worker_states
    WHERE snapshot_at < statement_timestamp() - %(hours)s * INTERVAL '1 hour'
    LIMIT %(chunk)s
);

-- name: retention_workflow_tasks_delete
-- Retention: one chunk of nodes of terminal workflows older than the threshold.
DELETE FROM horsies_workflow_tasks
WHERE id IN (
    SELECT wt.id
    FROM horsies_workflow_tasks AS wt
    JOIN horsies_workflows AS w ON w.id = wt.workflow_id
    WHERE w.status IN ('COMPLETED', 'FAILED', 'CANCELLED')
      AND w.updated_at < statement_timestamp() - %(hours)s * INTERVAL '1 hour'
    LIMIT %(chunk)s
);

-- name: retention_workflows_delete
-- Retention: one chunk of terminal workflows older than the threshold.
DELETE FROM horsies_workflows
WHERE id IN (
    SELECT id FROM horsies_workflows
    WHERE status IN ('COMPLETED', 'FAILED', 'CANCELLED')
      AND updated_at < statement_timestamp() - %(hours)s * INTERVAL '1 hour'
    LIMIT %(chunk)s
);

-- name: retention_tasks_delete
-- Retention: one chunk of terminal tasks older than the threshold, unless a live workflow owns them.
DELETE FROM horsies_tasks
WHERE id IN (
    SELECT t.id FROM horsies_tasks AS t
    WHERE t.status IN ('COMPLETED', 'FAILED', 'CANCELLED', 'EXPIRED')
      AND t.updated_at < statement_timestamp() - %(hours)s * INTERVAL '1 hour'
      AND NOT EXISTS (
          SELECT 1 FROM horsies_workflow_tasks AS wt
          JOIN horsies_workflows AS w ON w.id = wt.workflow_id
          WHERE wt.task_id = t.id
            AND w.status NOT IN ('COMPLETED', 'FAILED', 'CANCELLED')
      )
    LIMIT %(chunk)s
);

-- name: retention_workflow_tables_exist
-- Whether the workflow tables exist yet (retention skips their categories otherwise).
SELECT to_regclass('horsies_workflows') IS NOT NULL
   AND to_regclass('horsies_workflow_tasks') IS NOT NULL;

-- name: retention_tasks_delete_standalone
-- Retention without workflow tables: one chunk of terminal tasks older than the threshold.
DELETE FROM horsies_tasks
WHERE id IN (
    SELECT id FROM horsies_tasks
    WHERE status IN ('COMPLETED', 'FAILED', 'CANCELLED', 'EXPIRED')
      AND updated_at < statement_timestamp() - %(hours)s * INTERVAL '1 hour'
    LIMIT %(chunk)s
);

-- name: task_reconfirm_many
-- T4 replayed after a confirmation whose commit went unacknowledged: own RUNNING rows never handed out.
WITH pick(id, pid) AS (
    SELECT * FROM unnest(%(ids)s::uuid[], %(pids)s::int[])
)
UPDATE horsies_tasks AS t
SET started_at = statement_timestamp(),
    worker_pid = pick.pid, worker_hostname = %(hostname)s,
    worker_process_name = 'worker-' || pick.pid,
    updated_at = statement_timestamp()
FROM pick
WHERE t.id = pick.id
  AND t.status = 'RUNNING'
  AND t.claimed_by_worker_id = %(worker_id)s
RETURNING t.id::text;

-- name: queue_notify_many
-- Several wake-ups in one round trip (capacity notices of a finalized batch).
SELECT pg_notify(n.channel, n.payload)
FROM unnest(%(channels)s::text[], %(payloads)s::text[]) AS n(channel, payload);

-- name: caller_transaction_begin
-- Any statement starts the implicit transaction of an idle non-autocommit connection.
SELECT NULL;

-- name: demo_left_count
-- How many of the demo's tasks are not terminal yet. Naming the live statuses
-- lets the status index skip finished rows, so the count gets cheaper as the
-- demo drains.
SELECT count(*) FROM horsies_tasks
WHERE status IN ('PENDING', 'CLAIMED', 'RUNNING')
  AND id BETWEEN %(first)s::uuid AND %(last)s::uuid;
