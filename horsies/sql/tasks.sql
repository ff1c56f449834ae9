-- Task queries of producers and readers: insert, read, notify. Parameters use
-- psycopg's %(name)s style. The worker's statements are in workers.sql.
--
-- Notifications come from these statements, not from triggers (runs.md §5):
-- a row that is claimable at once announces itself on its queue's channel,
-- one notification per statement and queue.

-- name: task_insert
-- T1: insert one PENDING row, idempotent on the id; returns the id when inserted and wakes the queue's workers unless delayed.
WITH inserted AS (
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
    RETURNING id, queue_name, enqueued_at <= statement_timestamp() AS claimable
)
SELECT id,
       CASE WHEN claimable THEN pg_notify('task_queue_' || queue_name, id::text) END
FROM inserted;

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
       result, failed_reason, claimed_by_worker_id
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

-- name: channel_listen
-- Subscribe to one channel; {channel} is filled in as a quoted identifier.
LISTEN {channel};

-- name: queue_notify
-- A plain wake-up on one channel (capacity freed, retry due).
SELECT pg_notify(%(channel)s, %(payload)s);

-- name: task_copy_many
-- T1 in bulk: one COPY of a whole send_many batch; enqueued_at defaults to now().
COPY horsies_tasks (
    id, task_name, queue_name, priority, args, kwargs, status, sent_at,
    good_until, task_options, max_retries, enqueue_sha
) FROM STDIN;

-- name: task_sha_get_many
-- Stored fingerprints of a batch, to recognise a resend whose first try committed.
SELECT id::text, enqueue_sha FROM horsies_tasks WHERE id = ANY(%(ids)s::uuid[]);

-- name: caller_transaction_begin
-- Any statement starts the implicit transaction of an idle non-autocommit connection.
SELECT NULL;
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

-- name: demo_delete_tasks
-- Remove the demo's rows (attempts go with them).
DELETE FROM horsies_tasks WHERE id = ANY(%(ids)s::uuid[]);

-- name: demo_left_count
-- How many of the demo's tasks are not terminal yet.
-- Naming the live statuses lets the partial indexes of unfinished rows serve
-- it, so the count gets cheaper as the demo drains.
SELECT count(*) FROM horsies_tasks
WHERE status IN ('PENDING', 'CLAIMED', 'RUNNING')
  AND id BETWEEN %(first)s::uuid AND %(last)s::uuid;
