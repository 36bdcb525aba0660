-- Product analytics (owner: analytics). Times are Unix ms; `day` is days since the Unix
-- epoch (UTC). Raw events, the dirty-day marks the roller works from, and the rollup
-- tables every usage answer reads (never the raw events).
CREATE TABLE analytics_events (
    tenant_id    TEXT NOT NULL,
    uuid         TEXT NOT NULL,
    event        TEXT NOT NULL,
    distinct_id  TEXT NOT NULL,
    ts           BIGINT NOT NULL,
    feature      TEXT,
    properties   TEXT NOT NULL,
    received_at  BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, uuid)
);
CREATE INDEX analytics_events_ts ON analytics_events (tenant_id, ts);
CREATE INDEX analytics_events_event_ts ON analytics_events (tenant_id, event, ts);

-- One row per (tenant, day) whose rollups must be recomputed; `generation` grows with
-- every mark so a mark made during a recompute is not lost.
CREATE TABLE analytics_dirty_days (
    tenant_id   TEXT NOT NULL,
    day         BIGINT NOT NULL,
    marked_at   BIGINT NOT NULL,
    generation  BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, day)
);

-- Distinct users per day: kind 'all' (name ''), 'event' (name = event) or 'feature'
-- (name = properties.feature), with their event counts.
CREATE TABLE analytics_daily_users (
    tenant_id    TEXT NOT NULL,
    kind         TEXT NOT NULL,
    name         TEXT NOT NULL,
    day          BIGINT NOT NULL,
    distinct_id  TEXT NOT NULL,
    events       BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, kind, name, day, distinct_id)
);
CREATE INDEX analytics_daily_users_day ON analytics_daily_users (tenant_id, day);

-- Per day and name: events and distinct users (from analytics_daily_users).
CREATE TABLE analytics_daily_counts (
    tenant_id  TEXT NOT NULL,
    day        BIGINT NOT NULL,
    kind       TEXT NOT NULL,
    name       TEXT NOT NULL,
    events     BIGINT NOT NULL,
    users      BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, day, kind, name)
);

-- Exact DAU / WAU / MAU (distinct users over 1 / 7 / 28 days ending that day).
CREATE TABLE analytics_daily_active (
    tenant_id    TEXT NOT NULL,
    day          BIGINT NOT NULL,
    dau          BIGINT NOT NULL,
    wau          BIGINT NOT NULL,
    mau          BIGINT NOT NULL,
    events       BIGINT NOT NULL,
    computed_at  BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, day)
);

-- Funnels defined through the API (tenant) or config (tenant '_config', fingerprint only).
CREATE TABLE analytics_funnels (
    tenant_id    TEXT NOT NULL,
    name         TEXT NOT NULL,
    steps        TEXT NOT NULL,
    window_secs  BIGINT NOT NULL,
    fingerprint  TEXT NOT NULL,
    created_by   TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    updated_at   BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, name)
);

-- Per funnel, day and user: the user's first entry that day (first step) and how far
-- they got within the window; `step_ts` is a JSON array of the step times (ms).
CREATE TABLE analytics_funnel_entries (
    tenant_id    TEXT NOT NULL,
    funnel       TEXT NOT NULL,
    fingerprint  TEXT NOT NULL,
    day          BIGINT NOT NULL,
    distinct_id  TEXT NOT NULL,
    reached      BIGINT NOT NULL,
    step_ts      TEXT NOT NULL,
    PRIMARY KEY (tenant_id, funnel, day, distinct_id)
);
