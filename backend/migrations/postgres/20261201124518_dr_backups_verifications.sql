-- dr: one row per backup (its manifest, as written to manifest.json) and one per restore
-- rehearsal (its report). Times are Unix ms. A backup deleted by retention keeps its row
-- with pruned_at set.
CREATE TABLE dr_backups (
    id          TEXT PRIMARY KEY,
    created_at  BIGINT NOT NULL,
    duration_ms BIGINT NOT NULL,
    engine      TEXT NOT NULL,
    bytes       BIGINT NOT NULL,
    files       BIGINT NOT NULL,
    manifest    TEXT NOT NULL,
    trigger     TEXT NOT NULL,
    pruned_at   BIGINT
);
CREATE INDEX dr_backups_created ON dr_backups (created_at);
CREATE TABLE dr_verifications (
    id          TEXT PRIMARY KEY,
    backup_id   TEXT NOT NULL,
    started_at  BIGINT NOT NULL,
    duration_ms BIGINT NOT NULL,
    restore_ms  BIGINT NOT NULL,
    result      TEXT NOT NULL,
    report      TEXT NOT NULL
);
CREATE INDEX dr_verifications_started ON dr_verifications (started_at);
