-- Durable queue, queue control (pause) and worker registry (owner: queue). Times are Unix
-- milliseconds; JSON is TEXT.
CREATE TABLE queue_jobs (
    id               TEXT PRIMARY KEY,
    tenant_id        TEXT NOT NULL,
    kind             TEXT NOT NULL,
    payload          TEXT NOT NULL,
    priority         BIGINT NOT NULL DEFAULT 0,
    -- queued | running | succeeded | failed (waiting for a retry) | dead
    state            TEXT NOT NULL,
    attempts         BIGINT NOT NULL DEFAULT 0,
    max_attempts     BIGINT NOT NULL,
    run_at           BIGINT NOT NULL,
    lease_until      BIGINT,
    worker           TEXT,
    result           TEXT,
    error            TEXT,
    idempotency_key  TEXT,
    -- consecutive attempts that failed almost at once (poison detection)
    fast_failures    BIGINT NOT NULL DEFAULT 0,
    enqueued_at      BIGINT NOT NULL,
    started_at       BIGINT,
    finished_at      BIGINT,
    updated_at       BIGINT NOT NULL
);
-- NULL keys are distinct, so only jobs enqueued with a key are constrained.
CREATE UNIQUE INDEX queue_jobs_idem ON queue_jobs(tenant_id, idempotency_key);
-- Claims: the highest priority, then the earliest due, among ready jobs.
CREATE INDEX queue_jobs_claim ON queue_jobs(state, priority DESC, run_at);
-- Retry promotion, lease reclaim and lag.
CREATE INDEX queue_jobs_due ON queue_jobs(state, run_at);
CREATE INDEX queue_jobs_tenant ON queue_jobs(tenant_id, state, enqueued_at);
CREATE INDEX queue_jobs_finished ON queue_jobs(tenant_id, finished_at);

-- One row: queue-wide controls shared by every replica.
CREATE TABLE queue_control (
    id          BIGINT PRIMARY KEY,
    paused      BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL,
    updated_by  TEXT
);
INSERT INTO queue_control (id, paused, updated_at, updated_by) VALUES (1, 0, 0, NULL);

-- Live worker pools (one row per serve process), refreshed by the heartbeat.
CREATE TABLE queue_workers (
    id           TEXT PRIMARY KEY,
    replica      TEXT NOT NULL,
    concurrency  BIGINT NOT NULL,
    started_at   BIGINT NOT NULL,
    last_seen    BIGINT NOT NULL
);
