//! `/api/v1/marketplace/*`: list the modules with this tenant's state; toggle one.

use axum::extract::State;
use axum::Json;
use serde::Deserialize;
use utoipa::ToSchema;

use super::{Marketplace, ModuleList, Toggled};
use crate::api::extract::ApiJson;
use crate::app::AppState;
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::model::Role;

/// Every optional module: description, on or off for this tenant and fleet-wide, who
/// changed it and when, and the routes and jobs it brings.
#[utoipa::path(get, path = "/api/v1/marketplace/list", tag = "marketplace",
    responses((status = 200, body = ModuleList), (status = 401), (status = 403)),
    extensions(("x-min-role" = json!("readonly"))),
    security(("dash_key" = [])))]
pub async fn list(
    State(state): State<AppState>,
    State(m): State<Marketplace>,
    caller: Caller,
) -> ApiResult<Json<ModuleList>> {
    caller
        .require(&state, Role::Readonly, "marketplace.read")
        .await?;
    Ok(Json(m.list(&state, caller.tenant()).await?))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ToggleRequest {
    /// A module name from `GET /api/v1/marketplace/list`.
    #[schema(schema_with = module_name_schema)]
    pub module: String,
    pub enabled: bool,
    /// Why (1..=500 characters, not only spaces); kept in the audit record and the license log.
    #[schema(min_length = 1, max_length = 500, pattern = "\\S")]
    pub reason: String,
}

/// The module names, as an enum (they come from the area list).
fn module_name_schema() -> utoipa::openapi::Object {
    utoipa::openapi::ObjectBuilder::new()
        .schema_type(utoipa::openapi::Type::String)
        .enum_values(Some(crate::area::module_names()))
        .build()
}

/// Turn a module on or off for the caller's tenant (admin). Audited; logged to
/// `marketplace.ndjson` as a license event.
#[utoipa::path(post, path = "/api/v1/marketplace/toggle", tag = "marketplace",
    request_body(content = ToggleRequest, example = json!({"module": "alerts", "enabled": true, "reason": "on-call needs paging"})),
    responses((status = 200, body = Toggled), (status = 401), (status = 403), (status = 422)),
    extensions(("x-min-role" = json!("admin"))),
    security(("dash_key" = [])))]
pub async fn toggle(
    State(state): State<AppState>,
    State(m): State<Marketplace>,
    caller: Caller,
    ApiJson(req): ApiJson<ToggleRequest>,
) -> ApiResult<Json<Toggled>> {
    caller
        .require(&state, Role::Admin, "marketplace.toggle")
        .await?;
    let reason = check_reason(&req.reason)?;
    let t = m
        .set(super::Change {
            tenant: caller.tenant(),
            module: &req.module,
            enabled: req.enabled,
            actor: &caller.key_id,
            reason,
            request_id: &caller.request_id,
            via: "api",
        })
        .await?;
    Ok(Json(t))
}

/// A reason is required: the license log must say why a tenant lost or gained a module.
pub fn check_reason(reason: &str) -> ApiResult<&str> {
    let r = reason.trim();
    if r.is_empty() {
        return Err(ApiError::Unprocessable(
            "reason must say why (1 to 500 characters)".into(),
        ));
    }
    if r.chars().count() > 500 {
        return Err(ApiError::Unprocessable(format!(
            "reason must be at most 500 characters, got {}",
            r.chars().count()
        )));
    }
    Ok(r)
}
