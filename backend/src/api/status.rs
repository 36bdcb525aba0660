//! Health, readiness, metrics and the status summary.

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::Json;
use serde_json::{json, Map, Value};

use crate::app::AppState;
use crate::auth::Caller;
use crate::error::ApiResult;
use crate::model::{Health, Role};

/// The process is up.
#[utoipa::path(get, path = "/healthz", tag = "status", responses((status = 200, body = Health)))]
pub async fn healthz() -> Json<Health> {
    Json(Health {
        status: "ok".into(),
        detail: None,
    })
}

/// The database answers and every migration is applied.
#[utoipa::path(get, path = "/readyz", tag = "status",
    responses((status = 200, body = Health), (status = 503)))]
pub async fn readyz(State(state): State<AppState>) -> impl IntoResponse {
    match state.store.ready().await {
        Ok(()) => (
            StatusCode::OK,
            Json(Health {
                status: "ready".into(),
                detail: None,
            }),
        )
            .into_response(),
        Err(e) => crate::error::problem_response(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not ready: {e:#}"),
        ),
    }
}

/// Prometheus text exposition.
#[utoipa::path(get, path = "/metrics", tag = "status", responses((status = 200, content_type = "text/plain")))]
pub async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.metrics.render(),
    )
}

/// Counters per area for the caller's tenant; each area adds its own section.
#[utoipa::path(get, path = "/api/v1/status/summary", tag = "status",
    responses((status = 200, body = Object)), security(("dash_key" = [])))]
pub async fn summary(State(state): State<AppState>, caller: Caller) -> ApiResult<Json<Value>> {
    caller
        .require(&state, Role::Readonly, "status.read")
        .await?;
    let store = &state.store;
    let audit_size = crate::audit::size(store).await?;
    let keys_active: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM api_keys WHERE tenant_id = $1 AND revoked_at IS NULL",
    )
    .bind(caller.tenant())
    .fetch_one(store.reader())
    .await?;
    let mut out = Map::new();
    out.insert(
        "server".into(),
        json!({
            "version": env!("CARGO_PKG_VERSION"),
            "uptime_s": state.started_at.elapsed().as_secs(),
            "replica_id": state.cfg.replica_id,
            "database": match store.dialect() { crate::store::Dialect::Sqlite => "sqlite", crate::store::Dialect::Postgres => "postgres" },
            "tenant": caller.tenant(),
        }),
    );
    out.insert("audit".into(), json!({ "records": audit_size }));
    out.insert("keys".into(), json!({ "active": keys_active }));
    let providers = state
        .summaries
        .read()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    for p in providers {
        let v = match p.summary(&state, caller.tenant()).await {
            Ok(v) => v,
            Err(e) => json!({ "error": format!("{e:#}") }),
        };
        out.insert(p.area().into(), v);
    }
    Ok(Json(Value::Object(out)))
}
