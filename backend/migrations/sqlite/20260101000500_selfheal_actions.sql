-- Self-heal action history (owner: selfheal). Times are Unix ms; JSON is TEXT.
CREATE TABLE selfheal_actions (
    id           TEXT PRIMARY KEY,
    ts           BIGINT NOT NULL,
    remediation  TEXT NOT NULL,
    outcome      TEXT NOT NULL,
    affected     BIGINT NOT NULL,
    detail       TEXT NOT NULL,
    trigger      TEXT NOT NULL
);
CREATE INDEX selfheal_actions_ts ON selfheal_actions(ts);
CREATE INDEX selfheal_actions_remediation ON selfheal_actions(remediation, ts);
