//! Alert routes: `GET /api/v1/alerts`, `POST /api/v1/alerts/test`.
//! Alerts are system-wide; listing needs `readonly`, a test alert `operator` of the
//! system tenant (it pages whoever is on the channels).

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use serde_json::json;
use utoipa::{IntoParams, ToSchema};

use super::{AlertList, AlertRecord, NewAlert};
use crate::api::extract::{ApiJson, ApiQuery};
use crate::app::AppState;
use crate::audit::{self, NewAudit};
use crate::auth::{Caller, DEFAULT_TENANT};
use crate::error::{ApiError, ApiResult};
use crate::model::Role;

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct AlertsQuery {
    /// 1–500, default 50.
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<i64>,
}

/// Stored alerts (delivered, failed and suppressed), newest first.
#[utoipa::path(get, path = "/api/v1/alerts", tag = "alerts", params(AlertsQuery),
    responses((status = 200, body = AlertList), (status = 400), (status = 401), (status = 403)),
    extensions(("x-min-role" = json!("readonly"))),
    security(("dash_key" = [])))]
pub async fn list_alerts(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<AlertsQuery>,
) -> ApiResult<Json<AlertList>> {
    caller
        .require(&state, Role::Readonly, "alerts.read")
        .await?;
    let limit = crate::api::extract::bounded("limit", q.limit, 50, 1..=500)?;
    Ok(Json(AlertList {
        alerts: super::list(&state.store, limit).await?,
    }))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TestAlertRequest {
    /// Text of the test alert (default: a fixed test message). At most 1000 characters,
    /// not only spaces.
    #[serde(default)]
    #[schema(max_length = 1000, pattern = "\\S")]
    pub message: Option<String>,
}

/// Send a test alert (key `test`, info) through every configured channel; the 30-minute
/// cooldown applies to it like to any other key.
#[utoipa::path(post, path = "/api/v1/alerts/test", tag = "alerts",
    request_body(content = TestAlertRequest, example = json!({"message": "Test alert from the runbook"})),
    responses((status = 201, body = AlertRecord), (status = 400), (status = 403), (status = 422)),
    extensions(("x-min-role" = json!("operator")), ("x-system" = json!(true))),
    security(("dash_key" = [])))]
pub async fn test_alert(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(req): ApiJson<TestAlertRequest>,
) -> ApiResult<(StatusCode, Json<AlertRecord>)> {
    caller
        .require(&state, Role::Operator, "alerts.test")
        .await?;
    if caller.key_tenant != DEFAULT_TENANT && !caller.is_superadmin() {
        let reason = "alert channels are system-wide: this needs a key of the `default` tenant";
        crate::auth::deny(
            &state,
            &caller,
            "alerts.test",
            &caller.tenant,
            json!({"reason": reason}),
        )
        .await;
        return Err(ApiError::Forbidden(reason.into()));
    }
    let message = req.message.unwrap_or_else(|| {
        "Test alert: if you can read this, EchoPilot alerting reaches this channel.".into()
    });
    if message.chars().count() > 1000 || message.trim().is_empty() {
        return Err(ApiError::Unprocessable(
            "message must be 1 to 1000 characters".into(),
        ));
    }
    let alerts = super::area::service(&state)
        .ok_or_else(|| ApiError::Unavailable("the alert service is not started".into()))?;
    let rec = alerts
        .raise(
            &state.store,
            NewAlert {
                key: "test".into(),
                severity: super::Severity::Info,
                title: format!("Test alert from {}", caller.key_id),
                message,
            },
        )
        .await?;
    let outcome = if rec.suppressed { "suppressed" } else { "ok" };
    audit::record(
        &state.store,
        NewAudit::new(
            DEFAULT_TENANT,
            &caller.key_id,
            "alerts.test",
            &rec.id,
            outcome,
            &caller.request_id,
        )
        .detail(json!({"channels": rec.channels, "delivery_job_id": rec.delivery_job_id})),
    )
    .await?;
    Ok((StatusCode::CREATED, Json(rec)))
}
