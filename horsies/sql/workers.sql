-- The worker's statements: the cycle (runs.md §1-§2), claim passes where a cap
-- counts, liveness, recovery and retention. Parameters use psycopg's
-- %(name)s style. Every status change names the status it expects, and every
-- change a worker makes to a task it runs also names the worker and the child
-- (claimed_by_worker_id, worker_pid): a late result or a replayed statement
-- can never write over another attempt.
--
-- Notifications are sent by the statements themselves (runs.md §5): task_done
-- with the comma-separated ids of the rows that became terminal (at most 200
-- ids, 7,400 bytes, per notification), task_queue_<q> and task_new for rows
-- that became claimable again, horsies_task_status once per statement that
-- changed statuses.

-- name: worker_cycle
-- One cycle in one statement and one commit: endings (T11-T14), returns of unstarted tasks (T15), starts of runs (T2+T4) or confirmations (T4), child marks.
--
-- The worker runs it as a generic plan (planning it every time would cost
-- more than running it). The statuses the guards expect come as parameters
-- (%(running)s = 'RUNNING', %(claimed)s = 'CLAIMED') so that a generic plan
-- cannot use the partial indexes of in-flight rows to find the rows a cycle
-- names: their statistics lag far behind a fast drain, and a plan driven from
-- them rescans the parameters once per in-flight row. The rows are found by id.
WITH ok(id, pid, result, started) AS (
    -- Successes, the bulk of a cycle, arrive as delimited text: one string per
    -- column is split by the server, where a list parameter would be escaped
    -- element by element on the client. A result is JSON text, in which a raw
    -- U+001E cannot occur.
    SELECT * FROM unnest(string_to_array(%(ok_ids)s, ',')::uuid[],
                         string_to_array(%(ok_pids)s, ',')::int[],
                         string_to_array(%(ok_results)s, E'\x1e'),
                         string_to_array(%(ok_started)s, ',')::float8[])
), completed AS (
    UPDATE horsies_tasks AS t
    SET status = 'COMPLETED', completed_at = statement_timestamp(),
        started_at = COALESCE(to_timestamp(ok.started), t.started_at),
        result = ok.result, error_code = NULL, updated_at = statement_timestamp()
    FROM ok
    WHERE t.id = ok.id AND t.status = %(running)s
      AND t.claimed_by_worker_id = %(worker_id)s AND t.worker_pid = ok.pid
    RETURNING t.id
), bad(id, pid, result, code, message, reason, retry_s, started) AS (
    SELECT * FROM unnest(%(bad_ids)s::uuid[], %(bad_pids)s::int[], %(bad_results)s::text[],
                         %(bad_codes)s::text[], %(bad_messages)s::text[],
                         %(bad_reasons)s::text[], %(bad_retry_s)s::float8[],
                         %(bad_started)s::float8[])
), decided AS (
    -- The retry decision's last condition (lifecycle-and-schema.md §3.2): a
    -- retry must be due strictly before good_until, by the database's clock.
    SELECT bad.*, t.retry_count + 1 AS attempt,
           COALESCE(to_timestamp(bad.started), t.started_at) AS attempt_started,
           statement_timestamp() + bad.retry_s * INTERVAL '1 second' AS retry_at,
           bad.retry_s IS NOT NULL
               AND (t.good_until IS NULL
                    OR statement_timestamp() + bad.retry_s * INTERVAL '1 second' < t.good_until)
               AS retry
    FROM bad JOIN horsies_tasks AS t ON t.id = bad.id
    WHERE t.status = %(running)s AND t.claimed_by_worker_id = %(worker_id)s
      AND t.worker_pid = bad.pid
), failed AS (
    UPDATE horsies_tasks AS t
    SET status = CASE WHEN d.retry THEN 'PENDING' ELSE 'FAILED' END,
        retry_count = t.retry_count + d.retry::int,
        next_retry_at = CASE WHEN d.retry THEN d.retry_at ELSE t.next_retry_at END,
        enqueued_at = CASE WHEN d.retry THEN d.retry_at ELSE t.enqueued_at END,
        failed_at = CASE WHEN d.retry THEN t.failed_at ELSE statement_timestamp() END,
        result = CASE WHEN d.retry THEN t.result ELSE d.result END,
        error_code = CASE WHEN d.retry THEN NULL ELSE d.code END,
        failed_reason = CASE WHEN d.retry THEN t.failed_reason ELSE d.reason END,
        claimed_at = CASE WHEN d.retry THEN NULL ELSE t.claimed_at END,
        claimed_by_worker_id = CASE WHEN d.retry THEN NULL ELSE t.claimed_by_worker_id END,
        started_at = d.attempt_started, updated_at = statement_timestamp()
    FROM decided AS d
    WHERE t.id = d.id AND t.status = %(running)s
      AND t.claimed_by_worker_id = %(worker_id)s AND t.worker_pid = d.pid
    RETURNING t.id, t.queue_name, d.retry, d.retry_at, d.attempt, d.attempt_started, d.code,
              d.message, d.reason, t.worker_hostname, t.worker_pid, t.worker_process_name
), attempts AS (
    -- Attempts that ended in an error value, a crash or a retry (runs.md §4);
    -- a final success is the task row itself.
    INSERT INTO horsies_task_attempts (
        task_id, attempt, outcome, will_retry, started_at, finished_at, error_code,
        error_message, failed_reason, worker_id, worker_hostname, worker_pid,
        worker_process_name
    )
    SELECT f.id, f.attempt, CASE WHEN f.reason IS NULL THEN 'FAILED' ELSE 'WORKER_FAILURE' END,
           f.retry, f.attempt_started, statement_timestamp(), f.code, f.message, f.reason,
           %(worker_id)s, f.worker_hostname, f.worker_pid, f.worker_process_name
    FROM failed AS f
    ON CONFLICT (task_id, attempt) DO UPDATE
    SET outcome = EXCLUDED.outcome, will_retry = EXCLUDED.will_retry,
        started_at = EXCLUDED.started_at, finished_at = EXCLUDED.finished_at,
        error_code = EXCLUDED.error_code, error_message = EXCLUDED.error_message,
        failed_reason = EXCLUDED.failed_reason, worker_id = EXCLUDED.worker_id,
        worker_hostname = EXCLUDED.worker_hostname, worker_pid = EXCLUDED.worker_pid,
        worker_process_name = EXCLUDED.worker_process_name
), returned AS (
    -- T15: unstarted tasks of a run go back to PENDING with their FIFO place.
    UPDATE horsies_tasks AS t
    SET status = 'PENDING', claimed = FALSE, claimed_at = NULL, claimed_by_worker_id = NULL,
        claim_expires_at = NULL, run_seq = NULL, updated_at = statement_timestamp()
    FROM unnest(%(back_ids)s::uuid[], %(back_pids)s::int[]) AS b(id, pid)
    WHERE t.id = b.id AND t.status = %(running)s
      AND t.claimed_by_worker_id = %(worker_id)s AND t.worker_pid = b.pid
    RETURNING t.id, t.queue_name
), slot AS MATERIALIZED (
    -- Slot n is the child pids[n] at run position seqs[n]: read by subscript,
    -- which costs the same whatever the plan (a join on n need not). The
    -- arrays are parsed once, not once per row.
    SELECT string_to_array(%(slot_pids)s, ',')::int[] AS pids,
           string_to_array(%(slot_seqs)s, ',')::int[] AS seqs
), picked AS (
    -- Claim order: queues in their order, and within each the claim order of
    -- its index (the nested loop keeps both), so the statement's LIMIT stops
    -- pulling, and locking, once every slot has a row. {run_limit}, the most
    -- slots one cycle of this worker can have, is fixed when the worker starts:
    -- a generic plan with a parameter there sorts every pending row instead.
    SELECT p.id, row_number() OVER () AS n
    FROM (
        SELECT c.id
        FROM unnest(%(queues)s::text[]) WITH ORDINALITY AS q(name, n)
        CROSS JOIN LATERAL (
            SELECT c.id
            FROM horsies_tasks AS c
            WHERE c.status = 'PENDING'
              AND c.queue_name = q.name
              AND c.enqueued_at <= statement_timestamp()
              AND (c.next_retry_at IS NULL OR c.next_retry_at <= statement_timestamp())
              AND (c.good_until IS NULL OR c.good_until > statement_timestamp())
            ORDER BY c.priority, c.enqueued_at, c.id
            LIMIT {run_limit}
            FOR UPDATE SKIP LOCKED
        ) AS c
        LIMIT %(slots)s
    ) AS p
), started AS (
    UPDATE horsies_tasks AS t
    SET status = 'RUNNING', claimed = FALSE, claimed_at = statement_timestamp(),
        claimed_by_worker_id = %(worker_id)s, claim_expires_at = NULL,
        started_at = statement_timestamp(), worker_pid = slot.pids[picked.n],
        worker_hostname = %(hostname)s, worker_process_name = 'worker-' || slot.pids[picked.n],
        run_seq = slot.seqs[picked.n], updated_at = statement_timestamp()
    FROM picked, slot
    WHERE t.id = picked.id
    RETURNING slot.pids[picked.n] AS pid, slot.seqs[picked.n] AS seq, t.id, t.task_name,
              t.args, t.kwargs, t.queue_name, t.retry_count, t.max_retries, t.task_options
), confirmed AS (
    -- T4 for tasks a claim pass reserved, where a cap counts.
    UPDATE horsies_tasks AS t
    SET status = 'RUNNING', claimed = FALSE, claim_expires_at = NULL,
        started_at = statement_timestamp(), worker_pid = c.pid,
        worker_hostname = %(hostname)s, worker_process_name = 'worker-' || c.pid,
        run_seq = c.seq, updated_at = statement_timestamp()
    FROM unnest(%(confirm_ids)s::uuid[], %(confirm_pids)s::int[], %(confirm_seqs)s::int[])
         AS c(id, pid, seq)
    WHERE t.id = c.id
      AND t.status = %(claimed)s
      AND t.claimed_by_worker_id = %(worker_id)s
      AND (t.claim_expires_at IS NULL OR t.claim_expires_at > statement_timestamp())
      AND (t.good_until IS NULL OR t.good_until > statement_timestamp())
      -- Not a node of a stopped workflow (workers.md §6.1); a claim that raced a
      -- pause or cancel is caught here and stopped by the diagnosis.
      AND NOT EXISTS (
          SELECT 1 FROM horsies_workflow_tasks AS wt
          JOIN horsies_workflows AS w ON w.id = wt.workflow_id
          WHERE wt.task_id = t.id AND w.status IN ('PAUSED', 'CANCELLED'))
    RETURNING c.pid, c.seq, t.id, t.task_name, t.args, t.kwargs, t.queue_name,
              t.retry_count, t.max_retries, t.task_options
), marked AS (
    INSERT INTO horsies_child_marks AS m (worker_id, pid, start_limit, updated_at)
    SELECT %(worker_id)s, k.pid, k.start_limit, statement_timestamp()
    FROM unnest(%(mark_pids)s::int[], %(mark_limits)s::int[]) AS k(pid, start_limit)
    ON CONFLICT (worker_id, pid) DO UPDATE
    SET start_limit = EXCLUDED.start_limit, updated_at = EXCLUDED.updated_at
    WHERE NOT m.revoked
    RETURNING m.pid
), forgotten AS (
    DELETE FROM horsies_child_marks
    WHERE worker_id = %(worker_id)s AND pid = ANY(%(gone_pids)s::int[])
), terminal AS (
    SELECT id FROM completed
    UNION ALL
    SELECT id FROM failed WHERE NOT retry
), notices AS (
    SELECT count(pg_notify(n.channel, n.payload)) AS sent
    FROM (
        SELECT 'task_done' AS channel, string_agg(id::text, ',') AS payload
        FROM (SELECT id, (row_number() OVER ()) / 200 AS chunk FROM terminal) AS c
        GROUP BY chunk
        UNION ALL
        SELECT 'task_queue_' || queue_name, 'batch:' || count(*) FROM returned GROUP BY queue_name
        UNION ALL
        SELECT 'task_new', 'batch:' || count(*) FROM returned HAVING count(*) > 0
        UNION ALL
        SELECT 'horsies_task_status', 'batch:' || count(*)
        FROM (SELECT id FROM completed UNION ALL SELECT id FROM failed
              UNION ALL SELECT id FROM returned UNION ALL SELECT id FROM started
              UNION ALL SELECT id FROM confirmed) AS changed
        HAVING count(*) > 0
    ) AS n
)
-- kind 'S': a task to hand to a child; 'F': an error ending as written;
-- 'M': a child whose mark was recorded; 'Z': how many successes were written.
SELECT 'S' AS kind, pid, seq, id::text, task_name, args, kwargs, queue_name, retry_count,
       max_retries, task_options, NULL::timestamptz AS at
FROM started
UNION ALL
SELECT 'S', pid, seq, id::text, task_name, args, kwargs, queue_name, retry_count,
       max_retries, task_options, NULL
FROM confirmed
UNION ALL
SELECT 'F', NULL, attempt, id::text, NULL, NULL, NULL, queue_name,
       CASE WHEN retry THEN 1 ELSE 0 END, NULL, NULL, retry_at
FROM failed
UNION ALL
SELECT 'M', pid, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL FROM marked
UNION ALL
SELECT 'Z', NULL, (SELECT count(*) FROM completed)::int, NULL, NULL, NULL, NULL, NULL,
       (SELECT count(*) FROM returned)::int, sent::int, NULL, NULL
FROM notices;

-- name: task_started_orphans
-- After a cycle whose commit went unacknowledged: own RUNNING rows on the given children past the run positions they were handed.
SELECT t.worker_pid, t.run_seq, t.id::text, t.task_name, t.args, t.kwargs, t.queue_name,
       t.retry_count, t.max_retries, t.task_options
FROM horsies_tasks AS t
JOIN unnest(%(pids)s::int[], %(handed)s::int[]) AS h(pid, seq) ON h.pid = t.worker_pid
WHERE t.status = 'RUNNING'
  AND t.claimed_by_worker_id = %(worker_id)s
  AND t.run_seq > h.seq
ORDER BY t.worker_pid, t.run_seq;

-- name: task_ended_by_others
-- Which of the given tasks a worker reported on are no longer RUNNING for it (their results were late).
SELECT t.id::text, t.status, t.claimed_by_worker_id
FROM horsies_tasks AS t
WHERE t.id = ANY(%(ids)s::uuid[])
  AND NOT (t.status = 'COMPLETED' AND t.claimed_by_worker_id = %(worker_id)s);

-- name: claim_lock
-- Serializes claim passes of every worker on this database (only where a cap counts).
SELECT pg_advisory_xact_lock(%(key)s);

-- name: task_lease_sweep_many
-- T6: expired claims of the served queues go back to PENDING, keeping their place; wakes their queues.
WITH swept AS (
    UPDATE horsies_tasks
    SET status = 'PENDING', claimed = FALSE, claimed_at = NULL,
        claimed_by_worker_id = NULL, claim_expires_at = NULL,
        updated_at = statement_timestamp()
    WHERE status = 'CLAIMED'
      AND claim_expires_at < statement_timestamp()
      AND queue_name = ANY(%(queues)s)
    RETURNING queue_name
)
SELECT count(pg_notify(n.channel, n.payload))
FROM (
    SELECT 'task_queue_' || queue_name AS channel, 'batch:' || count(*) AS payload
    FROM swept GROUP BY queue_name
    UNION ALL
    SELECT 'task_new', 'batch:' || count(*) FROM swept HAVING count(*) > 0
) AS n;

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

-- name: task_expire_claimed_many
-- T8: owned claims whose deadline passed before they could start; wakes their result waiters.
WITH expired AS (
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
    RETURNING id
)
SELECT expired.id::text, n.sent
FROM expired, (SELECT count(pg_notify('task_done', c.ids)) AS sent
               FROM (SELECT string_agg(id::text, ',') AS ids
                     FROM (SELECT id, (row_number() OVER ()) / 200 AS chunk
                           FROM expired) AS e
                     GROUP BY chunk) AS c) AS n;

-- name: task_release_many
-- T5: give owned claims back (shutdown, dispatch failure); they keep their FIFO place and wake their queues.
WITH released AS (
    UPDATE horsies_tasks
    SET status = 'PENDING', claimed = FALSE, claimed_at = NULL,
        claimed_by_worker_id = NULL, claim_expires_at = NULL,
        updated_at = statement_timestamp()
    WHERE id = ANY(%(ids)s::uuid[])
      AND status = 'CLAIMED'
      AND claimed_by_worker_id = %(worker_id)s
    RETURNING queue_name
)
SELECT count(pg_notify(n.channel, n.payload))
FROM (
    SELECT 'task_queue_' || queue_name AS channel, 'batch:' || count(*) AS payload
    FROM released GROUP BY queue_name
    UNION ALL
    SELECT 'task_new', 'batch:' || count(*) FROM released HAVING count(*) > 0
) AS n;

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

-- name: heartbeat_claimer_insert
-- Claimer heartbeat: one row for the worker while it holds claims (feeds the stale-claim check).
INSERT INTO horsies_heartbeats (sender_id, role, hostname, pid)
VALUES (%(worker_id)s, 'claimer', %(hostname)s, %(pid)s);

-- name: task_lease_renew
-- T3: renew the leases of this worker's claims that are not older than max_claim_renew_age_ms.
UPDATE horsies_tasks
SET claim_expires_at = statement_timestamp() + %(lease_ms)s * INTERVAL '1 millisecond',
    updated_at = statement_timestamp()
WHERE status = 'CLAIMED'
  AND claimed_by_worker_id = %(worker_id)s
  AND claimed_at >= statement_timestamp() - %(max_claim_renew_age_ms)s * INTERVAL '1 millisecond';

-- name: heartbeat_runner_insert_many
-- Runner heartbeats: one row per child that was alive and busy during the last interval.
INSERT INTO horsies_heartbeats (sender_id, role, hostname, pid)
SELECT %(worker_id)s || ':' || b.pid, 'runner', %(hostname)s, b.pid
FROM unnest(%(pids)s::int[]) AS b(pid);

-- name: task_requeue_stale_claimed
-- T7: claims whose worker sent no claimer heartbeat since the threshold go back to PENDING and wake their queues.
WITH stale AS (
    SELECT t.id
    FROM horsies_tasks AS t
    LEFT JOIN LATERAL (
        SELECT max(h.sent_at) AS last_beat
        FROM horsies_heartbeats AS h
        WHERE h.sender_id = t.claimed_by_worker_id AND h.role = 'claimer'
    ) AS hb ON TRUE
    WHERE t.status = 'CLAIMED'
      AND GREATEST(hb.last_beat, t.claimed_at)
          < statement_timestamp() - %(threshold_ms)s * INTERVAL '1 millisecond'
    FOR UPDATE OF t SKIP LOCKED
), requeued AS (
    UPDATE horsies_tasks AS t
    SET status = 'PENDING', claimed = FALSE, claimed_at = NULL,
        claimed_by_worker_id = NULL, claim_expires_at = NULL,
        updated_at = statement_timestamp()
    FROM stale
    WHERE t.id = stale.id AND t.status = 'CLAIMED'
    RETURNING t.queue_name
)
SELECT count(*), (SELECT count(pg_notify(n.channel, n.payload))
                  FROM (SELECT 'task_queue_' || queue_name AS channel,
                               'batch:' || count(*) AS payload
                        FROM requeued GROUP BY queue_name
                        UNION ALL
                        SELECT 'task_new', 'batch:' || count(*) FROM requeued
                        HAVING count(*) > 0) AS n)
FROM requeued;

-- name: task_stale_children_scan
-- Children whose every RUNNING task is stale: no runner heartbeat of the child (or, with none, no assignment) since the threshold.
SELECT t.claimed_by_worker_id, t.worker_pid
FROM horsies_tasks AS t
WHERE t.status = 'RUNNING'
GROUP BY t.claimed_by_worker_id, t.worker_pid
HAVING GREATEST(
           (SELECT max(h.sent_at) FROM horsies_heartbeats AS h
            WHERE h.sender_id = t.claimed_by_worker_id || ':' || t.worker_pid
              AND h.role = 'runner'),
           max(t.started_at))
       < statement_timestamp() - %(threshold_ms)s * INTERVAL '1 millisecond'
ORDER BY 1, 2;

-- name: child_mark_lock
-- The reaper takes a child's mark before anything else; NOWAIT: a cycle of a live worker holding it means the child is not dead.
SELECT start_limit FROM horsies_child_marks
WHERE worker_id = %(worker_id)s AND pid = %(pid)s
FOR UPDATE NOWAIT;

-- name: child_mark_revoke
-- The reaper took over a child: its worker, if alive, can no longer raise the mark and stops the child instead; returns the start limit.
INSERT INTO horsies_child_marks AS m (worker_id, pid, start_limit, revoked, updated_at)
VALUES (%(worker_id)s, %(pid)s, 0, TRUE, statement_timestamp())
ON CONFLICT (worker_id, pid) DO UPDATE
SET revoked = TRUE, updated_at = statement_timestamp()
RETURNING m.start_limit;

-- name: task_stale_child_lock
-- Lock a child's RUNNING rows that are still stale (the child's latest heartbeat re-read); rows a live cycle holds are skipped.
SELECT t.id::text, t.queue_name, t.run_seq, t.retry_count, t.max_retries, t.task_options,
       t.started_at, t.worker_hostname, t.worker_pid, clock_timestamp() AS db_now
FROM horsies_tasks AS t
WHERE t.status = 'RUNNING'
  AND t.claimed_by_worker_id = %(worker_id)s
  AND t.worker_pid = %(pid)s
  AND GREATEST(
        (SELECT max(h.sent_at) FROM horsies_heartbeats AS h
         WHERE h.sender_id = %(worker_id)s || ':' || %(pid)s AND h.role = 'runner'),
        t.started_at)
      < clock_timestamp() - %(threshold_ms)s * INTERVAL '1 millisecond'
ORDER BY t.id
FOR UPDATE OF t SKIP LOCKED;

-- name: task_expire_pending
-- T9: PENDING rows whose good_until passed become EXPIRED with the TASK_EXPIRED result; wakes their result waiters.
WITH expired AS (
    UPDATE horsies_tasks
    SET status = 'EXPIRED', failed_at = statement_timestamp(),
        updated_at = statement_timestamp(), error_code = 'TASK_EXPIRED',
        result = '{"__task_result__":true,"ok":null,"err":{"__task_error__":true,'
                 || '"error_code":{"__builtin_task_code__":"TASK_EXPIRED"},'
                 || '"message":"Task expired: good_until deadline passed before execution started",'
                 || '"data":null}}'
    WHERE status = 'PENDING'
      AND good_until IS NOT NULL AND good_until <= statement_timestamp()
    RETURNING id
)
SELECT count(*), (SELECT count(pg_notify('task_done', c.ids))
                  FROM (SELECT string_agg(id::text, ',') AS ids
                        FROM (SELECT id, (row_number() OVER ()) / 200 AS chunk
                              FROM expired) AS e
                        GROUP BY chunk) AS c)
FROM expired;

-- name: queue_notify_at
-- A retry became due: wake the workers of its queue.
SELECT pg_notify('task_queue_' || %(queue)s, 'retry:' || %(task_id)s);

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

-- name: retention_child_marks_delete
-- Retention: marks of children with no RUNNING task left, untouched for longer than the heartbeat threshold.
DELETE FROM horsies_child_marks AS m
WHERE m.updated_at < statement_timestamp() - %(hours)s * INTERVAL '1 hour'
  AND NOT EXISTS (
      SELECT 1 FROM horsies_tasks AS t
      WHERE t.status = 'RUNNING' AND t.claimed_by_worker_id = m.worker_id
        AND t.worker_pid = m.pid
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
