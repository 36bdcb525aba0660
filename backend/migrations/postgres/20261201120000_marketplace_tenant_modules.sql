-- Marketplace: which optional modules each tenant has turned off or on. No row means the
-- module's default (on). Times are Unix ms. Every change is also an audit record.
CREATE TABLE tenant_modules (
    tenant_id   TEXT NOT NULL,
    module      TEXT NOT NULL,
    enabled     BIGINT NOT NULL,
    changed_by  TEXT NOT NULL,
    changed_at  BIGINT NOT NULL,
    reason      TEXT NOT NULL,
    PRIMARY KEY (tenant_id, module)
);
