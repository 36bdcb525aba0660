//! Audit log routes: chain head, records, receipts, consistency proofs, verification.

use axum::extract::State;
use axum::Json;
use serde::Deserialize;
use utoipa::IntoParams;

use crate::api::extract::{ApiPath, ApiQuery};
use crate::app::AppState;
use crate::audit::heads::Heads;
use crate::audit::{self, ProofError};
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::model::{
    AuditChain, AuditConsistency, AuditHead, AuditHeads, AuditReceipt, AuditRecords, AuditVerify,
    Role,
};

impl From<ProofError> for ApiError {
    fn from(e: ProofError) -> Self {
        match e {
            ProofError::Invalid(m) => ApiError::Unprocessable(m),
            ProofError::NotFound(seq) => {
                ApiError::NotFound(format!("audit record {seq} does not exist"))
            }
            ProofError::Db(e) => e.into(),
        }
    }
}

/// Tree size, root, and the latest record (shown only if it is the caller's tenant's,
/// or to a superadmin: size and root reveal nothing about other tenants).
#[utoipa::path(get, path = "/api/v1/audit/chain", tag = "audit",
    responses((status = 200, body = AuditChain)), extensions(("x-min-role" = json!("readonly"))),
    security(("dash_key" = [])))]
pub async fn chain(State(state): State<AppState>, caller: Caller) -> ApiResult<Json<AuditChain>> {
    caller.require(&state, Role::Readonly, "audit.read").await?;
    let mut c = audit::chain(&state.store).await?;
    if !caller.is_superadmin()
        && c.head
            .as_ref()
            .is_some_and(|h| h.tenant_id != caller.tenant)
    {
        c.head = None;
    }
    Ok(Json(c))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct RecordsQuery {
    /// 1–1000, default 100.
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<i64>,
    /// Only records with seq > after, ascending (for tailing). Without it: newest first.
    #[param(minimum = -1)]
    pub after: Option<i64>,
    /// Exact action name, e.g. `keys.create`.
    pub action: Option<String>,
}

/// Audit records of the caller's tenant.
#[utoipa::path(get, path = "/api/v1/audit/records", tag = "audit", params(RecordsQuery),
    responses((status = 200, body = AuditRecords), (status = 422)), extensions(("x-min-role" = json!("readonly"))),
    security(("dash_key" = [])))]
pub async fn records(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<RecordsQuery>,
) -> ApiResult<Json<AuditRecords>> {
    caller.require(&state, Role::Readonly, "audit.read").await?;
    let limit = crate::api::extract::bounded("limit", q.limit, 100, 1..=1000)?;
    if q.after.is_some_and(|a| a < -1) {
        return Err(ApiError::Unprocessable("after must be ≥ -1".into()));
    }
    let records = audit::list_records(
        &state.store,
        Some(caller.tenant()),
        q.after,
        q.action.as_deref(),
        limit,
    )
    .await?;
    Ok(Json(AuditRecords { records }))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ReceiptQuery {
    /// Tree size to prove against (> seq, ≤ the current size); default: the current size.
    #[param(minimum = 1)]
    pub size: Option<i64>,
}

/// A record, its leaf hash and its inclusion proof against the tree of `size`.
#[utoipa::path(get, path = "/api/v1/audit/receipt/{seq}", tag = "audit",
    params(("seq" = i64, Path, minimum = 0, description = "record seq (leaf index)", example = 0), ReceiptQuery),
    responses((status = 200, body = AuditReceipt), (status = 404), (status = 422)),
    extensions(("x-min-role" = json!("readonly"))),
    security(("dash_key" = [])))]
pub async fn receipt(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(seq): ApiPath<i64>,
    ApiQuery(q): ApiQuery<ReceiptQuery>,
) -> ApiResult<Json<AuditReceipt>> {
    caller.require(&state, Role::Readonly, "audit.read").await?;
    if !caller.is_superadmin() {
        // Another tenant's record is reported as absent, not forbidden.
        match audit::get_record(&state.store, seq).await? {
            Some(r) if r.tenant_id == caller.tenant => {}
            _ => {
                return Err(ApiError::NotFound(format!(
                    "audit record {seq} does not exist"
                )))
            }
        }
    }
    Ok(Json(audit::receipt(&state.store, seq, q.size).await?))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ConsistencyQuery {
    /// 1 ≤ from ≤ to.
    #[param(minimum = 1, example = 1)]
    pub from: i64,
    /// ≤ the current tree size.
    #[param(minimum = 1, example = 1)]
    pub to: i64,
}

/// RFC 6962 consistency proof between two tree sizes.
#[utoipa::path(get, path = "/api/v1/audit/consistency", tag = "audit", params(ConsistencyQuery),
    responses((status = 200, body = AuditConsistency), (status = 422)), extensions(("x-min-role" = json!("readonly"))),
    security(("dash_key" = [])))]
pub async fn consistency(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<ConsistencyQuery>,
) -> ApiResult<Json<AuditConsistency>> {
    caller.require(&state, Role::Readonly, "audit.read").await?;
    Ok(Json(audit::consistency(&state.store, q.from, q.to).await?))
}

/// Recompute the tree from the stored records, then check it against the latest signed
/// tree head with a consistency proof; names the first record that no longer matches, or
/// the head a truncated or rewritten history contradicts.
#[utoipa::path(get, path = "/api/v1/audit/verify", tag = "audit",
    responses((status = 200, body = AuditVerify)), extensions(("x-min-role" = json!("readonly"))),
    security(("dash_key" = [])))]
pub async fn verify(State(state): State<AppState>, caller: Caller) -> ApiResult<Json<AuditVerify>> {
    caller.require(&state, Role::Readonly, "audit.read").await?;
    let v = audit::verify(&state.store).await?;
    if !v.ok {
        tracing::error!(target: "security", first_bad_seq = v.first_bad_seq, reason = v.reason.as_deref().unwrap_or(""), "audit log verification FAILED");
    }
    Ok(Json(v))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct HeadsQuery {
    /// 1–1000, default 100.
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<i64>,
}

/// Published signed tree heads (newest first) and the key that verifies them.
#[utoipa::path(get, path = "/api/v1/audit/heads", tag = "audit", params(HeadsQuery),
    responses((status = 200, body = AuditHeads), (status = 422)), extensions(("x-min-role" = json!("readonly"))),
    security(("dash_key" = [])))]
pub async fn list_heads(
    State(state): State<AppState>,
    State(heads): State<Heads>,
    caller: Caller,
    ApiQuery(q): ApiQuery<HeadsQuery>,
) -> ApiResult<Json<AuditHeads>> {
    caller.require(&state, Role::Readonly, "audit.read").await?;
    let limit = crate::api::extract::bounded("limit", q.limit, 100, 1..=1000)?;
    Ok(Json(AuditHeads {
        public_key: heads.public_key(),
        algorithm: "ed25519".into(),
        message_format: "echopilot-audit-tree-head:v1\\n<tree_size>\\n<root hex>\\n<ts_ms>".into(),
        heads: audit::heads::list(&state.store, limit).await?,
    }))
}

/// Publish a signed tree head of the log as it is now (admin).
#[utoipa::path(post, path = "/api/v1/audit/heads", tag = "audit",
    responses((status = 201, body = AuditHead)), extensions(("x-min-role" = json!("admin"))),
    security(("dash_key" = [])))]
pub async fn publish_head(
    State(state): State<AppState>,
    State(heads): State<Heads>,
    caller: Caller,
) -> ApiResult<(axum::http::StatusCode, Json<AuditHead>)> {
    caller
        .require(&state, Role::Admin, "audit.head.publish")
        .await?;
    // The publication is itself audited, and the head covers that record.
    audit::record(
        &state.store,
        audit::NewAudit::new(
            caller.tenant(),
            &caller.key_id,
            "audit.head.publish",
            "audit_heads",
            "ok",
            &caller.request_id,
        ),
    )
    .await?;
    let head = heads.publish(&state.store).await?;
    Ok((axum::http::StatusCode::CREATED, Json(head)))
}
