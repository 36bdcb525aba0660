-- Jobs: scheduled jobs run as queue jobs; each run records the queue job and attempt that ran it
-- and, for scheduled firings, the cron fire time (unique per job through the queue's
-- idempotency key). `scheduler_state.generation` is bumped by restart_scheduler; every
-- replica polls it and rebuilds its schedule from its config when it changes.
ALTER TABLE job_runs ADD COLUMN queue_job_id TEXT;
ALTER TABLE job_runs ADD COLUMN attempt BIGINT;
ALTER TABLE job_runs ADD COLUMN fire_at BIGINT;
CREATE INDEX job_runs_queue_job ON job_runs(queue_job_id);
ALTER TABLE scheduler_state ADD COLUMN generation BIGINT NOT NULL DEFAULT 0;
