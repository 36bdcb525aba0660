//! `/api/v1/compliance/*` and `/api/v1/gdpr/*`.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::gdpr::{check_subject, GdprDeleteResponse, GdprExportResponse};
use super::webhook::{self, HookAccepted, HookList, Refused, Rejection, SignedHeaders, Stored};
use super::Compliance;
use crate::api::extract::{bounded, ApiJson, ApiQuery};
use crate::api::middleware::RequestId;
use crate::app::AppState;
use crate::area::{EvidencePeriod, EvidenceRequest, GdprRequest};
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::model::Role;
use crate::util::now_ms;

/// Receive a compliance event signed per Standard Webhooks (`webhook-id`,
/// `webhook-timestamp`, `webhook-signature: v1,<base64 HMAC-SHA256>`), no API key. The
/// secret that signed it names the tenant. 401 for a bad signature, a timestamp more than
/// `[compliance] webhook_tolerance_secs` (300) away, or an id already received; each
/// refusal is audited (`compliance.webhook`, outcome `denied`).
#[utoipa::path(post, path = "/api/v1/compliance/webhook", tag = "compliance",
    params(
        ("webhook-id" = String, Header, description = "Unique message id (dedupe key)", example = "msg_2a9Kd0ZQ1"),
        ("webhook-timestamp" = i64, Header, description = "Unix seconds when the message was signed", example = 1764590400),
        ("webhook-signature" = String, Header, description = "Space-separated `v1,<base64>` signatures", example = "v1,K5oZfzN95Z9UVu1EsfQmfVNQhnkZ2pj9o9NDN/H/pI4="),
    ),
    request_body(content = Object, description = "The event (JSON)", example = json!({"type": "policy.acknowledged", "timestamp": "2026-12-01T12:00:00Z", "data": {"policy": "acceptable-use", "version": 3}})),
    responses((status = 200, body = HookAccepted, example = json!({"accepted": true, "webhook_id": "msg_2a9Kd0ZQ1", "received_at": "2026-12-01T12:00:00.120Z"})),
        (status = 400), (status = 401, description = "Bad signature, stale timestamp or replayed webhook-id (audited)"),
        (status = 413), (status = 422)))]
pub async fn webhook(
    State(c): State<Compliance>,
    State(state): State<AppState>,
    Extension(RequestId(rid)): Extension<RequestId>,
    peer: Option<Extension<axum::extract::ConnectInfo<std::net::SocketAddr>>>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Json<HookAccepted>> {
    let peer = crate::api::auth_failures::AuthFailures::addr_of(peer.map(|p| p.0 .0));
    let get = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let h = SignedHeaders {
        id: get("webhook-id"),
        timestamp: get("webhook-timestamp"),
        signature: get("webhook-signature"),
    };
    let tolerance = c.settings.tolerance_secs;
    let unauthorized = |r: &Rejection| ApiError::Unauthorized(r.detail(tolerance));
    let (secret, id, ts) =
        match webhook::authenticate(&c.settings.secrets, h, &body, now_ms(), tolerance) {
            Ok(v) => v,
            Err(Refused { rejection, signer }) => {
                // A stale but genuine message names its tenant through its signer.
                c.reject(
                    peer,
                    &rejection,
                    signer.map(|s| s.tenant.as_str()),
                    signer.map(|s| s.name.as_str()),
                    h.id,
                    &rid,
                )
                .await;
                return Err(unauthorized(&rejection));
            }
        };
    let payload: serde_json::Value = serde_json::from_slice(&body)
        .map_err(|e| ApiError::Unprocessable(format!("the body must be a JSON document: {e}")))?;
    if crate::api::extract::nul_at(&payload, "").is_some() {
        return Err(ApiError::Unprocessable(
            "the body holds a NUL character, which cannot be stored".into(),
        ));
    }
    // The module can be off for the secret's tenant.
    if let Some(m) = state.service::<crate::marketplace::Marketplace>() {
        if !m.enabled(&secret.tenant, "compliance").await? {
            return Err(ApiError::ModuleDisabled {
                module: "compliance".into(),
                scope: "tenant",
                detail: "the compliance module is disabled for this webhook's tenant".into(),
            });
        }
    }
    match c.store_event(secret, &id, ts, &body, payload, &rid).await? {
        Stored::Accepted(a) => Ok(Json(a)),
        Stored::Replayed(r) => {
            c.reject(
                peer,
                &r,
                Some(&secret.tenant),
                Some(&secret.name),
                Some(&id),
                &rid,
            )
            .await;
            Err(unauthorized(&r))
        }
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct HooksQuery {
    /// Rows, 1–200 (default 50).
    #[param(minimum = 1, maximum = 200, example = 50)]
    pub limit: Option<i64>,
    /// Only events whose payload `type` is this.
    #[param(example = "policy.acknowledged")]
    pub event_type: Option<String>,
}

/// The tenant's received compliance events, newest first (operator or above).
#[utoipa::path(get, path = "/api/v1/compliance/hooks", tag = "compliance", params(HooksQuery),
    responses((status = 200, body = HookList, example = json!({"hooks": [{"webhook_id": "msg_2a9Kd0ZQ1", "secret_name": "primary", "event_type": "policy.acknowledged", "sent_at": "2026-12-01T12:00:00.000Z", "received_at": "2026-12-01T12:00:00.120Z", "body_sha256": "9f2c…", "payload": {"type": "policy.acknowledged", "data": {"policy": "acceptable-use"}}}]})),
        (status = 400), (status = 401), (status = 403), (status = 422)),
    extensions(("x-min-role" = json!("operator"))),
    security(("dash_key" = [])))]
pub async fn list_hooks(
    State(state): State<AppState>,
    State(c): State<Compliance>,
    caller: Caller,
    ApiQuery(q): ApiQuery<HooksQuery>,
) -> ApiResult<Json<HookList>> {
    caller
        .require(&state, Role::Operator, "compliance.read")
        .await?;
    let limit = bounded("limit", q.limit, 50, 1..=200)?;
    let hooks = c
        .list_hooks(caller.tenant(), q.event_type.as_deref(), limit)
        .await?;
    Ok(Json(HookList { hooks }))
}

/// `POST /api/v1/compliance/evidence/export` body.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EvidenceExport {
    /// Start of the period: RFC 3339, or a date (its first millisecond, UTC).
    #[schema(example = "2026-11-01")]
    pub from: String,
    /// End of the period (inclusive): RFC 3339, or a date (its last millisecond, UTC).
    #[schema(example = "2026-11-30")]
    pub to: String,
}

/// Parse `from`/`to`: RFC 3339, or `YYYY-MM-DD` (start or end of that UTC day).
pub fn parse_bound(name: &str, v: &str, end_of_day: bool) -> ApiResult<i64> {
    let v = v.trim();
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(v) {
        return Ok(t.timestamp_millis());
    }
    if let Ok(d) = chrono::NaiveDate::parse_from_str(v, "%Y-%m-%d") {
        let start = d
            .and_hms_opt(0, 0, 0)
            .map(|t| t.and_utc().timestamp_millis())
            .unwrap_or_default();
        return Ok(if end_of_day {
            start + 86_400_000 - 1
        } else {
            start
        });
    }
    Err(ApiError::Unprocessable(format!(
        "{name} must be an RFC 3339 time like 2026-12-01T00:00:00Z or a date like 2026-12-01"
    )))
}

/// A zip of the period's evidence for the caller's tenant (admin): the audit records
/// (NDJSON) with the signed tree head, inclusion and consistency proofs; the access
/// review; the change log of confirmed ops commands; security reports, DR proofs and SLO
/// reports when those areas run; and `evidence.json` (every section, the SHA-256 of every
/// file, the period, the tree head), Ed25519-signed. Check it offline with `echopilot
/// evidence verify FILE.zip`.
#[utoipa::path(post, path = "/api/v1/compliance/evidence/export", tag = "compliance",
    request_body(content = EvidenceExport, example = json!({"from": "2026-11-01", "to": "2026-11-30T23:59:59Z"})),
    responses((status = 200, description = "The bundle (application/zip; Content-Disposition names it; X-Evidence-Sha256 is the SHA-256 of its evidence.json)", content_type = "application/zip", body = Vec<u8>),
        (status = 400), (status = 401), (status = 403), (status = 413), (status = 415), (status = 422)),
    extensions(("x-min-role" = json!("admin"))),
    security(("dash_key" = [])))]
pub async fn export_evidence(
    State(state): State<AppState>,
    State(c): State<Compliance>,
    caller: Caller,
    ApiJson(body): ApiJson<EvidenceExport>,
) -> ApiResult<Response> {
    caller
        .require(&state, Role::Admin, "compliance.evidence.export")
        .await?;
    let from = parse_bound("from", &body.from, false)?;
    let to = parse_bound("to", &body.to, true)?;
    if from > to {
        return Err(ApiError::Unprocessable(format!(
            "from ({}) is after to ({})",
            body.from, body.to
        )));
    }
    let max_days = c.settings.evidence_max_days;
    if to - from > max_days * 86_400_000 {
        return Err(ApiError::Unprocessable(format!(
            "the period is longer than [compliance] evidence_max_days ({max_days} days); export it in parts"
        )));
    }
    let req = EvidenceRequest {
        tenant: caller.tenant().to_string(),
        period: EvidencePeriod {
            from_ms: from,
            to_ms: to,
        },
        max_records: c.settings.evidence_max_records,
        actor: caller.key_id.clone(),
        request_id: caller.request_id.clone(),
    };
    let bundle = c.export_evidence(&state, &req).await?;
    let manifest_sha = {
        use sha2::Digest;
        hex::encode(sha2::Sha256::digest(
            serde_json::to_vec_pretty(&bundle.manifest).unwrap_or_default(),
        ))
    };
    let mut resp = (StatusCode::OK, bundle.zip).into_response();
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/zip"),
    );
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{}\"", bundle.file_name))
    {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    if let Ok(v) = HeaderValue::from_str(&manifest_sha) {
        h.insert("x-evidence-sha256", v);
    }
    Ok(resp)
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct SubjectQuery {
    /// The data subject: an analytics / AI `distinct_id`, a key label, or a key id.
    #[param(
        example = "user-4711",
        min_length = 1,
        max_length = 320,
        pattern = "^[^\\x00-\\x1f\\x7f-\\x9f]*[^\\x00-\\x20\\x7f-\\x9f][^\\x00-\\x1f\\x7f-\\x9f]*$"
    )]
    pub subject: String,
}

fn gdpr_request(caller: &Caller, subject: String) -> GdprRequest {
    GdprRequest {
        tenant: caller.tenant().to_string(),
        subject,
        actor: caller.key_id.clone(),
        request_id: caller.request_id.clone(),
    }
}

/// Everything the tenant's areas hold about a subject, grouped by area (admin). Audited
/// as `gdpr.export` with counts only.
#[utoipa::path(get, path = "/api/v1/gdpr/export", tag = "compliance", params(SubjectQuery),
    responses((status = 200, body = GdprExportResponse, example = json!({"subject": "user-4711", "tenant": "default", "exported_at": "2026-12-01T12:00:00.000Z", "records": 2, "areas": {"analytics": {"about": "analytics events whose distinct_id is the subject", "records": 2, "data": {"events": [{"uuid": "0193…", "event": "signup", "ts": "2026-11-30T09:00:00.000Z", "feature": null, "properties": {}}]}}}})),
        (status = 400), (status = 401), (status = 403), (status = 422)),
    extensions(("x-min-role" = json!("admin"))),
    security(("dash_key" = [])))]
pub async fn gdpr_export(
    State(state): State<AppState>,
    State(c): State<Compliance>,
    caller: Caller,
    ApiQuery(q): ApiQuery<SubjectQuery>,
) -> ApiResult<Json<GdprExportResponse>> {
    caller.require(&state, Role::Admin, "gdpr.export").await?;
    let subject = check_subject(&q.subject)?;
    let req = gdpr_request(&caller, subject);
    Ok(Json(c.gdpr_export(&state, &req).await?))
}

/// Delete or anonymise everything the tenant's areas hold about a subject (admin): one
/// transaction per area, each with its `gdpr.delete` audit record (counts, never the
/// subject). Idempotent: a repeat answers `nothing_left: true`.
#[utoipa::path(delete, path = "/api/v1/gdpr/delete", tag = "compliance", params(SubjectQuery),
    responses((status = 200, body = GdprDeleteResponse, example = json!({"tenant": "default", "nothing_left": false, "detail": "removed or anonymised 3 records in 2 areas", "removed": 3, "areas": {"analytics": {"deleted": {"events": 2, "daily_users": 0, "funnel_entries": 0}, "anonymised": {}}, "keys": {"deleted": {}, "anonymised": {"key_labels": 1}}}, "request_id": "7f3c…"})),
        (status = 400), (status = 401), (status = 403), (status = 422)),
    extensions(("x-min-role" = json!("admin"))),
    security(("dash_key" = [])))]
pub async fn gdpr_delete(
    State(state): State<AppState>,
    State(c): State<Compliance>,
    caller: Caller,
    ApiQuery(q): ApiQuery<SubjectQuery>,
) -> ApiResult<Json<GdprDeleteResponse>> {
    caller.require(&state, Role::Admin, "gdpr.delete").await?;
    let subject = check_subject(&q.subject)?;
    let req = gdpr_request(&caller, subject);
    Ok(Json(c.gdpr_delete(&state, &req).await?))
}
