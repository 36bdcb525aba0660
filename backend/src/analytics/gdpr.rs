//! GDPR for analytics: the subject is a `distinct_id`. Export lists its raw events; delete
//! removes them with its per-user rollup rows (daily users, funnel entries) in one
//! transaction and marks those days dirty, so the roller recomputes the counts without
//! the subject (aggregate counts hold no personal data).

use std::collections::BTreeSet;

use serde_json::{json, Value};

use super::day_of;
use crate::app::{AppState, BoxFuture};
use crate::area::{Gdpr, GdprErasure, GdprExport, GdprRequest};
use crate::store::Json;
use crate::util::{now_ms, rfc3339_ms};

pub struct AnalyticsGdpr;

#[derive(sqlx::FromRow)]
struct EventRow {
    uuid: String,
    event: String,
    ts: i64,
    feature: Option<String>,
    properties: Json<Value>,
    received_at: i64,
}

impl Gdpr for AnalyticsGdpr {
    fn about(&self) -> &'static str {
        "analytics events whose distinct_id is the subject, with its per-user rollup rows"
    }
    fn export<'a>(
        &'a self,
        state: &'a AppState,
        req: &'a GdprRequest,
    ) -> BoxFuture<'a, anyhow::Result<GdprExport>> {
        Box::pin(async move {
            let rows: Vec<EventRow> = sqlx::query_as(
                "SELECT uuid, event, ts, feature, properties, received_at FROM analytics_events \
                 WHERE tenant_id = $1 AND distinct_id = $2 ORDER BY ts, uuid",
            )
            .bind(&req.tenant)
            .bind(&req.subject)
            .fetch_all(state.store.reader())
            .await
            .map_err(crate::store::in_table("analytics_events", None))?;
            let days: i64 = sqlx::query_scalar(
                "SELECT COUNT(*) FROM analytics_daily_users WHERE tenant_id = $1 AND distinct_id = $2",
            )
            .bind(&req.tenant)
            .bind(&req.subject)
            .fetch_one(state.store.reader())
            .await?;
            let events: Vec<Value> = rows
                .into_iter()
                .map(|r| {
                    json!({"uuid": r.uuid, "event": r.event, "ts": rfc3339_ms(r.ts),
                           "feature": r.feature, "properties": r.properties.0,
                           "received_at": rfc3339_ms(r.received_at)})
                })
                .collect();
            Ok(GdprExport {
                records: events.len() as u64,
                data: json!({"events": events, "rollup_rows": days}),
                notes: Vec::new(),
            })
        })
    }
    fn delete<'a>(
        &'a self,
        state: &'a AppState,
        req: &'a GdprRequest,
    ) -> BoxFuture<'a, anyhow::Result<GdprErasure>> {
        Box::pin(async move {
            let store = &state.store;
            let mut tx = store.begin_write().await?;
            let event_ts: Vec<i64> = sqlx::query_scalar(
                "SELECT ts FROM analytics_events WHERE tenant_id = $1 AND distinct_id = $2",
            )
            .bind(&req.tenant)
            .bind(&req.subject)
            .fetch_all(&mut *tx)
            .await?;
            let user_days: Vec<i64> = sqlx::query_scalar(
                "SELECT day FROM analytics_daily_users WHERE tenant_id = $1 AND distinct_id = $2",
            )
            .bind(&req.tenant)
            .bind(&req.subject)
            .fetch_all(&mut *tx)
            .await?;
            let funnel_days: Vec<i64> = sqlx::query_scalar(
                "SELECT day FROM analytics_funnel_entries WHERE tenant_id = $1 AND distinct_id = $2",
            )
            .bind(&req.tenant)
            .bind(&req.subject)
            .fetch_all(&mut *tx)
            .await?;
            let mut counts = Vec::new();
            for (kind, sql) in [
                ("events", "DELETE FROM analytics_events WHERE tenant_id = $1 AND distinct_id = $2"),
                ("daily_users", "DELETE FROM analytics_daily_users WHERE tenant_id = $1 AND distinct_id = $2"),
                ("funnel_entries", "DELETE FROM analytics_funnel_entries WHERE tenant_id = $1 AND distinct_id = $2"),
            ] {
                let n = sqlx::query(sql)
                    .bind(&req.tenant)
                    .bind(&req.subject)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                counts.push((kind, n));
            }
            // The days whose counts included the subject are recomputed without them.
            let days: BTreeSet<i64> = event_ts
                .iter()
                .map(|t| day_of(*t))
                .chain(user_days)
                .chain(funnel_days)
                .collect();
            super::rollup::mark_dirty(&mut tx, &req.tenant, &days, now_ms()).await?;
            let mut e = GdprErasure::default();
            for (k, n) in counts {
                e.deleted.insert(k.into(), n);
            }
            req.audit_in(store, &mut tx, "analytics", &e).await?;
            tx.commit().await?;
            Ok(e)
        })
    }
}
