//! `/api/v1/ai/*`: record events (one or a batch), analytics, the tenant's redaction rules.
//! The proxy routes live in [`super::proxy`].

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use utoipa::IntoParams;

use super::analytics::AiAnalytics;
use super::events::{AiEventBatch, AiEventIn, RecordedBatch, RecordedEvent};
use super::rules::{RedactionRules, RedactionUpdate};
use super::Ai;
use crate::api::extract::{bounded, ApiJson, ApiQuery};
use crate::app::AppState;
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::model::Role;
use crate::util::now_ms;

/// Record one AI call (integration key or above). Prompt and response are hashed; the
/// text is kept, redacted, only with `[ai] store_text = true`.
#[utoipa::path(post, path = "/api/v1/ai/events", tag = "ai",
    request_body(content = AiEventIn, example = json!({"model": "gpt-4o-mini", "prompt": "Summarise order 1234", "response": "Order 1234 shipped.", "tokens_in": 12, "tokens_out": 5, "latency_ms": 420, "status": "ok", "feature": "summaries"})),
    responses((status = 201, body = RecordedEvent), (status = 400), (status = 401),
        (status = 403), (status = 413), (status = 415), (status = 422)),
    extensions(("x-min-role" = json!("integration"))),
    security(("dash_key" = [])))]
pub async fn record_event(
    State(state): State<AppState>,
    State(ai): State<Ai>,
    caller: Caller,
    ApiJson(ev): ApiJson<AiEventIn>,
) -> ApiResult<(StatusCode, Json<RecordedEvent>)> {
    caller
        .require(&state, Role::Integration, "ai.record")
        .await?;
    let now = now_ms();
    let ev = ev.check("", now, ai.oldest(now))?;
    let mut rec = ai.record(caller.tenant(), vec![ev]).await?;
    let one = rec
        .pop()
        .ok_or_else(|| ApiError::internal("recording one event returned none"))?;
    Ok((StatusCode::CREATED, Json(one)))
}

/// Record up to `[ai] max_batch` calls at once, all or nothing: a bad event is named in
/// the 422 (`events[3].tokens_in …`) and nothing is stored.
#[utoipa::path(post, path = "/api/v1/ai/events/batch", tag = "ai",
    request_body(content = AiEventBatch, example = json!({"events": [{"model": "gpt-4o-mini", "prompt": "Summarise order 1234", "response": "Order 1234 shipped.", "tokens_in": 12, "tokens_out": 5, "latency_ms": 420, "status": "ok", "feature": "summaries"}]})),
    responses((status = 201, body = RecordedBatch), (status = 400), (status = 401),
        (status = 403), (status = 413), (status = 415), (status = 422)),
    extensions(("x-min-role" = json!("integration"))),
    security(("dash_key" = [])))]
pub async fn record_batch(
    State(state): State<AppState>,
    State(ai): State<Ai>,
    caller: Caller,
    ApiJson(batch): ApiJson<AiEventBatch>,
) -> ApiResult<(StatusCode, Json<RecordedBatch>)> {
    caller
        .require(&state, Role::Integration, "ai.record")
        .await?;
    let max = ai.settings.max_batch;
    if batch.events.is_empty() || batch.events.len() > max {
        return Err(ApiError::Unprocessable(format!(
            "events must hold 1 to {max} events ([ai] max_batch), got {}",
            batch.events.len()
        )));
    }
    let now = now_ms();
    let events = batch
        .events
        .into_iter()
        .enumerate()
        .map(|(i, e)| e.check(&format!("events[{i}]."), now, ai.oldest(now)))
        .collect::<Result<Vec<_>, _>>()?;
    let recorded = ai.record(caller.tenant(), events).await?;
    Ok((StatusCode::CREATED, Json(RecordedBatch { recorded })))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct AnalyticsQuery {
    /// Start (RFC 3339, inclusive); default: `to` minus 7 days.
    #[param(format = DateTime)]
    pub from: Option<String>,
    /// End (RFC 3339, exclusive); default: now.
    #[param(format = DateTime)]
    pub to: Option<String>,
    /// Rows of `top_templates` and `recent_errors`, 1–100 (default 10).
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<i64>,
}

fn parse_time(name: &str, v: &Option<String>) -> ApiResult<Option<i64>> {
    v.as_deref()
        .map(|s| {
            chrono::DateTime::parse_from_rfc3339(s)
                .map(|t| t.timestamp_millis())
                .map_err(|_| {
                    ApiError::Unprocessable(format!(
                        "{name} must be an RFC 3339 time like 2026-12-01T00:00:00Z"
                    ))
                })
        })
        .transpose()
}

/// Top prompt templates, average tokens, error rate, p50/p95 latency per model, cost per
/// model and per feature, and the latest failed calls, for the caller's tenant.
#[utoipa::path(get, path = "/api/v1/ai/analytics", tag = "ai", params(AnalyticsQuery),
    responses((status = 200, body = AiAnalytics), (status = 400), (status = 401),
        (status = 403), (status = 422)),
    extensions(("x-min-role" = json!("readonly"))),
    security(("dash_key" = [])))]
pub async fn analytics(
    State(state): State<AppState>,
    State(ai): State<Ai>,
    caller: Caller,
    ApiQuery(q): ApiQuery<AnalyticsQuery>,
) -> ApiResult<Json<AiAnalytics>> {
    caller.require(&state, Role::Readonly, "ai.read").await?;
    let limit = bounded("limit", q.limit, 10, 1..=100)?;
    let to = parse_time("to", &q.to)?.unwrap_or_else(now_ms);
    let from = parse_time("from", &q.from)?.unwrap_or(to - 7 * 86_400_000);
    // An empty window (from = to) is a valid question with an empty answer.
    if from > to {
        return Err(ApiError::Unprocessable("from must not be after to".into()));
    }
    Ok(Json(ai.analytics(caller.tenant(), from, to, limit).await?))
}

/// The tenant's redaction rules: every built-in recogniser (on or off) and its extras.
#[utoipa::path(get, path = "/api/v1/ai/redaction", tag = "ai",
    responses((status = 200, body = RedactionRules), (status = 401), (status = 403)),
    extensions(("x-min-role" = json!("readonly"))),
    security(("dash_key" = [])))]
pub async fn get_redaction(
    State(state): State<AppState>,
    State(ai): State<Ai>,
    caller: Caller,
) -> ApiResult<Json<RedactionRules>> {
    caller.require(&state, Role::Readonly, "ai.read").await?;
    Ok(Json(ai.rules(caller.tenant()).await?))
}

/// Replace the tenant's redaction rules (admin; audited as `ai.redaction`). Applies to
/// events recorded from now on.
#[utoipa::path(put, path = "/api/v1/ai/redaction", tag = "ai",
    request_body(content = RedactionUpdate, example = json!({"disabled": ["phone"], "extra": [{"name": "order_ref", "pattern": "ORD-[0-9]{6}"}]})),
    responses((status = 200, body = RedactionRules), (status = 400), (status = 401),
        (status = 403), (status = 415), (status = 422)),
    extensions(("x-min-role" = json!("admin"))),
    security(("dash_key" = [])))]
pub async fn put_redaction(
    State(state): State<AppState>,
    State(ai): State<Ai>,
    caller: Caller,
    ApiJson(update): ApiJson<RedactionUpdate>,
) -> ApiResult<Json<RedactionRules>> {
    caller.require(&state, Role::Admin, "ai.redaction").await?;
    Ok(Json(
        ai.set_rules(caller.tenant(), &caller.key_id, &caller.request_id, update)
            .await?,
    ))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct EventsQuery {
    /// Only calls with this status.
    pub status: Option<super::events::CallStatus>,
    /// 1–100, default 20.
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<i64>,
}

/// The tenant's latest recorded calls, newest first (readonly or above). Text appears
/// only redacted, and only when `[ai] store_text` was on.
#[utoipa::path(get, path = "/api/v1/ai/events", tag = "ai", params(EventsQuery),
    responses((status = 200, body = super::events::StoredEvents), (status = 400), (status = 401),
        (status = 403), (status = 422)),
    extensions(("x-min-role" = json!("readonly"))),
    security(("dash_key" = [])))]
pub async fn list_events(
    State(state): State<AppState>,
    State(ai): State<Ai>,
    caller: Caller,
    ApiQuery(q): ApiQuery<EventsQuery>,
) -> ApiResult<Json<super::events::StoredEvents>> {
    caller.require(&state, Role::Readonly, "ai.read").await?;
    let limit = bounded("limit", q.limit, 20, 1..=100)?;
    let events = ai.list(caller.tenant(), q.status, limit).await?;
    Ok(Json(super::events::StoredEvents { events }))
}
