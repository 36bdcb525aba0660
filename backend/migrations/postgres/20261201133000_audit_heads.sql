-- audit: signed tree heads (audit/heads.rs). One row per published head.
CREATE TABLE audit_heads (
    id BIGINT PRIMARY KEY,
    tree_size BIGINT NOT NULL,
    root TEXT NOT NULL,
    ts BIGINT NOT NULL,
    public_key TEXT NOT NULL,
    signature TEXT NOT NULL,
    witnessed BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX audit_heads_unwitnessed ON audit_heads (id) WHERE witnessed = 0;
