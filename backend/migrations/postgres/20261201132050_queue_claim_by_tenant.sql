-- Claims by tenant (owner: queue): the claim takes each tenant's ready jobs in turn, so
-- the ready-job index leads with the tenant. It also finds the tenants with ready jobs
-- by a loose scan (one probe per tenant) and serves each tenant's backlog in order.
DROP INDEX queue_jobs_claim;
CREATE INDEX queue_jobs_claim ON queue_jobs(tenant_id, priority DESC, run_at)
    WHERE state = 'queued';
