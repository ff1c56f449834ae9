-- horsies schema, migration step 1 (lifecycle-and-schema.md §7, §8).
--
-- Applied by horsies.db.schema under the schema advisory lock, in one
-- transaction with the horsies_schema_version row. Every statement is
-- idempotent (IF NOT EXISTS, CREATE OR REPLACE, DROP TRIGGER IF EXISTS), so a
-- half-finished or repeated run is harmless. Later steps are
-- migrations/NNNN_slug.sql with NNNN >= 0002; this file stays step 1.
--
-- Column order is physical layout, not documentation order: wide fixed-width
-- columns before narrow ones (no alignment padding), and in horsies_tasks the
-- NOT NULL columns every statement and trigger filters on (status,
-- queue_name) right after them, so reading those costs no walk over nullable
-- columns. Always name columns in INSERT and COPY.

-- ---------------------------------------------------------------------------
-- §7.8 schema version
-- ---------------------------------------------------------------------------
CREATE TABLE IF NOT EXISTS horsies_schema_version (
    version    INTEGER     PRIMARY KEY,
    applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- ---------------------------------------------------------------------------
-- §7.1 tasks
-- ---------------------------------------------------------------------------
CREATE TABLE IF NOT EXISTS horsies_tasks (
    id                   UUID         NOT NULL,
    sent_at              TIMESTAMPTZ  NOT NULL DEFAULT now(),
    enqueued_at          TIMESTAMPTZ  NOT NULL DEFAULT now(),
    created_at           TIMESTAMPTZ  NOT NULL DEFAULT now(),
    updated_at           TIMESTAMPTZ  NOT NULL DEFAULT now(),
    priority             INTEGER      NOT NULL DEFAULT 100,
    retry_count          INTEGER      NOT NULL DEFAULT 0,
    max_retries          INTEGER      NOT NULL DEFAULT 0,
    claimed              BOOLEAN      NOT NULL DEFAULT FALSE,
    status               TEXT         NOT NULL DEFAULT 'PENDING',
    queue_name           VARCHAR(100) NOT NULL,
    task_name            VARCHAR(255) NOT NULL,
    enqueue_sha          VARCHAR(64)  NOT NULL,
    claimed_at           TIMESTAMPTZ,
    claim_expires_at     TIMESTAMPTZ,
    started_at           TIMESTAMPTZ,
    completed_at         TIMESTAMPTZ,
    failed_at            TIMESTAMPTZ,
    good_until           TIMESTAMPTZ,
    next_retry_at        TIMESTAMPTZ,
    worker_pid           INTEGER,
    args                 TEXT,
    kwargs               TEXT,
    task_options         TEXT,
    result               TEXT,
    error_code           TEXT,
    failed_reason        TEXT,
    claimed_by_worker_id TEXT,
    worker_hostname      VARCHAR(255),
    worker_process_name  VARCHAR(255),
    CONSTRAINT horsies_tasks_pkey PRIMARY KEY (id),
    CONSTRAINT ck_horsies_tasks_status CHECK (status IN (
        'PENDING', 'CLAIMED', 'RUNNING', 'COMPLETED', 'FAILED', 'CANCELLED', 'EXPIRED')),
    CONSTRAINT ck_horsies_tasks_priority CHECK (priority BETWEEN 1 AND 100),
    CONSTRAINT ck_horsies_tasks_max_retries CHECK (max_retries >= 0),
    -- §11 invariant 8 (first half): 0 <= retry_count <= max_retries
    CONSTRAINT ck_horsies_tasks_retry_count CHECK (
        retry_count >= 0 AND retry_count <= max_retries),
    -- §11 invariants 1-5: columns written only by horsies' own statements
    CONSTRAINT ck_horsies_tasks_claimed CHECK (claimed = (status = 'CLAIMED')),
    CONSTRAINT ck_horsies_tasks_claim_expires CHECK (
        (claim_expires_at IS NOT NULL) = (status = 'CLAIMED')),
    CONSTRAINT ck_horsies_tasks_owner CHECK (
        status NOT IN ('CLAIMED', 'RUNNING') OR claimed_by_worker_id IS NOT NULL),
    CONSTRAINT ck_horsies_tasks_started CHECK (
        status <> 'RUNNING' OR started_at IS NOT NULL),
    CONSTRAINT ck_horsies_tasks_completed CHECK (
        (completed_at IS NOT NULL) = (status = 'COMPLETED'))
);

-- The claim query: WHERE status = 'PENDING' AND queue_name = $q
-- ORDER BY priority, enqueued_at, id LIMIT $n FOR UPDATE SKIP LOCKED.
CREATE INDEX IF NOT EXISTS idx_horsies_tasks_claimable
    ON horsies_tasks (queue_name, priority, enqueued_at, id)
    WHERE status = 'PENDING';
-- Lease sweep (T6) and stale-claim scan (T7).
CREATE INDEX IF NOT EXISTS idx_horsies_tasks_lease
    ON horsies_tasks (claim_expires_at)
    WHERE status = 'CLAIMED';
-- Cap counts, stale-run scan, monitor counts.
CREATE INDEX IF NOT EXISTS idx_horsies_tasks_inflight
    ON horsies_tasks (queue_name, status)
    WHERE status IN ('CLAIMED', 'RUNNING');
-- Claimer heartbeat, lease renewal (T3), per-worker views.
CREATE INDEX IF NOT EXISTS idx_horsies_tasks_owner
    ON horsies_tasks (claimed_by_worker_id)
    WHERE status IN ('CLAIMED', 'RUNNING');
-- Pending expiry (T9).
CREATE INDEX IF NOT EXISTS idx_horsies_tasks_deadline
    ON horsies_tasks (good_until)
    WHERE status = 'PENDING' AND good_until IS NOT NULL;
-- Retention and monitor lists filtered by status.
CREATE INDEX IF NOT EXISTS idx_horsies_tasks_status_updated
    ON horsies_tasks (status, updated_at);
-- Error filters.
CREATE INDEX IF NOT EXISTS idx_horsies_tasks_error_code
    ON horsies_tasks (error_code)
    WHERE error_code IS NOT NULL;

-- ---------------------------------------------------------------------------
-- §7.2 attempts
-- ---------------------------------------------------------------------------
CREATE TABLE IF NOT EXISTS horsies_task_attempts (
    id                  BIGINT       GENERATED ALWAYS AS IDENTITY,
    task_id             UUID         NOT NULL,
    started_at          TIMESTAMPTZ  NOT NULL,
    finished_at         TIMESTAMPTZ  NOT NULL,
    created_at          TIMESTAMPTZ  NOT NULL DEFAULT now(),
    attempt             INTEGER      NOT NULL,
    worker_pid          INTEGER,
    will_retry          BOOLEAN      NOT NULL DEFAULT FALSE,
    outcome             VARCHAR(32)  NOT NULL,
    error_code          TEXT,
    error_message       TEXT,
    failed_reason       TEXT,
    worker_id           TEXT,
    worker_hostname     VARCHAR(255),
    worker_process_name VARCHAR(255),
    CONSTRAINT horsies_task_attempts_pkey PRIMARY KEY (id),
    CONSTRAINT horsies_task_attempts_task_id_fkey FOREIGN KEY (task_id)
        REFERENCES horsies_tasks (id) ON DELETE CASCADE,
    -- Also serves lookups by task (leading column).
    CONSTRAINT uq_horsies_task_attempts_task_attempt UNIQUE (task_id, attempt),
    CONSTRAINT ck_horsies_task_attempts_outcome CHECK (
        outcome IN ('COMPLETED', 'FAILED', 'WORKER_FAILURE')),
    CONSTRAINT ck_horsies_task_attempts_attempt CHECK (attempt >= 1)
);

CREATE INDEX IF NOT EXISTS idx_horsies_task_attempts_error_code
    ON horsies_task_attempts (error_code)
    WHERE error_code IS NOT NULL;
CREATE INDEX IF NOT EXISTS idx_horsies_task_attempts_finished_at
    ON horsies_task_attempts (finished_at DESC);

-- ---------------------------------------------------------------------------
-- §7.3 heartbeats (no foreign key: heartbeats may outlive a pruned task)
-- ---------------------------------------------------------------------------
CREATE TABLE IF NOT EXISTS horsies_heartbeats (
    id        BIGINT       GENERATED ALWAYS AS IDENTITY,
    task_id   UUID         NOT NULL,
    sent_at   TIMESTAMPTZ  NOT NULL DEFAULT now(),
    pid       INTEGER,
    sender_id TEXT         NOT NULL,
    role      VARCHAR(20)  NOT NULL,
    hostname  VARCHAR(255),
    CONSTRAINT horsies_heartbeats_pkey PRIMARY KEY (id),
    CONSTRAINT ck_horsies_heartbeats_role CHECK (role IN ('claimer', 'runner'))
);

-- Latest heartbeat per task and role (stale checks, §3.3).
CREATE INDEX IF NOT EXISTS idx_horsies_heartbeats_task_role_sent
    ON horsies_heartbeats (task_id, role, sent_at DESC);
-- Retention deletes by age; BRIN on an append-only time column is nearly free.
CREATE INDEX IF NOT EXISTS idx_horsies_heartbeats_sent_brin
    ON horsies_heartbeats USING BRIN (sent_at);

-- ---------------------------------------------------------------------------
-- §7.4 worker-state snapshots (workers.md §13)
-- ---------------------------------------------------------------------------
CREATE TABLE IF NOT EXISTS horsies_worker_states (
    id                    BIGINT           GENERATED ALWAYS AS IDENTITY,
    snapshot_at           TIMESTAMPTZ      NOT NULL DEFAULT now(),
    worker_started_at     TIMESTAMPTZ      NOT NULL,
    memory_usage_mb       DOUBLE PRECISION,
    memory_percent        DOUBLE PRECISION,
    cpu_percent           DOUBLE PRECISION,
    pid                   INTEGER          NOT NULL,
    processes             INTEGER          NOT NULL,
    max_claim_batch       INTEGER          NOT NULL,
    max_claim_per_worker  INTEGER          NOT NULL,
    cluster_wide_cap      INTEGER,
    tasks_running         INTEGER          NOT NULL DEFAULT 0,
    tasks_claimed         INTEGER          NOT NULL DEFAULT 0,
    worker_id             TEXT             NOT NULL,
    hostname              VARCHAR(255)     NOT NULL,
    lifecycle             TEXT             NOT NULL DEFAULT 'RUNNING',
    queues                TEXT[]           NOT NULL,
    queue_priorities      JSONB,
    queue_max_concurrency JSONB,
    recovery_config       JSONB,
    horsies_version       TEXT,
    CONSTRAINT horsies_worker_states_pkey PRIMARY KEY (id),
    CONSTRAINT ck_horsies_worker_states_lifecycle CHECK (
        lifecycle IN ('RUNNING', 'DRAINING', 'STOPPED'))
);

-- Latest snapshot per worker.
CREATE INDEX IF NOT EXISTS idx_horsies_worker_states_worker_snapshot
    ON horsies_worker_states (worker_id, snapshot_at DESC);
-- Time windows and retention.
CREATE INDEX IF NOT EXISTS idx_horsies_worker_states_snapshot_at
    ON horsies_worker_states (snapshot_at);

-- ---------------------------------------------------------------------------
-- §8 notifications on horsies_tasks
--
-- Statement-level triggers read transition tables, so an INSERT or COPY of
-- any size sends one message per channel. "Claimable now" is judged against
-- clock_timestamp() taken when the trigger runs: every enqueued_at the
-- statement could have stamped itself (now(), statement_timestamp(),
-- clock_timestamp() in a VALUES list) is at or before it, and a delayed row
-- (enqueued_at in the future) is not. Delayed rows and retries are woken by
-- the worker's timers instead (§3.2).
-- ---------------------------------------------------------------------------

-- task_new and task_queue_<queue>: rows inserted as claimable PENDING rows.
-- A one-row statement (send) costs one query on the transition table; a batch
-- (send_many's COPY, always one queue) costs one more counting pass; only a
-- statement mixing queues pays for a GROUP BY.
CREATE OR REPLACE FUNCTION horsies_notify_task_new() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    ts     timestamptz := clock_timestamp();
    seen   bigint;
    one_id text;
    queue  text;
    one_ok boolean;
    total  bigint;
    others bigint;
    q      record;
BEGIN
    SELECT count(*), min(p.id), min(p.queue_name), bool_and(p.ok)
      INTO seen, one_id, queue, one_ok
      FROM (SELECT n.id::text AS id, n.queue_name::text AS queue_name,
                   (n.status = 'PENDING' AND n.enqueued_at <= ts) AS ok
            FROM newrows AS n LIMIT 2) AS p;
    IF seen = 0 THEN
        RETURN NULL;
    ELSIF seen = 1 THEN
        IF one_ok THEN
            PERFORM pg_notify('task_queue_' || queue, one_id);
            PERFORM pg_notify('task_new', one_id);
        END IF;
        RETURN NULL;
    END IF;

    SELECT count(*), count(*) FILTER (WHERE n.queue_name <> queue)
      INTO total, others
      FROM newrows AS n
     WHERE n.status = 'PENDING' AND n.enqueued_at <= ts;
    IF total = 0 THEN
        RETURN NULL;
    ELSIF others = 0 THEN
        IF total = 1 THEN
            SELECT n.id::text INTO one_id FROM newrows AS n
             WHERE n.status = 'PENDING' AND n.enqueued_at <= ts LIMIT 1;
            PERFORM pg_notify('task_queue_' || queue, one_id);
            PERFORM pg_notify('task_new', one_id);
        ELSE
            PERFORM pg_notify('task_queue_' || queue, 'batch:' || total);
            PERFORM pg_notify('task_new', 'batch:' || total);
        END IF;
        RETURN NULL;
    END IF;

    FOR q IN
        SELECT n.queue_name, count(*) AS n_rows
          FROM newrows AS n
         WHERE n.status = 'PENDING' AND n.enqueued_at <= ts
         GROUP BY n.queue_name
    LOOP
        IF q.n_rows = 1 THEN
            SELECT n.id::text INTO one_id FROM newrows AS n
             WHERE n.queue_name = q.queue_name
               AND n.status = 'PENDING' AND n.enqueued_at <= ts
             LIMIT 1;
            PERFORM pg_notify('task_queue_' || q.queue_name, one_id);
        ELSE
            PERFORM pg_notify('task_queue_' || q.queue_name, 'batch:' || q.n_rows);
        END IF;
    END LOOP;
    IF total = 1 THEN
        PERFORM pg_notify('task_new', one_id);
    ELSE
        PERFORM pg_notify('task_new', 'batch:' || total);
    END IF;
    RETURN NULL;
END
$$;

-- task_new and task_queue_<queue>: rows that became claimable PENDING rows
-- again through an UPDATE (release T5, lease sweep T6, stale requeue T7).
-- A retry (T14) moves enqueued_at into the future and so sends nothing here.
CREATE OR REPLACE FUNCTION horsies_notify_task_requeue() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    ts     timestamptz := clock_timestamp();
    q      record;
    one_id text;
    total  bigint := 0;
BEGIN
    -- Claims, confirmations and finalizations write no PENDING row: one
    -- cheap scan of the new rows and out, without the join.
    IF NOT EXISTS (SELECT 1 FROM newrows AS n WHERE n.status = 'PENDING') THEN
        RETURN NULL;
    END IF;
    FOR q IN
        SELECT n.queue_name, count(*) AS n_rows
        FROM newrows AS n
        JOIN oldrows AS o ON o.id = n.id
        WHERE n.status = 'PENDING' AND o.status <> 'PENDING'
          AND n.enqueued_at <= ts
        GROUP BY n.queue_name
    LOOP
        IF q.n_rows = 1 THEN
            SELECT n.id::text INTO one_id
            FROM newrows AS n
            JOIN oldrows AS o ON o.id = n.id
            WHERE n.queue_name = q.queue_name
              AND n.status = 'PENDING' AND o.status <> 'PENDING'
              AND n.enqueued_at <= ts
            LIMIT 1;
            PERFORM pg_notify('task_queue_' || q.queue_name, one_id);
        ELSE
            PERFORM pg_notify('task_queue_' || q.queue_name, 'batch:' || q.n_rows);
        END IF;
        total := total + q.n_rows;
    END LOOP;
    IF total = 1 THEN
        PERFORM pg_notify('task_new', one_id);
    ELSIF total > 1 THEN
        PERFORM pg_notify('task_new', 'batch:' || total);
    END IF;
    RETURN NULL;
END
$$;

-- task_done: one message per row reaching a terminal status; result waiters
-- filter on the payload, so it must be the row's id (row level, §8 note 3).
CREATE OR REPLACE FUNCTION horsies_notify_task_done() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.status IN ('COMPLETED', 'FAILED', 'CANCELLED', 'EXPIRED') THEN
        PERFORM pg_notify('task_done', NEW.id::text);
    END IF;
    RETURN NULL;
END
$$;

-- horsies_task_status: rows inserted (any status, delayed or not), or rows
-- whose status changed. Serves both the insert and the update trigger.
CREATE OR REPLACE FUNCTION horsies_notify_task_status_change() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    n_rows bigint;
    one_id text;
BEGIN
    IF TG_OP = 'INSERT' THEN
        SELECT count(*), min(p.id) INTO n_rows, one_id
          FROM (SELECT n.id::text AS id FROM newrows AS n LIMIT 2) AS p;
        IF n_rows > 1 THEN
            SELECT count(*) INTO n_rows FROM newrows;
        END IF;
    ELSE
        SELECT count(*) INTO n_rows
          FROM newrows AS n
          JOIN oldrows AS o ON o.id = n.id
         WHERE o.status IS DISTINCT FROM n.status;
        IF n_rows = 1 THEN
            SELECT n.id::text INTO one_id
              FROM newrows AS n
              JOIN oldrows AS o ON o.id = n.id
             WHERE o.status IS DISTINCT FROM n.status;
        END IF;
    END IF;
    IF n_rows = 1 THEN
        PERFORM pg_notify('horsies_task_status', one_id);
    ELSIF n_rows > 1 THEN
        PERFORM pg_notify('horsies_task_status', 'batch:' || n_rows);
    END IF;
    RETURN NULL;
END
$$;

DROP TRIGGER IF EXISTS horsies_task_new_trigger ON horsies_tasks;
CREATE TRIGGER horsies_task_new_trigger
    AFTER INSERT ON horsies_tasks
    REFERENCING NEW TABLE AS newrows
    FOR EACH STATEMENT EXECUTE FUNCTION horsies_notify_task_new();

DROP TRIGGER IF EXISTS horsies_task_requeue_trigger ON horsies_tasks;
CREATE TRIGGER horsies_task_requeue_trigger
    AFTER UPDATE ON horsies_tasks
    REFERENCING OLD TABLE AS oldrows NEW TABLE AS newrows
    FOR EACH STATEMENT EXECUTE FUNCTION horsies_notify_task_requeue();

-- The WHEN clause keeps claims and confirmations from calling the function.
DROP TRIGGER IF EXISTS horsies_task_done_trigger ON horsies_tasks;
CREATE TRIGGER horsies_task_done_trigger
    AFTER UPDATE ON horsies_tasks
    FOR EACH ROW
    WHEN (OLD.status IS DISTINCT FROM NEW.status
          AND NEW.status IN ('COMPLETED', 'FAILED', 'CANCELLED', 'EXPIRED'))
    EXECUTE FUNCTION horsies_notify_task_done();

DROP TRIGGER IF EXISTS horsies_task_status_insert_trigger ON horsies_tasks;
CREATE TRIGGER horsies_task_status_insert_trigger
    AFTER INSERT ON horsies_tasks
    REFERENCING NEW TABLE AS newrows
    FOR EACH STATEMENT EXECUTE FUNCTION horsies_notify_task_status_change();

DROP TRIGGER IF EXISTS horsies_task_status_update_trigger ON horsies_tasks;
CREATE TRIGGER horsies_task_status_update_trigger
    AFTER UPDATE ON horsies_tasks
    REFERENCING OLD TABLE AS oldrows NEW TABLE AS newrows
    FOR EACH STATEMENT EXECUTE FUNCTION horsies_notify_task_status_change();

-- ---------------------------------------------------------------------------
-- §8 notifications on horsies_worker_states
-- ---------------------------------------------------------------------------
CREATE OR REPLACE FUNCTION horsies_notify_worker_state_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('horsies_worker_state', NEW.worker_id);
    RETURN NULL;
END
$$;

DROP TRIGGER IF EXISTS horsies_worker_state_notify_trigger ON horsies_worker_states;
CREATE TRIGGER horsies_worker_state_notify_trigger
    AFTER INSERT OR UPDATE ON horsies_worker_states
    FOR EACH ROW EXECUTE FUNCTION horsies_notify_worker_state_change();
