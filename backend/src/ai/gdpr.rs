//! GDPR for the AI data lake: the subject is an event's `distinct_id`. Export lists its
//! recorded calls (hashes, template, redacted text when it was kept); delete removes them
//! in one transaction. Aggregates are computed from the events at query time, so nothing
//! else holds the subject.

use serde_json::{json, Value};

use crate::app::{AppState, BoxFuture};
use crate::area::{Erase, Gdpr, GdprErasure, GdprExport, GdprRequest};
use crate::util::rfc3339_ms;

pub struct AiGdpr;

#[derive(sqlx::FromRow)]
struct Row {
    id: String,
    ts: i64,
    model: String,
    feature: Option<String>,
    status: String,
    tokens_in: Option<i64>,
    tokens_out: Option<i64>,
    template: String,
    prompt_text: Option<String>,
    response_text: Option<String>,
}

impl Gdpr for AiGdpr {
    fn about(&self) -> &'static str {
        "AI call events whose distinct_id is the subject"
    }
    fn export<'a>(
        &'a self,
        state: &'a AppState,
        req: &'a GdprRequest,
    ) -> BoxFuture<'a, anyhow::Result<GdprExport>> {
        Box::pin(async move {
            let rows: Vec<Row> = sqlx::query_as(
                "SELECT id, ts, model, feature, status, tokens_in, tokens_out, template, \
                 prompt_text, response_text FROM ai_events \
                 WHERE tenant_id = $1 AND distinct_id = $2 ORDER BY ts, id",
            )
            .bind(&req.tenant)
            .bind(&req.subject)
            .fetch_all(state.store.reader())
            .await
            .map_err(crate::store::in_table("ai_events", None))?;
            let events: Vec<Value> = rows
                .into_iter()
                .map(|r| {
                    json!({"id": r.id, "ts": rfc3339_ms(r.ts), "model": r.model,
                           "feature": r.feature, "status": r.status, "tokens_in": r.tokens_in,
                           "tokens_out": r.tokens_out, "template": r.template,
                           "prompt_text": r.prompt_text, "response_text": r.response_text})
                })
                .collect();
            Ok(GdprExport {
                records: events.len() as u64,
                data: json!({ "events": events }),
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
            let sql = "DELETE FROM ai_events WHERE tenant_id = $1 AND distinct_id = $2";
            Ok(req
                .erase(&state.store, "ai", &[("events", Erase::Delete, sql)])
                .await?)
        })
    }
}
