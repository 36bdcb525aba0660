//! `GET /api/v1/ops/verbs`, `POST /api/v1/ops/command`.

use axum::extract::State;
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::command::{self, CommandRequest, CommandResponse};
use super::VerbSpec;
use crate::api::extract::ApiJson;
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
