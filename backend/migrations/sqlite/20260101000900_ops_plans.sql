-- Ops command plans (dry-run → confirm). A plan is bound to the key and tenant that made
-- it, to the exact verb and canonical args, and to a fingerprint of the world it was
-- computed on; confirming re-plans and compares. `confirmed_at` is claimed atomically so
-- a plan runs at most once; `result`/`result_status` replay the first answer.
CREATE TABLE ops_plans (
    plan_id        TEXT PRIMARY KEY,
    tenant_id      TEXT NOT NULL,
    key_id         TEXT NOT NULL,
    verb           TEXT NOT NULL,
    args           TEXT NOT NULL,
    plan           TEXT NOT NULL,
    fingerprint    TEXT NOT NULL,
    risk           TEXT NOT NULL,
    created_at     BIGINT NOT NULL,
    expires_at     BIGINT NOT NULL,
    confirmed_at   BIGINT,
    reason         TEXT,
    result         TEXT,
    result_status  BIGINT
);
CREATE INDEX ops_plans_tenant ON ops_plans(tenant_id, created_at);
