-- RFC 6962 audit log (owner: audit). `ts` is the RFC 3339 string that is part of the
-- hashed leaf; `detail` is JSON as TEXT.
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
