-- Statements of `horsies scheduler` on horsies_schedule_state (scheduling.md §7, §8).
--
-- Every change to one entry's row happens inside a transaction holding that
-- entry's advisory lock (schedule_lock), on the scheduler's lock connection.

-- name: schedule_lock
-- Serialize the processing of one entry across schedulers until the transaction ends.
SELECT pg_advisory_xact_lock(%(key)s);

-- name: schedule_state_get
-- One entry's state row, re-read after its lock is taken.
SELECT next_run_at, config_hash, run_count
FROM horsies_schedule_state
WHERE schedule_name = %(name)s;

-- name: schedule_state_insert
-- Create an entry's state row; a row another scheduler created first is kept.
INSERT INTO horsies_schedule_state (schedule_name, next_run_at, config_hash, run_count)
VALUES (%(name)s, %(next_run_at)s, %(config_hash)s, 0)
ON CONFLICT (schedule_name) DO NOTHING;

-- name: schedule_state_rehash
-- A changed pattern or time zone: the timetable restarts from the new next run.
UPDATE horsies_schedule_state
SET next_run_at = %(next_run_at)s, config_hash = %(config_hash)s, updated_at = now()
WHERE schedule_name = %(name)s;

-- name: schedule_state_advance
-- Move next_run_at forward without recording an enqueue (dropped or skipped slots).
UPDATE horsies_schedule_state
SET next_run_at = %(next_run_at)s, updated_at = now()
WHERE schedule_name = %(name)s;

-- name: schedule_state_record_runs
-- Record enqueued runs: when, the last task, how many, and the next slot.
UPDATE horsies_schedule_state
SET last_run_at = %(now)s, next_run_at = %(next_run_at)s, last_task_id = %(task_id)s,
    run_count = run_count + %(count)s, updated_at = now()
WHERE schedule_name = %(name)s;

-- name: schedule_state_missing
-- Which of the given entry names have no state row yet.
SELECT wanted
FROM unnest(%(names)s::text[]) AS wanted
WHERE NOT EXISTS (
    SELECT 1 FROM horsies_schedule_state s WHERE s.schedule_name = wanted
);

-- name: schedule_state_unknown
-- State rows of entries that are not in the given configuration (kept, inert).
SELECT schedule_name
FROM horsies_schedule_state
WHERE NOT (schedule_name = ANY(%(names)s::text[]))
ORDER BY schedule_name;

-- name: schedule_state_due
-- The entries due at the tick's time, earliest slot first.
SELECT schedule_name
FROM horsies_schedule_state
WHERE schedule_name = ANY(%(names)s::text[])
  AND (next_run_at IS NULL OR next_run_at <= %(now)s)
ORDER BY next_run_at NULLS FIRST, schedule_name;
