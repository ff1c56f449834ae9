-- Read-only queries of the broker's inspection methods (monitoring.md §2.3-§2.5).
-- Parameters use psycopg's %(name)s style; column aliases are the keys of the
-- dicts the methods return.
--
-- A RUNNING task's liveness is its child's latest runner heartbeat (sender
-- '<worker id>:<child pid>', runs.md §3), and the task is stale when the later
-- of that beat and its started_at is older than the threshold: the same test
-- as the reaper's task_stale_child_lock (workers.sql), so that what these
-- queries report is what mark_stale_tasks_as_failed would recover.

-- name: task_stale_running_list
-- RUNNING tasks whose child's latest runner heartbeat (or started_at if later) is older than the threshold; tasks without a heartbeat first.
SELECT t.id::text AS id, t.worker_hostname, t.worker_pid, t.worker_process_name,
       hb.last_beat AS last_heartbeat, t.started_at, t.task_name
FROM horsies_tasks AS t
LEFT JOIN LATERAL (
    SELECT max(h.sent_at) AS last_beat
    FROM horsies_heartbeats AS h
    WHERE h.sender_id = t.claimed_by_worker_id || ':' || t.worker_pid AND h.role = 'runner'
) AS hb ON TRUE
WHERE t.status = 'RUNNING'
  AND GREATEST(hb.last_beat, t.started_at)
      < statement_timestamp() - %(threshold_minutes)s * INTERVAL '1 minute'
ORDER BY hb.last_beat ASC NULLS FIRST, t.started_at, t.id;

-- name: task_running_by_process_list
-- RUNNING tasks grouped by executing process, with the latest runner heartbeat of its child; busiest first.
SELECT t.worker_hostname, t.worker_pid, t.worker_process_name,
       count(*) AS active_tasks, min(t.started_at) AS oldest_task_start,
       max(hb.last_beat) AS latest_heartbeat
FROM horsies_tasks AS t
LEFT JOIN LATERAL (
    SELECT max(h.sent_at) AS last_beat
    FROM horsies_heartbeats AS h
    WHERE h.sender_id = t.claimed_by_worker_id || ':' || t.worker_pid AND h.role = 'runner'
) AS hb ON TRUE
WHERE t.status = 'RUNNING' AND t.worker_hostname IS NOT NULL
GROUP BY t.worker_hostname, t.worker_pid, t.worker_process_name
ORDER BY active_tasks DESC, t.worker_hostname, t.worker_pid, t.worker_process_name;

-- name: task_expired_pending_list
-- PENDING tasks past good_until that the reaper has not marked EXPIRED yet; earliest deadline first.
SELECT t.id::text AS id, t.task_name, t.queue_name, t.priority, t.sent_at, t.enqueued_at,
       t.good_until, statement_timestamp() - t.good_until AS expired_for
FROM horsies_tasks AS t
WHERE t.status = 'PENDING'
  AND t.good_until IS NOT NULL AND t.good_until <= statement_timestamp()
ORDER BY t.good_until, t.id;
