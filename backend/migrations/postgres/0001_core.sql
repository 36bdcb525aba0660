-- Core schema (PostgreSQL). Times are Unix milliseconds (BIGINT) except audit `ts`, which is
-- the RFC 3339 string that is part of the hashed leaf. JSON is stored as TEXT.
CREATE TABLE tenants (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    created_at  BIGINT NOT NULL
);

CREATE TABLE api_keys (
    id            TEXT PRIMARY KEY,
    tenant_id     TEXT NOT NULL REFERENCES tenants(id),
    role          TEXT NOT NULL,
    name          TEXT,
    key_hash      TEXT NOT NULL UNIQUE,
    created_at    BIGINT NOT NULL,
    revoked_at    BIGINT,
    last_used_at  BIGINT
);
CREATE INDEX api_keys_tenant ON api_keys(tenant_id);

CREATE TABLE audit_log (
    seq         BIGINT PRIMARY KEY,
    ts          TEXT NOT NULL,
    tenant_id   TEXT NOT NULL,
    actor       TEXT NOT NULL,
    action      TEXT NOT NULL,
    target      TEXT NOT NULL,
    outcome     TEXT NOT NULL,
    request_id  TEXT NOT NULL,
    detail      TEXT NOT NULL
);
CREATE INDEX audit_log_action ON audit_log(action, seq);
CREATE INDEX audit_log_tenant ON audit_log(tenant_id, seq);

-- Perfect-subtree hashes of the RFC 6962 tree: id = (level << 48) | index.
-- Level 0 holds the leaf hashes. Receipts and roots read O(log n) of these.
CREATE TABLE audit_nodes (
    id    BIGINT PRIMARY KEY,
    hash  BYTEA NOT NULL
);

CREATE TABLE idempotency_keys (
    tenant_id     TEXT NOT NULL,
    idem_key      TEXT NOT NULL,
    key_id        TEXT NOT NULL,
    route         TEXT NOT NULL,
    request_hash  TEXT NOT NULL,
    status        BIGINT,
    body          TEXT,
    created_at    BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, idem_key)
);
