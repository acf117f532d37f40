-- The job queue and the registry of running processes, in the shared infrastructure schema.
CREATE SCHEMA IF NOT EXISTS infra;

-- Every web, worker and combined process: a row while it runs, refreshed by its heartbeat.
CREATE TABLE infra.processes (
    id           uuid PRIMARY KEY,
    role         text NOT NULL,
    name         text NOT NULL,
    hostname     text NOT NULL,
    pid          integer NOT NULL,
    started_at   timestamptz NOT NULL DEFAULT now(),
    heartbeat_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE infra.jobs (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    queue        text NOT NULL,
    kind         text NOT NULL,
    args         jsonb NOT NULL,
    state        text NOT NULL DEFAULT 'pending'
                 CHECK (state IN ('pending', 'running', 'finished', 'failed', 'discarded')),
    priority     smallint NOT NULL DEFAULT 0,
    run_at       timestamptz NOT NULL DEFAULT now(),
    attempts     integer NOT NULL DEFAULT 0,
    max_attempts integer NOT NULL CHECK (max_attempts >= 1),
    unique_key   text,
    locked_by    uuid,
    last_error   text,
    created_at   timestamptz NOT NULL DEFAULT now(),
    started_at   timestamptz,
    finished_at  timestamptz
);

-- Claiming walks pending jobs in the order they must run: highest priority, then due time.
CREATE INDEX jobs_pending_idx ON infra.jobs (priority DESC, run_at, id) WHERE state = 'pending';
-- Releasing the jobs of a dead process.
CREATE INDEX jobs_locked_by_idx ON infra.jobs (locked_by) WHERE state = 'running';
-- A unique key stands for one job while that job is waiting or running, no longer.
CREATE UNIQUE INDEX jobs_unique_key_idx ON infra.jobs (unique_key)
    WHERE unique_key IS NOT NULL AND state IN ('pending', 'running');
-- Pruning old finished jobs and listing failed ones.
CREATE INDEX jobs_done_idx ON infra.jobs (finished_at) WHERE state IN ('finished', 'discarded');
CREATE INDEX jobs_failed_idx ON infra.jobs (id) WHERE state = 'failed';

-- One row per recurring task and time slot: the worker that inserts it enqueues that slot's job.
CREATE TABLE infra.recurring_runs (
    name       text NOT NULL,
    slot       timestamptz NOT NULL,
    job_id     bigint,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (name, slot)
);
