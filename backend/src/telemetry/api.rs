//! `GET /api/v1/ops/telemetry`, `/api/v1/ops/telemetry/history`, `/api/v1/system-health`.

use axum::extract::State;
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::{Sample, SystemHealth, TelemetryReport};
use crate::api::extract::ApiQuery;
use crate::app::AppState;
use crate::auth::Caller;
use crate::error::ApiResult;
use crate::model::Role;

/// Status of scheduler, queue, database, system, alerts, audit and api, and the overall colour.
#[utoipa::path(get, path = "/api/v1/ops/telemetry", tag = "ops",
    responses((status = 200, body = TelemetryReport), (status = 401), (status = 403)),
    extensions(("x-min-role" = json!("readonly"))),
    security(("dash_key" = [])))]
pub async fn telemetry(
    State(state): State<AppState>,
    caller: Caller,
) -> ApiResult<Json<TelemetryReport>> {
    caller
        .require(&state, Role::Readonly, "telemetry.read")
        .await?;
    Ok(Json(super::report(&state, caller.tenant()).await))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct HistoryQuery {
    /// 1–60, default 60.
    #[param(minimum = 1, maximum = 60)]
    pub minutes: Option<i64>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(as = TelemetryHistory)]
pub struct History {
    pub interval_s: u64,
    /// Oldest first.
    pub samples: Vec<Sample>,
}

/// Samples taken every `telemetry.sample_interval_secs` (default 10 s), kept for an hour.
#[utoipa::path(get, path = "/api/v1/ops/telemetry/history", tag = "ops", params(HistoryQuery),
    responses((status = 200, body = History), (status = 401), (status = 403), (status = 422)),
    extensions(("x-min-role" = json!("readonly"))),
    security(("dash_key" = [])))]
pub async fn history(
    State(state): State<AppState>,
    State(tel): State<std::sync::Arc<super::Telemetry>>,
    caller: Caller,
    ApiQuery(q): ApiQuery<HistoryQuery>,
) -> ApiResult<Json<History>> {
    caller
        .require(&state, Role::Readonly, "telemetry.read")
        .await?;
    let minutes = crate::api::extract::bounded("minutes", q.minutes, 60, 1..=60)?;
    Ok(Json(History {
        interval_s: tel.interval_secs(),
        samples: tel.history(minutes),
    }))
}

/// Every health probe, run concurrently with a per-probe timeout: a slow probe is
/// reported as `timeout`, it never hangs the answer.
#[utoipa::path(get, path = "/api/v1/system-health", tag = "ops",
    responses((status = 200, body = SystemHealth), (status = 401), (status = 403)),
    extensions(("x-min-role" = json!("readonly"))),
    security(("dash_key" = [])))]
pub async fn system_health(
    State(state): State<AppState>,
    caller: Caller,
) -> ApiResult<Json<SystemHealth>> {
    caller
        .require(&state, Role::Readonly, "telemetry.read")
        .await?;
    Ok(Json(super::system_health(&state).await))
}
