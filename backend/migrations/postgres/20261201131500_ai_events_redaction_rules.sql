-- AI data lake (area ai): one row per recorded LLM call, and per-tenant redaction rules.
-- Times are Unix ms; cost_micros is millionths of `currency` (NULL: the model has no
-- price or the call reported no usage). Text columns hold redacted text only, and only
-- with [ai] store_text = true; prompt_sha256 / response_sha256 hash the original text.
CREATE TABLE ai_events (
    id               TEXT PRIMARY KEY,
    tenant_id        TEXT NOT NULL,
    ts               BIGINT NOT NULL,
    received_at      BIGINT NOT NULL,
    model            TEXT NOT NULL,
    feature          TEXT,
    distinct_id      TEXT,
    status           TEXT NOT NULL,
    error            TEXT,
    tokens_in        BIGINT,
    tokens_out       BIGINT,
    latency_ms       BIGINT NOT NULL,
    cost_micros      BIGINT,
    currency         TEXT NOT NULL,
    prompt_sha256    TEXT NOT NULL,
    response_sha256  TEXT NOT NULL,
    template_hash    TEXT NOT NULL,
    template         TEXT NOT NULL,
    prompt_text      TEXT,
    response_text    TEXT,
    redactions       TEXT NOT NULL,
    redaction_count  BIGINT NOT NULL,
    source           TEXT NOT NULL,
    endpoint         TEXT
);
CREATE INDEX ai_events_tenant_ts ON ai_events (tenant_id, ts);
CREATE INDEX ai_events_tenant_model_ts ON ai_events (tenant_id, model, ts);

CREATE TABLE ai_redaction_rules (
    tenant_id   TEXT PRIMARY KEY,
    disabled    TEXT NOT NULL,
    extras      TEXT NOT NULL,
    updated_by  TEXT NOT NULL,
    updated_at  BIGINT NOT NULL
);
