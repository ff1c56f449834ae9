-- horsies schema, migration step 2 (runs.md): runs, per-child liveness and
-- marks, notifications sent by horsies' own statements, leaner indexes.
--
-- Applied in place under the schema advisory lock, in one transaction with
-- its horsies_schema_version row; rows are kept. Idempotent like step 1.

-- ---------------------------------------------------------------------------
-- Tasks: the position of a task in its child's runs (runs.md §1, §3)
-- ---------------------------------------------------------------------------
-- Set when the task is assigned to a child; the reaper compares it with the
-- child's mark to tell tasks that may have started from tasks that cannot.
ALTER TABLE horsies_tasks ADD COLUMN IF NOT EXISTS run_seq INTEGER;

-- ---------------------------------------------------------------------------
-- Indexes of horsies_tasks (runs.md §6)
--
-- Every status change is a non-HOT update (status is indexed), so each index
-- whose predicate the new row version meets costs one insertion per change.
-- Partial indexes per lifecycle phase keep that to the primary key plus one
-- while a task waits or runs, and none when it ends:
--   PENDING             idx_horsies_tasks_claimable (step 1), _deadline
--   CLAIMED, RUNNING    idx_horsies_tasks_active (replaces _inflight and _owner)
--   terminal            a BRIN range summary of updated_at (replaces
--                       _status_updated), which costs nothing per row: the
--                       B-tree on (status, updated_at) took about a fifth of a
--                       drain's time in the database (measured on the cycle
--                       statement, 256 tasks started and 256 completed a cycle)
-- ---------------------------------------------------------------------------
-- Owner and child of in-flight rows: cap counts (a scan of the in-flight
-- rows), lease renewal, the per-child stale check, a worker's own rows.
CREATE INDEX IF NOT EXISTS idx_horsies_tasks_active
    ON horsies_tasks (claimed_by_worker_id, worker_pid)
    WHERE status IN ('CLAIMED', 'RUNNING');
DROP INDEX IF EXISTS idx_horsies_tasks_inflight;
DROP INDEX IF EXISTS idx_horsies_tasks_owner;
-- Retention and lists of finished tasks by age: row versions are written in
-- time order, so the ranges of updated_at per block range are narrow.
CREATE INDEX IF NOT EXISTS idx_horsies_tasks_updated_brin
    ON horsies_tasks USING BRIN (updated_at);
DROP INDEX IF EXISTS idx_horsies_tasks_status_updated;

-- ---------------------------------------------------------------------------
-- Heartbeats per child and per worker (runs.md §3)
--
-- Runner heartbeats are one row per child and interval (sender
-- '<worker id>:<child pid>'), claimer heartbeats one row per worker and
-- interval (sender '<worker id>'); neither names a task any more.
-- ---------------------------------------------------------------------------
ALTER TABLE horsies_heartbeats ALTER COLUMN task_id DROP NOT NULL;
CREATE INDEX IF NOT EXISTS idx_horsies_heartbeats_sender_role_sent
    ON horsies_heartbeats (sender_id, role, sent_at DESC);
DROP INDEX IF EXISTS idx_horsies_heartbeats_task_role_sent;

-- ---------------------------------------------------------------------------
-- Child marks (runs.md §3)
--
-- start_limit is the highest run_seq the child may start. A worker raises it
-- in the transaction of a cycle before the child may pass the old limit, so
-- when a worker dies, its child's tasks up to the limit may have started and
-- take the crash path, and the ones beyond it cannot have and return to
-- PENDING. A reaper that recovers a child sets revoked, after which its worker
-- can no longer raise the limit (it stops that child instead).
-- ---------------------------------------------------------------------------
CREATE TABLE IF NOT EXISTS horsies_child_marks (
    worker_id   TEXT        NOT NULL,
    pid         INTEGER     NOT NULL,
    start_limit INTEGER     NOT NULL DEFAULT 0,
    revoked     BOOLEAN     NOT NULL DEFAULT FALSE,
    updated_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT horsies_child_marks_pkey PRIMARY KEY (worker_id, pid)
);

-- ---------------------------------------------------------------------------
-- Notifications (runs.md §5): sent by horsies' own statements, one per
-- statement and channel, not by row triggers on horsies_tasks.
-- ---------------------------------------------------------------------------
DROP TRIGGER IF EXISTS horsies_task_new_trigger ON horsies_tasks;
DROP TRIGGER IF EXISTS horsies_task_requeue_trigger ON horsies_tasks;
DROP TRIGGER IF EXISTS horsies_task_done_trigger ON horsies_tasks;
DROP TRIGGER IF EXISTS horsies_task_status_insert_trigger ON horsies_tasks;
DROP TRIGGER IF EXISTS horsies_task_status_update_trigger ON horsies_tasks;
DROP FUNCTION IF EXISTS horsies_notify_task_new();
DROP FUNCTION IF EXISTS horsies_notify_task_requeue();
DROP FUNCTION IF EXISTS horsies_notify_task_done();
DROP FUNCTION IF EXISTS horsies_notify_task_status_change();
