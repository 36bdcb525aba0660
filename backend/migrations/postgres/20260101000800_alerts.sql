-- Alerts and per-key cooldowns (owner: alerts). Times are Unix ms.
CREATE TABLE alerts (
    id          TEXT PRIMARY KEY,
    ts          BIGINT NOT NULL,
    key         TEXT NOT NULL,
    severity    TEXT NOT NULL,
    title       TEXT NOT NULL,
    message     TEXT NOT NULL,
    channels    TEXT NOT NULL,
    delivered   BIGINT NOT NULL,
    suppressed  BIGINT NOT NULL,
    error       TEXT
);
CREATE INDEX alerts_ts ON alerts(ts);
CREATE INDEX alerts_key_ts ON alerts(key, ts);

-- Cooldown per alert key; a conditional upsert claims the right to send atomically.
CREATE TABLE alert_cooldowns (
    key         TEXT PRIMARY KEY,
    until_ms    BIGINT NOT NULL
);
