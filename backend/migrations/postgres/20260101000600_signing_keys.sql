-- Signing key ring for signed URLs (owner: decide): one active key, retired keys kept
-- for verification.
-- Secrets never leave the database through the API or logs.
CREATE TABLE signing_keys (
    id          TEXT PRIMARY KEY,
    secret      BYTEA NOT NULL,
    state       TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    retired_at  BIGINT
);
CREATE INDEX signing_keys_state ON signing_keys(state, created_at);
