-- Lean queue indexes (owner: queue): each job version sits in the primary key and the
-- partial index of its state only (see the PostgreSQL migration of the same name). The
-- full `queue_jobs_tenant` index took a write on every claim and acknowledgement.
--   done: a tenant's finished jobs newest first (job lists, DLQ), by enqueue time.
--   finished_at: retention's cut-off scan over finished jobs.
DROP INDEX queue_jobs_tenant;
DROP INDEX queue_jobs_finished;
CREATE INDEX queue_jobs_done ON queue_jobs(tenant_id, enqueued_at)
    WHERE finished_at IS NOT NULL;
CREATE INDEX queue_jobs_finished_at ON queue_jobs(finished_at)
    WHERE finished_at IS NOT NULL;
