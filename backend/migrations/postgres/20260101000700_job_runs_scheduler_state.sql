-- Scheduler runs and fleet-wide scheduler state (owner: jobs). Times are Unix ms.
CREATE TABLE job_runs (
    id            TEXT PRIMARY KEY,
    job           TEXT NOT NULL,
    trigger_kind  TEXT NOT NULL,
    started_at    BIGINT NOT NULL,
    finished_at   BIGINT,
    outcome       TEXT NOT NULL,
    error         TEXT,
    duration_ms   BIGINT,
    replica       TEXT NOT NULL,
    result        TEXT,
    heartbeat_at  BIGINT NOT NULL
);
CREATE INDEX job_runs_job_started ON job_runs(job, started_at);
CREATE INDEX job_runs_started ON job_runs(started_at);
-- At most one running run per job across the fleet: the insert of a second one conflicts,
-- which is how overlap is detected atomically on every replica.
CREATE UNIQUE INDEX job_runs_one_running ON job_runs(job) WHERE outcome = 'running';

-- Desired scheduler state for the whole fleet (one row).
CREATE TABLE scheduler_state (
    id          BIGINT PRIMARY KEY,
    running     BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL,
    updated_by  TEXT NOT NULL
);
INSERT INTO scheduler_state (id, running, updated_at, updated_by) VALUES (1, 1, 0, 'migration');
