//! `/api/v1/selfheal/*`: the remediation library, history, and run-now.

use axum::extract::State;
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};

use super::{Action, Actor, Remediation, REMEDIATIONS};
use crate::api::extract::ApiQuery;
use crate::app::AppState;
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::model::Role;

#[derive(Debug, Serialize, ToSchema)]
pub struct RemediationList {
    pub remediations: Vec<Remediation>,
}

/// Every remediation with its safety tag.
#[utoipa::path(get, path = "/api/v1/selfheal/remediations", tag = "selfheal",
    responses((status = 200, body = RemediationList), (status = 401)),
    extensions(("x-min-role" = json!("readonly"))),
    security(("dash_key" = [])))]
pub async fn remediations(
    State(state): State<AppState>,
    caller: Caller,
) -> ApiResult<Json<RemediationList>> {
    caller
        .require(&state, Role::Readonly, "selfheal.read")
        .await?;
    Ok(Json(RemediationList {
        remediations: REMEDIATIONS.to_vec(),
    }))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct HistoryQuery {
    /// Only this remediation.
    #[param(schema_with = remediation_schema)]
    pub remediation: Option<String>,
    /// 1..=1000, default 100.
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<i64>,
}

/// The remediation names, as an enum.
fn remediation_schema() -> utoipa::openapi::Object {
    utoipa::openapi::ObjectBuilder::new()
        .schema_type(utoipa::openapi::Type::String)
        .enum_values(Some(REMEDIATIONS.iter().map(|r| r.name)))
        .build()
}

#[derive(Debug, Serialize, ToSchema)]
#[schema(as = SelfHealHistory)]
pub struct History {
    pub actions: Vec<Action>,
}

/// Past actions, newest first.
#[utoipa::path(get, path = "/api/v1/selfheal/history", tag = "selfheal", params(HistoryQuery),
    responses((status = 200, body = History), (status = 400), (status = 422)),
    extensions(("x-min-role" = json!("readonly"))),
    security(("dash_key" = [])))]
pub async fn history(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<HistoryQuery>,
) -> ApiResult<Json<History>> {
    caller
        .require(&state, Role::Readonly, "selfheal.read")
        .await?;
    let limit = crate::api::extract::bounded("limit", q.limit, 100, 1..=1000)?;
    if let Some(r) = q.remediation.as_deref() {
        if !REMEDIATIONS.iter().any(|x| x.name == r) {
            return Err(ApiError::Unprocessable(format!(
                "unknown remediation {r:?}"
            )));
        }
    }
    let actions = super::history(&state.store, q.remediation.as_deref(), limit).await?;
    Ok(Json(History { actions }))
}

/// Run the safe remediations now; each action is audited and logged.
#[utoipa::path(post, path = "/api/v1/selfheal/run", tag = "selfheal",
    responses((status = 200, body = Object), (status = 403)),
    extensions(("x-min-role" = json!("operator")), ("x-system" = json!(true))),
    security(("dash_key" = [])))]
pub async fn run(State(state): State<AppState>, caller: Caller) -> ApiResult<Json<Value>> {
    caller
        .require_system(&state, Role::Operator, "selfheal.run", "self-heal")
        .await?;
    let actor = Actor {
        tenant: caller.tenant().to_string(),
        id: caller.key_id.clone(),
        request_id: caller.request_id.clone(),
    };
    let report = super::run_as(&state, "api", &actor).await?;
    Ok(Json(report))
}
