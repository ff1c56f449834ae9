-- horsies schema, migration step: the scheduler's state (lifecycle-and-schema.md §7.5,
-- scheduling.md §13).
--
-- One row per schedule entry, created and updated only by `horsies scheduler`.
-- next_run_at is the earliest slot not yet handled; the tick selects rows by it.
-- Idempotent like every step: a repeated run changes nothing.
--
-- Column order is physical layout (fixed-width columns first), not the
-- documentation order; always name columns in INSERT.

CREATE TABLE IF NOT EXISTS horsies_schedule_state (
    next_run_at   TIMESTAMPTZ,
    last_run_at   TIMESTAMPTZ,
    updated_at    TIMESTAMPTZ  NOT NULL DEFAULT now(),
    last_task_id  UUID,
    run_count     INTEGER      NOT NULL DEFAULT 0,
    schedule_name VARCHAR(255) NOT NULL,
    config_hash   VARCHAR(64),
    CONSTRAINT horsies_schedule_state_pkey PRIMARY KEY (schedule_name)
);

CREATE INDEX IF NOT EXISTS idx_horsies_schedule_state_next_run
    ON horsies_schedule_state (next_run_at);
