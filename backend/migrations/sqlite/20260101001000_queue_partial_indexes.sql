-- Partial indexes for the queue: each job version is written into only the indexes
-- that serve its state, so a job's three writes (enqueue, claim, acknowledgement)
-- touch about half the index entries they used to. Same lookups as before:
--   claims walk the ready jobs in order; heartbeat, release and lease reclaim look at
--   running jobs; retry promotion at failed ones; idempotency keys exist on few jobs.
DROP INDEX queue_jobs_idem;
CREATE UNIQUE INDEX queue_jobs_idem ON queue_jobs(tenant_id, idempotency_key)
    WHERE idempotency_key IS NOT NULL;
DROP INDEX queue_jobs_claim;
CREATE INDEX queue_jobs_claim ON queue_jobs(priority DESC, run_at) WHERE state = 'queued';
DROP INDEX queue_jobs_due;
CREATE INDEX queue_jobs_running ON queue_jobs(worker, lease_until) WHERE state = 'running';
CREATE INDEX queue_jobs_retry ON queue_jobs(run_at) WHERE state = 'failed';
DROP INDEX queue_jobs_finished;
CREATE INDEX queue_jobs_finished ON queue_jobs(tenant_id, finished_at)
    WHERE finished_at IS NOT NULL;
