-- Idempotency-Key replay records, keyed by tenant, API key, method and route template
-- (owner: status). Replaces the tenant + key-only table: a stored answer must never be
-- replayed to another API key. Entries live 24 h, so the old ones are dropped, not moved.
DROP TABLE idempotency_keys;
CREATE TABLE idempotency_keys (
    tenant_id     TEXT NOT NULL,
    key_id        TEXT NOT NULL,
    method        TEXT NOT NULL,
    route         TEXT NOT NULL,
    idem_key      TEXT NOT NULL,
    request_hash  TEXT NOT NULL,
    status        BIGINT,
    body          TEXT,
    created_at    BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, key_id, method, route, idem_key)
);
