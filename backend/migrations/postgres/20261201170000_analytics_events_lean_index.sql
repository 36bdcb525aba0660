-- Lean analytics_events indexes (owner: analytics). Every secondary index costs a B-tree
-- write per ingested event; (tenant_id, event, ts) was used only by the roller's funnel
-- queries, which read one day of one tenant and filter on the event just as well through
-- (tenant_id, ts). Dropping it roughly doubled batch ingestion on SQLite
-- (scripts/bench/analytics_ingest.sh, docs/ANALYTICS.md).
DROP INDEX analytics_events_event_ts;
