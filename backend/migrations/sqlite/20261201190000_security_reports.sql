-- security: one row per scan report (the whole report JSON, counts apart for listing).
-- Times are Unix ms. Reports of the fleet's scans belong to the system tenant `default`.
CREATE TABLE security_reports (
    id          TEXT PRIMARY KEY,
    tenant_id   TEXT NOT NULL,
    run_id      TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    duration_ms BIGINT NOT NULL,
    trigger     TEXT NOT NULL,
    counts      TEXT NOT NULL,
    report      TEXT NOT NULL
);
CREATE INDEX security_reports_tenant_created ON security_reports (tenant_id, created_at);
