-- The job queue shared by every worker (embedded in `serve` or `petal worker`).
-- Scheduling times are epoch milliseconds, compared the same way on both engines.
CREATE TABLE jobs (
    id                TEXT PRIMARY KEY,
    kind              TEXT NOT NULL,
    -- Lower runs first: denoise (10) before fine_tune (20).
    priority          INTEGER NOT NULL,
    payload           TEXT NOT NULL,
    -- At most one queued or running job per key (e.g. one denoise per series).
    dedupe_key        TEXT,
    state             TEXT NOT NULL CHECK (state IN ('queued', 'running', 'succeeded', 'failed', 'cancelled')),
    attempts          INTEGER NOT NULL DEFAULT 0,
    max_attempts      INTEGER NOT NULL,
    run_after_ms      BIGINT NOT NULL,
    lease_owner       TEXT,
    lease_expires_ms  BIGINT,
    created_ms        BIGINT NOT NULL,
    started_ms        BIGINT,
    finished_ms       BIGINT,
    last_error        TEXT
);
CREATE INDEX jobs_ready ON jobs (state, priority, run_after_ms);
CREATE UNIQUE INDEX jobs_active_key ON jobs (dedupe_key) WHERE state IN ('queued', 'running');
