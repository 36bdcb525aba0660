//! `GET /api/v1/ops/verbs`, `POST /api/v1/ops/command`, `GET /api/v1/ops/logs`.

use axum::extract::State;
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::{IntoParams, ToSchema};

use super::command::{self, CommandRequest, CommandResponse};
use super::VerbSpec;
use crate::api::extract::{ApiJson, ApiQuery};
use crate::app::AppState;
use crate::auth::Caller;
use crate::error::ApiResult;
use crate::model::Role;

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct VerbList {
    pub verbs: Vec<VerbSpec>,
}

/// The allow-listed ops verbs: name, aliases, description, args schema, risk, minimum role.
#[utoipa::path(get, path = "/api/v1/ops/verbs", tag = "ops",
    responses((status = 200, body = VerbList), (status = 401), (status = 403)),
    extensions(("x-min-role" = json!("readonly"))),
    security(("dash_key" = [])))]
pub async fn list_verbs(
    State(state): State<AppState>,
    caller: Caller,
) -> ApiResult<Json<VerbList>> {
    caller.require(&state, Role::Readonly, "ops.verbs").await?;
    Ok(Json(VerbList {
        verbs: state.ops.specs(),
    }))
}

/// Dry-run (`confirm: false`, returns a plan) or confirm (`confirm: true` with the
/// `plan_id`, executes exactly that plan once). 400 unknown verb, 403 role below the
/// verb's `min_role`, 409 plan expired/foreign/mismatched or world changed (re-plan),
/// 422 invalid args or missing reason for a high-risk verb.
#[utoipa::path(post, path = "/api/v1/ops/command", tag = "ops",
    request_body(content = CommandRequest, example = json!({"verb": "tail_logs", "args": {"area": "server", "lines": 10}})),
    responses((status = 200, body = CommandResponse), (status = 400), (status = 401),
        (status = 403), (status = 409), (status = 422)),
    extensions(("x-min-role" = json!("readonly"))),
    security(("dash_key" = [])))]
pub async fn command(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(req): ApiJson<CommandRequest>,
) -> ApiResult<Json<CommandResponse>> {
    command::handle(&state, &caller, req).await.map(Json)
}

/// Query of the logs view.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct LogsQuery {
    /// Log area (file `<data-dir>/logs/<area>.<date>.ndjson`); default `server`.
    pub area: Option<String>,
    /// How many of the newest matching lines, 1–1000 (default 200).
    #[param(minimum = 1, maximum = 1000)]
    pub lines: Option<i64>,
    /// Only lines of this level or more severe.
    // Inlined: a parameter's $ref is not collected into the document's components.
    #[param(inline)]
    pub level: Option<super::verbs::tail_logs::LogLevel>,
    /// Only lines containing this text (case-insensitive, 1–200 characters).
    pub q: Option<String>,
}

/// One log line, its common fields lifted out.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct LogLine {
    /// RFC 3339, UTC.
    pub ts: Option<String>,
    pub level: Option<String>,
    pub msg: String,
    /// Route template of a request line.
    pub route: Option<String>,
    /// HTTP status of a request line.
    pub status: Option<i64>,
    /// Latency of a request line in milliseconds.
    pub ms: Option<f64>,
    pub request_id: Option<String>,
    pub tenant_id: Option<String>,
    /// Every other field of the line.
    #[schema(value_type = Object)]
    pub fields: Map<String, Value>,
}

/// The newest lines of an area's log.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct LogView {
    pub area: String,
    /// Areas that have a log (the choices of `area`).
    pub areas: Vec<String>,
    /// Files read, newest first.
    pub files: Vec<String>,
    /// Matching lines, oldest first, secrets redacted.
    pub lines: Vec<LogLine>,
    /// The 32 MiB read budget ran out before enough lines matched.
    pub scan_limit_reached: bool,
    /// Lines are limited to this tenant (every key but a superadmin's).
    pub tenant_filter: Option<String>,
}

fn log_line(raw: &str) -> LogLine {
    let mut fields = match serde_json::from_str::<Value>(raw) {
        Ok(Value::Object(m)) => m,
        _ => {
            // Not JSON (a line cut by a crash): shown as its text.
            return LogLine {
                ts: None,
                level: None,
                msg: raw.to_string(),
                route: None,
                status: None,
                ms: None,
                request_id: None,
                tenant_id: None,
                fields: Map::new(),
            };
        }
    };
    let mut text = |k: &str| match fields.remove(k) {
        Some(Value::String(s)) => Some(s),
        Some(Value::Null) | None => None,
        Some(other) => Some(other.to_string()),
    };
    let ts = text("ts");
    let level = text("level");
    let msg = text("msg").unwrap_or_default();
    let route = text("route");
    let request_id = text("request_id");
    let tenant_id = text("tenant_id");
    let status = fields.remove("status").and_then(|v| v.as_i64());
    let ms = fields.remove("latency_ms").and_then(|v| v.as_f64());
    fields.remove("area");
    LogLine {
        ts,
        level,
        msg,
        route,
        status,
        ms,
        request_id,
        tenant_id,
        fields,
    }
}

/// The newest lines of an area's NDJSON log, secrets redacted, filtered by level and
/// text: the console's logs view, a read with no plan to confirm. Logs are shared by all
/// tenants, so a key that is not superadmin sees only lines stamped with its tenant.
#[utoipa::path(get, path = "/api/v1/ops/logs", tag = "ops", params(LogsQuery),
    responses((status = 200, body = LogView,
        example = json!({"area": "server", "areas": ["server", "queue"], "files": ["server.2026-12-01.ndjson"],
            "lines": [{"ts": "2026-12-01T09:00:00.000Z", "level": "INFO", "msg": "request finished",
                "route": "/api/v1/queue/jobs", "status": 200, "ms": 1.9, "request_id": "5d0c…",
                "tenant_id": "acme", "fields": {"method": "GET"}}],
            "scan_limit_reached": false, "tenant_filter": "acme"})),
        (status = 400), (status = 401), (status = 403), (status = 422)),
    extensions(("x-min-role" = json!("readonly"))),
    security(("dash_key" = [])))]
pub async fn logs(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<LogsQuery>,
) -> ApiResult<Json<LogView>> {
    use super::verbs::tail_logs::{filtered_lines, LogFilter};
    use crate::error::ApiError;
    caller.require(&state, Role::Readonly, "ops.logs").await?;
    let areas = crate::logging::areas();
    let area = q.area.unwrap_or_else(|| "server".into());
    if !areas.contains(&area.as_str()) {
        return Err(ApiError::Unprocessable(format!(
            "unknown log area {area:?}; one of: {}",
            areas.join(", ")
        )));
    }
    let want = crate::api::extract::bounded("lines", q.lines, 200, 1..=1000)? as usize;
    let contains = match q.q {
        Some(t) if t.is_empty() || t.chars().count() > 200 => {
            return Err(ApiError::Unprocessable(
                "q must be 1 to 200 characters".into(),
            ))
        }
        other => other.map(|t| t.to_lowercase()),
    };
    let tenant = (!caller.is_superadmin()).then(|| caller.tenant().to_string());
    let filter = LogFilter {
        tenant: tenant.clone(),
        min_level: q.level,
        contains,
    };
    let dir = state.cfg.logs_dir();
    let a = area.clone();
    let (files, lines, exhausted) =
        tokio::task::spawn_blocking(move || filtered_lines(&dir, &a, want, &filter))
            .await
            .map_err(ApiError::internal)?;
    Ok(Json(LogView {
        area,
        areas: areas.iter().map(|s| s.to_string()).collect(),
        files,
        lines: lines.iter().map(|l| log_line(l)).collect(),
        scan_limit_reached: exhausted,
        tenant_filter: tenant,
    }))
}
