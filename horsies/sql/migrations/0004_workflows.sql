-- horsies schema, migration step: the workflow tables (lifecycle-and-schema.md
-- §7.6-7.7, workflows.md §18).
--
-- Beyond the documented columns, the engine keeps counters so that advancing
-- a workflow after one node ends costs work proportional to that node's
-- dependents, never to the workflow's size:
--   horsies_workflows.nodes_left          nodes not terminal yet (0: run the completion check)
--   horsies_workflow_tasks.dependents     indices of the nodes that wait for this one
--   horsies_workflow_tasks.deps_completed / deps_failed / deps_skipped
--                                         how many of its dependencies ended each way
--   horsies_workflow_tasks.ctx_indices    indices of its workflow_ctx_from nodes
--   horsies_workflow_tasks.ctx_waiting    how many of those are not terminal yet
-- They change only in the transactions that change the statuses they count.
--
-- Column order is physical layout (fixed-width columns first); always name
-- columns in INSERT. Idempotent like every step.

CREATE TABLE IF NOT EXISTS horsies_workflows (
    id                 UUID         NOT NULL,
    parent_workflow_id UUID,
    root_workflow_id   UUID,
    sent_at            TIMESTAMPTZ  NOT NULL DEFAULT now(),
    created_at         TIMESTAMPTZ  NOT NULL DEFAULT now(),
    updated_at         TIMESTAMPTZ  NOT NULL DEFAULT now(),
    started_at         TIMESTAMPTZ,
    completed_at       TIMESTAMPTZ,
    depth              INTEGER      NOT NULL DEFAULT 0,
    nodes_left         INTEGER      NOT NULL DEFAULT 0,
    output_task_index  INTEGER,
    parent_task_index  INTEGER,
    status             TEXT         NOT NULL DEFAULT 'PENDING',
    on_error           VARCHAR(50)  NOT NULL DEFAULT 'fail',
    name               VARCHAR(255) NOT NULL,
    definition_key     VARCHAR(255),
    success_policy     JSONB,
    result             TEXT,
    error              TEXT,
    CONSTRAINT horsies_workflows_pkey PRIMARY KEY (id),
    CONSTRAINT fk_horsies_workflows_parent FOREIGN KEY (parent_workflow_id)
        REFERENCES horsies_workflows (id) ON DELETE CASCADE,
    CONSTRAINT ck_horsies_workflows_status CHECK (status IN (
        'PENDING', 'RUNNING', 'COMPLETED', 'FAILED', 'PAUSED', 'CANCELLED')),
    CONSTRAINT ck_horsies_workflows_on_error CHECK (on_error IN ('fail', 'pause'))
);

CREATE INDEX IF NOT EXISTS idx_horsies_workflows_status ON horsies_workflows (status);
CREATE INDEX IF NOT EXISTS idx_horsies_workflows_parent ON horsies_workflows (parent_workflow_id);
CREATE INDEX IF NOT EXISTS idx_horsies_workflows_root ON horsies_workflows (root_workflow_id);
CREATE INDEX IF NOT EXISTS idx_horsies_workflows_updated ON horsies_workflows (updated_at);
CREATE INDEX IF NOT EXISTS idx_horsies_workflows_status_updated
    ON horsies_workflows (status, updated_at);

CREATE TABLE IF NOT EXISTS horsies_workflow_tasks (
    id                   UUID         NOT NULL,
    workflow_id          UUID         NOT NULL,
    task_id              UUID,
    sub_workflow_id      UUID,
    created_at           TIMESTAMPTZ  NOT NULL DEFAULT now(),
    started_at           TIMESTAMPTZ,
    completed_at         TIMESTAMPTZ,
    task_index           INTEGER      NOT NULL,
    priority             INTEGER      NOT NULL DEFAULT 100,
    min_success          INTEGER,
    deps_completed       INTEGER      NOT NULL DEFAULT 0,
    deps_failed          INTEGER      NOT NULL DEFAULT 0,
    deps_skipped         INTEGER      NOT NULL DEFAULT 0,
    ctx_waiting          INTEGER      NOT NULL DEFAULT 0,
    allow_failed_deps    BOOLEAN      NOT NULL DEFAULT FALSE,
    is_subworkflow       BOOLEAN      NOT NULL DEFAULT FALSE,
    status               TEXT         NOT NULL DEFAULT 'PENDING',
    join_type            VARCHAR(10)  NOT NULL DEFAULT 'all',
    queue_name           VARCHAR(100) NOT NULL DEFAULT 'default',
    task_name            VARCHAR(255) NOT NULL,
    node_id              VARCHAR(128),
    dependencies         INTEGER[]    NOT NULL DEFAULT '{}',
    dependents           INTEGER[]    NOT NULL DEFAULT '{}',
    ctx_indices          INTEGER[]    NOT NULL DEFAULT '{}',
    workflow_ctx_from    TEXT[],
    args_from            JSONB,
    skip_when            TEXT,
    run_when             TEXT,
    task_kwargs          TEXT,
    task_options         TEXT,
    sub_workflow_name    VARCHAR(255),
    sub_definition_key   VARCHAR(255),
    sub_workflow_summary TEXT,
    result               TEXT,
    error                TEXT,
    CONSTRAINT horsies_workflow_tasks_pkey PRIMARY KEY (id),
    CONSTRAINT uq_horsies_workflow_task_index UNIQUE (workflow_id, task_index),
    CONSTRAINT fk_horsies_workflow_tasks_workflow FOREIGN KEY (workflow_id)
        REFERENCES horsies_workflows (id) ON DELETE CASCADE,
    CONSTRAINT fk_horsies_workflow_tasks_sub FOREIGN KEY (sub_workflow_id)
        REFERENCES horsies_workflows (id) ON DELETE SET NULL,
    CONSTRAINT ck_horsies_workflow_tasks_status CHECK (status IN (
        'PENDING', 'READY', 'ENQUEUED', 'RUNNING', 'COMPLETED', 'FAILED', 'SKIPPED')),
    CONSTRAINT ck_horsies_workflow_tasks_join CHECK (join_type IN ('all', 'any', 'quorum'))
);

-- (workflow_id, task_index) is served by the unique constraint's index.
CREATE INDEX IF NOT EXISTS idx_horsies_workflow_tasks_node_id
    ON horsies_workflow_tasks (node_id);
CREATE INDEX IF NOT EXISTS idx_horsies_workflow_tasks_status
    ON horsies_workflow_tasks (status);
CREATE INDEX IF NOT EXISTS idx_horsies_workflow_tasks_task_id
    ON horsies_workflow_tasks (task_id);
CREATE INDEX IF NOT EXISTS idx_horsies_workflow_tasks_sub
    ON horsies_workflow_tasks (sub_workflow_id);
CREATE INDEX IF NOT EXISTS idx_horsies_workflow_tasks_deps
    ON horsies_workflow_tasks USING GIN (dependencies);

-- workflows.md §18.3: workflow_done on COMPLETED/FAILED/PAUSED/CANCELLED,
-- horsies_workflow_status on insert and on every status change. Row triggers:
-- workflow status changes are few, and every code path must notify.
CREATE OR REPLACE FUNCTION horsies_notify_workflow_changes() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        PERFORM pg_notify('horsies_workflow_status', NEW.id::text);
    ELSIF NEW.status IS DISTINCT FROM OLD.status THEN
        PERFORM pg_notify('horsies_workflow_status', NEW.id::text);
        IF NEW.status IN ('COMPLETED', 'FAILED', 'PAUSED', 'CANCELLED') THEN
            PERFORM pg_notify('workflow_done', NEW.id::text);
        END IF;
    END IF;
    RETURN NULL;
END;
$$;

DROP TRIGGER IF EXISTS horsies_workflow_notify_trigger ON horsies_workflows;
CREATE TRIGGER horsies_workflow_notify_trigger
    AFTER INSERT OR UPDATE OF status ON horsies_workflows
    FOR EACH ROW EXECUTE FUNCTION horsies_notify_workflow_changes();
