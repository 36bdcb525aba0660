-- Compliance webhook events (owner: compliance). One row per accepted delivery; the
-- primary key is the dedupe key (a webhook-id is unique per tenant). Times are Unix ms;
-- `sent_at` is the signed webhook-timestamp, `payload` the JSON body as TEXT.
CREATE TABLE compliance_hooks (
    tenant_id    TEXT NOT NULL,
    webhook_id   TEXT NOT NULL,
    secret_name  TEXT NOT NULL,
    event_type   TEXT,
    sent_at      BIGINT NOT NULL,
    received_at  BIGINT NOT NULL,
    body_sha256  TEXT NOT NULL,
    payload      TEXT NOT NULL,
    PRIMARY KEY (tenant_id, webhook_id)
);
CREATE INDEX compliance_hooks_received ON compliance_hooks (tenant_id, received_at);
