//! Key and tenant management: `/api/v1/keys`, `/api/v1/tenants`.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use utoipa::IntoParams;

use crate::api::extract::{ApiJson, ApiPath, ApiQuery};
use crate::app::AppState;
use crate::auth::{self, Actor, Caller, RevokeOutcome};
use crate::error::{ApiError, ApiResult};
use crate::model::{CreateKeyRequest, CreatedKey, KeyInfo, KeyList, Role, TenantList};

/// Create an API key. The secret is in this response only.
#[utoipa::path(post, path = "/api/v1/keys", tag = "keys",
    request_body(content = CreateKeyRequest, example = json!({"role": "readonly", "tenant": "default", "name": "dashboard"})),
    responses((status = 201, body = CreatedKey), (status = 400), (status = 401), (status = 403), (status = 422)),
    extensions(("x-min-role" = json!("admin"))),
    security(("dash_key" = [])))]
pub async fn create_key(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(req): ApiJson<CreateKeyRequest>,
) -> ApiResult<(StatusCode, Json<CreatedKey>)> {
    caller.require(&state, Role::Admin, "keys.create").await?;
    let role = Role::parse(&req.role).ok_or_else(|| {
        ApiError::Unprocessable(format!(
            "unknown role {:?}; expected one of superadmin, admin, operator, readonly, integration, ingest",
            req.role
        ))
    })?;
    if !auth::valid_tenant_id(&req.tenant) {
        return Err(ApiError::Unprocessable(
            "tenant must be 1-64 characters of a-z, 0-9, '-' or '_'".into(),
        ));
    }
    if req.tenant == crate::queue::SYSTEM_TENANT {
        return Err(ApiError::Unprocessable(format!(
            "tenant {:?} is reserved for the platform's own queue jobs",
            crate::queue::SYSTEM_TENANT
        )));
    }
    if let Some(n) = &req.name {
        if n.chars().count() > 100 || n.chars().any(char::is_control) {
            return Err(ApiError::Unprocessable(
                "name must be at most 100 printable characters".into(),
            ));
        }
    }
    if !caller.is_superadmin() {
        // Admins manage their own tenant only, and cannot mint a more powerful key.
        let reason = if req.tenant != caller.key_tenant {
            Some(format!(
                "an admin key may only create keys for its own tenant {:?}",
                caller.key_tenant
            ))
        } else if role.rank() > caller.role.rank() {
            Some(format!("a {} key cannot create a {role} key", caller.role))
        } else {
            None
        };
        if let Some(reason) = reason {
            let detail = serde_json::json!({"reason": reason, "requested_role": role});
            auth::deny(&state, &caller, "keys.create", &req.tenant, detail).await;
            return Err(ApiError::Forbidden(reason));
        }
    }
    let created = auth::create_key(
        &state.store,
        role,
        &req.tenant,
        req.name.as_deref(),
        None,
        Actor {
            id: &caller.key_id,
            request_id: &caller.request_id,
        },
    )
    .await?;
    tracing::info!(target: "security", key_id = %created.id, role = %role, tenant = %created.tenant, "API key created");
    Ok((StatusCode::CREATED, Json(created)))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ListKeysQuery {
    /// Superadmin only: list keys of every tenant.
    pub all: Option<bool>,
}

/// List keys of the tenant (never secrets).
#[utoipa::path(get, path = "/api/v1/keys", tag = "keys", params(ListKeysQuery),
    responses((status = 200, body = KeyList), (status = 401), (status = 403)),
    extensions(("x-min-role" = json!("admin"))),
    security(("dash_key" = [])))]
pub async fn list_keys(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<ListKeysQuery>,
) -> ApiResult<Json<KeyList>> {
    caller.require(&state, Role::Admin, "keys.list").await?;
    let tenant = if q.all == Some(true) && caller.is_superadmin() {
        None
    } else {
        Some(caller.tenant())
    };
    let keys = auth::list_keys(&state.store, tenant).await?;
    Ok(Json(KeyList { keys }))
}

/// Revoke a key; takes effect on the next request. Revoking twice is harmless.
#[utoipa::path(delete, path = "/api/v1/keys/{id}", tag = "keys",
    params(("id" = String, Path, description = "key id, e.g. key_0123abcd", example = "key_00000000")),
    responses((status = 200, body = KeyInfo), (status = 404), (status = 409), (status = 403)),
    extensions(("x-min-role" = json!("admin"))),
    security(("dash_key" = [])))]
pub async fn revoke_key(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<KeyInfo>> {
    caller.require(&state, Role::Admin, "keys.revoke").await?;
    let scope = if caller.is_superadmin() {
        None
    } else {
        Some(caller.key_tenant.as_str())
    };
    // Never lock everyone out: keep at least one active superadmin key.
    let target = auth::list_keys(&state.store, scope)
        .await?
        .into_iter()
        .find(|k| k.id == id);
    if let Some(k) = &target {
        // The rule that stops an admin from minting a more powerful key stops it from
        // revoking one too.
        if !caller.is_superadmin() && k.role.rank() > caller.role.rank() {
            let reason = format!("a {} key cannot revoke a {} key", caller.role, k.role);
            let detail =
                serde_json::json!({"reason": reason, "key_id": k.id, "target_role": k.role});
            auth::deny(&state, &caller, "keys.revoke", &k.tenant, detail).await;
            return Err(ApiError::Forbidden(reason));
        }
        if k.role == Role::Superadmin && k.revoked_at.is_none() {
            let active_supers = auth::list_keys(&state.store, None)
                .await?
                .into_iter()
                .filter(|k| k.role == Role::Superadmin && k.revoked_at.is_none())
                .count();
            if active_supers <= 1 {
                return Err(ApiError::Conflict(
                    "refusing to revoke the last active superadmin key; create another first"
                        .into(),
                ));
            }
        }
    }
    let actor = Actor {
        id: &caller.key_id,
        request_id: &caller.request_id,
    };
    match auth::revoke_key(&state.store, &id, scope, actor).await? {
        RevokeOutcome::Revoked(info) => {
            tracing::info!(target: "security", key_id = %info.id, "API key revoked");
            Ok(Json(info))
        }
        RevokeOutcome::AlreadyRevoked(info) => Ok(Json(info)),
        RevokeOutcome::NotFound => Err(ApiError::NotFound(format!("no key {id:?} in this tenant"))),
    }
}

/// Tenants visible to the caller (superadmin: all).
#[utoipa::path(get, path = "/api/v1/tenants", tag = "keys",
    responses((status = 200, body = TenantList), (status = 401)),
    extensions(("x-min-role" = json!("readonly"))),
    security(("dash_key" = [])))]
pub async fn list_tenants(
    State(state): State<AppState>,
    caller: Caller,
) -> ApiResult<Json<TenantList>> {
    caller
        .require(&state, Role::Readonly, "tenants.list")
        .await?;
    let only = (!caller.is_superadmin()).then_some(caller.key_tenant.as_str());
    Ok(Json(TenantList {
        tenants: auth::list_tenants(&state.store, only).await?,
    }))
}
