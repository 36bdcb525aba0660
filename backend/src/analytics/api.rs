//! `/api/v1/analytics/*` and the public `GET /js/telemetry.js`.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};

use super::funnel::FunnelDef;
use super::ingest::{IngestResponse, MAX_BATCH};
use super::usage::{range, FunnelAnswer, Interval, Usage};
use super::{day_of, Analytics};
use crate::api::extract::{bounded, ApiJson, ApiPath, ApiQuery};
use crate::app::AppState;
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::model::Role;
use crate::util::now_ms;

pub const TELEMETRY_JS: &str = "/js/telemetry.js";
const SCRIPT: &str = include_str!("../../assets/telemetry.js");

/// One event as a client sends it (the schema; the handler checks each event on its own
/// so that a bad one is refused alone).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
pub struct EventIn {
    /// Idempotency key: a repeat with the same uuid stores nothing (first write wins).
    /// Generated when absent (then a retry stores the event twice).
    #[schema(min_length = 1, max_length = 64, pattern = "^[A-Za-z0-9_-]{1,64}$")]
    uuid: Option<String>,
    #[schema(min_length = 1, max_length = 200)]
    event: String,
    /// Who did it (a user id, or an anonymous id the client keeps).
    #[schema(min_length = 1, max_length = 200)]
    distinct_id: String,
    /// RFC 3339 time or Unix milliseconds; default: when the server receives it. At most a
    /// day ahead of the server clock, and within the retention period.
    ts: Option<TsIn>,
    /// Free-form (≤ 8 KiB as JSON); `feature` (a string) feeds feature usage.
    #[schema(value_type = Option<Object>)]
    properties: Option<Value>,
}

/// An event time: RFC 3339 text or Unix milliseconds.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(untagged)]
#[allow(dead_code)]
pub enum TsIn {
    Text(String),
    Millis(i64),
}

/// `{"events": [...]}`, 1 to 1,000 events.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct IngestRequest {
    /// Event objects (the `EventIn` shape). Each item is checked on its own: one that is
    /// not a valid event — not even an object — gets its own 422 result, the rest are stored.
    #[schema(value_type = Vec<serde_json::Value>, min_items = 1, max_items = 1000)]
    events: Vec<Value>,
}

/// Add events for the caller's tenant. Any key may (an `integration` key, or a publishable
/// `ingest` key — which can call nothing else; `?key=` works for it, for `sendBeacon`). The
/// body is JSON, sent as `application/json` or `text/plain` (what `sendBeacon` sends without
/// a CORS preflight). Each event gets its own result: 201 stored, 200 repeated uuid, 422
/// refused (with `detail`); the others are stored either way.
#[utoipa::path(post, path = "/api/v1/analytics/events", tag = "analytics",
    request_body(content = IngestRequest, content_type = "application/json",
        example = json!({"events": [{"uuid": "0b6c2f1e-0000-4000-8000-000000000001", "event": "signup", "distinct_id": "user-42", "properties": {"feature": "onboarding"}}]})),
    params(("key" = Option<String>, Query, description = "a publishable ingest key, for clients that cannot set X-Dash-Key")),
    responses((status = 200, body = IngestResponse), (status = 400), (status = 401), (status = 403),
        (status = 413), (status = 415), (status = 422), (status = 429)),
    extensions(("x-min-role" = json!("ingest"))),
    security(("dash_key" = [])))]
pub async fn ingest(
    State(state): State<AppState>,
    State(a): State<Analytics>,
    caller: Caller,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Json<IngestResponse>> {
    caller
        .require(&state, Role::Ingest, "analytics.ingest")
        .await?;
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let essence = ct
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    if essence != "application/json" && essence != "text/plain" {
        return Err(ApiError::UnsupportedMediaType(
            "expected Content-Type: application/json (or text/plain, as sendBeacon sends)".into(),
        ));
    }
    let req: IngestRequest = serde_json::from_slice(&body).map_err(|e| {
        if e.is_data() {
            ApiError::BadRequest(format!("invalid request body: {e}"))
        } else {
            ApiError::BadRequest(format!("malformed JSON: {e}"))
        }
    })?;
    if req.events.is_empty() || req.events.len() > MAX_BATCH {
        return Err(ApiError::Unprocessable(format!(
            "events must hold 1 to {MAX_BATCH} events, got {}",
            req.events.len()
        )));
    }
    Ok(Json(a.ingest(caller.tenant(), &req.events).await?))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct UsageQuery {
    /// First day (`YYYY-MM-DD` or RFC 3339; default: 27 days before `to`).
    pub from: Option<String>,
    /// Last day (default: today, UTC).
    pub to: Option<String>,
    /// `day` (default), `week` or `month`.
    pub interval: Option<Interval>,
    /// Top events and features listed (1..=100, default 10).
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<i64>,
}

/// DAU / WAU / MAU series (exact distinct users over 1 / 7 / 28 days), top events and
/// features with events and distinct users, and every funnel over the range. Read from
/// the rollup tables; `rollup.complete` says whether every stored event is counted yet.
#[utoipa::path(get, path = "/api/v1/analytics/usage", tag = "analytics", params(UsageQuery),
    responses((status = 200, body = Usage), (status = 400), (status = 401), (status = 403), (status = 422)),
    extensions(("x-min-role" = json!("readonly"))),
    security(("dash_key" = [])))]
pub async fn usage(
    State(state): State<AppState>,
    State(a): State<Analytics>,
    caller: Caller,
    ApiQuery(q): ApiQuery<UsageQuery>,
) -> ApiResult<Json<Usage>> {
    caller
        .require(&state, Role::Readonly, "analytics.read")
        .await?;
    let today = day_of(now_ms());
    let r = range(q.from.as_deref(), q.to.as_deref(), today)?;
    let limit = bounded("limit", q.limit, 10, 1..=100)?;
    let interval = q.interval.unwrap_or(Interval::Day);
    Ok(Json(a.usage(caller.tenant(), r, interval, limit).await?))
}

/// `POST /api/v1/analytics/funnels`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DefineFunnel {
    /// 1-64 characters of `[a-z0-9_-]`; an existing funnel of this name is replaced.
    #[schema(min_length = 1, max_length = 64, pattern = "^[a-z0-9_-]{1,64}$")]
    pub name: String,
    /// Event names in order (2 to 10, each 1-200 characters).
    #[schema(min_items = 2, max_items = 10)]
    pub steps: Vec<String>,
    /// Conversion window from entering the funnel (1 s to 90 days).
    #[schema(minimum = 1, maximum = 7776000)]
    #[serde(deserialize_with = "crate::api::extract::whole_i64")]
    pub window_secs: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct FunnelDefined {
    pub tenant: String,
    pub funnel: FunnelDef,
    /// Days marked for recompute so the funnel covers past events too.
    pub backfill_days: usize,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct FunnelList {
    pub tenant: String,
    pub funnels: Vec<FunnelDef>,
}

/// Define (or replace) a funnel for the caller's tenant (operator). Past days are
/// recomputed by the roller; `rollup.complete` on the answers says when that is done.
#[utoipa::path(post, path = "/api/v1/analytics/funnels", tag = "analytics",
    request_body(content = DefineFunnel, example = json!({"name": "signup", "steps": ["visit", "signup", "activate"], "window_secs": 3600})),
    responses((status = 200, body = FunnelDefined), (status = 400), (status = 401), (status = 403), (status = 422)),
    extensions(("x-min-role" = json!("operator"))),
    security(("dash_key" = [])))]
pub async fn define_funnel(
    State(state): State<AppState>,
    State(a): State<Analytics>,
    caller: Caller,
    ApiJson(req): ApiJson<DefineFunnel>,
) -> ApiResult<Json<FunnelDefined>> {
    caller
        .require(&state, Role::Operator, "analytics.funnel")
        .await?;
    let def = FunnelDef::new(&req.name, req.steps, req.window_secs, "api")?;
    let existing = a.funnels(caller.tenant()).await?;
    if existing.len() >= super::funnel::MAX_FUNNELS && !existing.iter().any(|f| f.name == def.name)
    {
        return Err(ApiError::Unprocessable(format!(
            "a tenant has at most {} funnels",
            super::funnel::MAX_FUNNELS
        )));
    }
    a.save_funnel(caller.tenant(), &def, &caller.key_id).await?;
    let backfill_days = a.mark_all_days(caller.tenant()).await?;
    tracing::info!(target: "analytics", tenant_id = caller.tenant(), funnel = %def.name,
        actor = %caller.key_id, backfill_days, "funnel defined");
    Ok(Json(FunnelDefined {
        tenant: caller.tenant().to_string(),
        funnel: def,
        backfill_days,
    }))
}

/// Funnels of the caller's tenant (its own and the config's).
#[utoipa::path(get, path = "/api/v1/analytics/funnels", tag = "analytics",
    responses((status = 200, body = FunnelList), (status = 401), (status = 403)),
    extensions(("x-min-role" = json!("readonly"))),
    security(("dash_key" = [])))]
pub async fn list_funnels(
    State(state): State<AppState>,
    State(a): State<Analytics>,
    caller: Caller,
) -> ApiResult<Json<FunnelList>> {
    caller
        .require(&state, Role::Readonly, "analytics.read")
        .await?;
    Ok(Json(FunnelList {
        tenant: caller.tenant().to_string(),
        funnels: a.funnels(caller.tenant()).await?,
    }))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct RangeQuery {
    /// First day (`YYYY-MM-DD` or RFC 3339; default: 27 days before `to`).
    pub from: Option<String>,
    /// Last day (default: today, UTC).
    pub to: Option<String>,
}

/// One funnel over a range: users per step, conversion, median time between steps,
/// drop-off.
#[utoipa::path(get, path = "/api/v1/analytics/funnels/{name}", tag = "analytics",
    params(("name" = String, Path, description = "funnel name", example = "signup"), RangeQuery),
    responses((status = 200, body = FunnelAnswer), (status = 400), (status = 401), (status = 403), (status = 404), (status = 422)),
    extensions(("x-min-role" = json!("readonly"))),
    security(("dash_key" = [])))]
pub async fn funnel(
    State(state): State<AppState>,
    State(a): State<Analytics>,
    caller: Caller,
    ApiPath(name): ApiPath<String>,
    ApiQuery(q): ApiQuery<RangeQuery>,
) -> ApiResult<Json<FunnelAnswer>> {
    caller
        .require(&state, Role::Readonly, "analytics.read")
        .await?;
    let (from, to) = range(q.from.as_deref(), q.to.as_deref(), day_of(now_ms()))?;
    let defs = a.funnels(caller.tenant()).await?;
    let Some(def) = defs.into_iter().find(|f| f.name == name) else {
        return Err(ApiError::NotFound(format!(
            "no funnel {name:?} for this tenant; define it with POST /api/v1/analytics/funnels"
        )));
    };
    // The state first (see `Analytics::usage`).
    let rollup = a.rollup_state(caller.tenant(), from, to).await?;
    let result = a.funnel_result(caller.tenant(), &def, from, to).await?;
    Ok(Json(FunnelAnswer {
        tenant: caller.tenant().to_string(),
        from: super::rollup::date_of(from),
        to: super::rollup::date_of(to),
        steps: def.steps.clone(),
        funnel: result,
        rollup,
    }))
}

/// `POST /api/v1/analytics/rollup`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RecomputeRequest {
    /// First day to recompute (`YYYY-MM-DD`).
    pub from: String,
    /// Last day (`YYYY-MM-DD`); at most 366 days after `from`.
    pub to: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct RecomputeMarked {
    pub tenant: String,
    /// Days marked; the roller recomputes them within `[analytics] rollup_interval_secs`.
    pub marked_days: usize,
}

/// Recompute the caller's tenant's rollups for a range of days (operator): the days are
/// marked and the roller replaces their rows from the raw events (idempotent).
#[utoipa::path(post, path = "/api/v1/analytics/rollup", tag = "analytics",
    request_body(content = RecomputeRequest, example = json!({"from": "2026-12-01", "to": "2026-12-01"})),
    responses((status = 200, body = RecomputeMarked), (status = 400), (status = 401), (status = 403), (status = 422)),
    extensions(("x-min-role" = json!("operator"))),
    security(("dash_key" = [])))]
pub async fn recompute(
    State(state): State<AppState>,
    State(a): State<Analytics>,
    caller: Caller,
    ApiJson(req): ApiJson<RecomputeRequest>,
) -> ApiResult<Json<RecomputeMarked>> {
    caller
        .require(&state, Role::Operator, "analytics.rollup")
        .await?;
    let (from, to) = range(Some(&req.from), Some(&req.to), day_of(now_ms()))?;
    let marked_days = a.mark_days(caller.tenant(), (from..=to).collect()).await?;
    Ok(Json(RecomputeMarked {
        tenant: caller.tenant().to_string(),
        marked_days,
    }))
}

/// The ETag of the script: a hash of its bytes, so it changes exactly when the script does.
fn etag() -> &'static str {
    static TAG: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    TAG.get_or_init(|| {
        use sha2::Digest;
        let h = sha2::Sha256::digest(SCRIPT.as_bytes());
        format!("\"{}\"", hex::encode(&h[..16]))
    })
}

/// The browser client (public, no key): batches, debounces, retries with backoff, keeps
/// unsent events in localStorage and flushes with sendBeacon on page hide. Cacheable with
/// a strong ETag (304 on `If-None-Match`).
#[utoipa::path(get, path = "/js/telemetry.js", tag = "analytics",
    responses((status = 200, description = "the script", content_type = "text/javascript", body = String),
        (status = 304, description = "not modified (If-None-Match matched the ETag)")))]
pub async fn telemetry_js(headers: HeaderMap) -> Response {
    let tag = etag();
    let matches = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == tag || t.trim() == "*"));
    let mut resp = if matches {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        (StatusCode::OK, SCRIPT).into_response()
    };
    let h = resp.headers_mut();
    if !matches {
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/javascript; charset=utf-8"),
        );
    }
    if let Ok(v) = HeaderValue::from_str(tag) {
        h.insert(header::ETAG, v);
    }
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=300, must-revalidate"),
    );
    resp
}
