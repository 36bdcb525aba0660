//! `/api/v1/security/*`. Scans read the server's own files, so starting one needs an
//! operator of the system tenant `default` (or a superadmin); reports belong to that
//! tenant and are read by its operators (another tenant's key finds none: 404).

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::{IntoParams, ToSchema};

use super::model::{Report, ReportList, SecurityStatus};
use super::Security;
use crate::api::extract::ApiQuery;
use crate::app::AppState;
use crate::audit::{self, NewAudit};
use crate::auth::{Caller, DEFAULT_TENANT};
use crate::error::{ApiError, ApiResult};
use crate::jobs::{Begin, Trigger};
use crate::model::Role;

/// A scan enqueued as a run of the `security_scan` job.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ScanStarted {
    /// The job run id (`GET /api/v1/jobs/runs/{id}/ledger` has its error ledger).
    pub run_id: String,
    /// The id its report will have (`GET /api/v1/security/reports/{id}` once done).
    pub report_id: String,
    pub job: String,
    /// True when a scan was already in progress: the ids are that run's.
    pub already_running: bool,
}

/// What one scan covers (`POST /api/v1/security/scan`). Every member is optional and an
/// empty body is the same as `{}`: every configured target, history as configured.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ScanRequest {
    /// Some of `[security] paths`, written exactly as configured (`GET
    /// /api/v1/security/status` lists them as `targets`); default: all of them. A path
    /// that is not configured is refused (422), so a request cannot make the server read
    /// anything else.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(min_items = 1, max_items = 100, example = json!(["/srv/app"]))]
    pub paths: Option<Vec<String>>,
    /// Search the git history of the targets that are repositories (true) or not (false),
    /// this once; default `[security] git_history`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub git_history: Option<bool>,
}

impl ScanRequest {
    /// Check it against `[security] paths`: `Err` is the 422's detail.
    pub fn check(&self, configured: &[String]) -> Result<ScanRequest, String> {
        let mut out = self.clone();
        if let Some(paths) = &self.paths {
            if paths.is_empty() {
                return Err("paths is empty: leave it out to scan every configured target".into());
            }
            if paths.len() > 100 {
                return Err(format!("paths has {} entries; at most 100", paths.len()));
            }
            let mut picked: Vec<String> = Vec::new();
            for p in paths {
                if !configured.contains(p) {
                    return Err(format!(
                        "path {:?} is not one of [security] paths ({}): only configured targets are scanned",
                        crate::util::truncate_chars(p, 200),
                        if configured.is_empty() {
                            "none is configured".to_string()
                        } else {
                            format!("{} configured, listed as targets in GET /api/v1/security/status", configured.len())
                        }
                    ));
                }
                if !picked.contains(p) {
                    picked.push(p.clone());
                }
            }
            out.paths = Some(picked);
        }
        Ok(out)
    }

    /// The request as the job's arguments (`None` when it asks for nothing special).
    pub fn job_args(&self) -> Option<serde_json::Value> {
        (self != &ScanRequest::default()).then(|| json!(self))
    }
}

/// The newest report (null before the first scan).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct LatestReport {
    pub report: Option<Report>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ReportsQuery {
    /// 1–100, default 20.
    #[param(minimum = 1, maximum = 100, example = 20)]
    pub limit: Option<i64>,
}

async fn require_read(state: &AppState, caller: &Caller) -> ApiResult<()> {
    caller.require(state, Role::Operator, "security.read").await
}

/// Enqueue a run of `security_scan` for `key_id`, audited. Returns the run id, the
/// report id and whether it is a run already in progress.
pub async fn enqueue(
    state: &AppState,
    key_id: &str,
    request_id: &str,
    via: &str,
    req: &ScanRequest,
) -> ApiResult<(String, bool)> {
    let jobs = state
        .jobs()
        .ok_or_else(|| ApiError::Unavailable("the scheduler is not started".into()))?;
    let running = || async {
        let last = crate::jobs::list_runs(&state.store, Some(super::JOB), 5).await?;
        Ok::<_, ApiError>(
            last.into_iter()
                .find(|r| r.outcome == "running")
                .map(|r| r.id),
        )
    };
    if let Some(run) = running().await? {
        return Ok((run, true));
    }
    let begin = jobs
        .run_with(state, super::JOB, Trigger::Manual, req.job_args())
        .await?;
    let (outcome, run_id, already) = match begin {
        Begin::Started(id) => ("ok", id, false),
        Begin::Overlap { skipped_id } => match running().await? {
            Some(id) => ("already_running", id, true),
            None => ("skipped", skipped_id, true),
        },
    };
    let rec = NewAudit::new(
        DEFAULT_TENANT,
        key_id,
        "security.scan",
        super::JOB,
        outcome,
        request_id,
    )
    .detail(
        json!({"run_id": run_id, "via": via, "paths": req.paths, "git_history": req.git_history}),
    );
    audit::record(&state.store, rec).await?;
    tracing::info!(target: "security", job_run_id = %run_id, key_id, via, outcome, "scan requested");
    Ok((run_id, already))
}

/// Start a scan of `[security] paths` now: 202 with the run id and the report id. The
/// body is optional: `{"paths": [...]}` scans some of the configured targets (any other
/// path is 422, naming it), `{"git_history": bool}` searches the git history or not this
/// once. While a scan runs, the answer is that run's (`already_running`), whatever was asked.
#[utoipa::path(post, path = "/api/v1/security/scan", tag = "security",
    // The example must be valid on any server (the tenant matrix sends it): paths depend on
    // the server's [security] paths, so it only switches the history search off.
    request_body(content = Option<ScanRequest>, description = "Optional: which configured targets (`paths`, e.g. [\"/srv/app\"]; each must be one of [security] paths), and whether to search git history; empty body = every target as configured",
        example = json!({"git_history": false})),
    responses((status = 202, body = ScanStarted, example = json!({"run_id": "run_00000000000000000000", "report_id": "scan_00000000000000000000", "job": "security_scan", "already_running": false})),
        (status = 400), (status = 401), (status = 403), (status = 404), (status = 413), (status = 415), (status = 422), (status = 503)),
    extensions(("x-min-role" = json!("operator")), ("x-system" = json!(true))),
    security(("dash_key" = [])))]
pub async fn start_scan(
    State(state): State<AppState>,
    State(sec): State<Security>,
    caller: Caller,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<(StatusCode, Json<ScanStarted>)> {
    caller
        .require_system(
            &state,
            Role::Operator,
            "security.scan",
            "the security scanner",
        )
        .await?;
    let req = crate::api::extract::optional_json::<ScanRequest>(&headers, body)?
        .check(&sec.section().paths)
        .map_err(ApiError::Unprocessable)?;
    let (run_id, already_running) =
        enqueue(&state, &caller.key_id, &caller.request_id, "api", &req).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(ScanStarted {
            report_id: super::report_id_for_run(&run_id),
            run_id,
            job: super::JOB.into(),
            already_running,
        }),
    ))
}

/// The tenant's reports, newest first (counts only).
#[utoipa::path(get, path = "/api/v1/security/reports", tag = "security", params(ReportsQuery),
    responses((status = 200, body = ReportList), (status = 400), (status = 401), (status = 403), (status = 404), (status = 422)),
    extensions(("x-min-role" = json!("operator"))),
    security(("dash_key" = [])))]
pub async fn list_reports(
    State(state): State<AppState>,
    State(sec): State<Security>,
    caller: Caller,
    ApiQuery(q): ApiQuery<ReportsQuery>,
) -> ApiResult<Json<ReportList>> {
    require_read(&state, &caller).await?;
    let limit = crate::api::extract::bounded("limit", q.limit, 20, 1..=100)?;
    Ok(Json(ReportList {
        reports: sec.list(caller.tenant(), limit).await?,
    }))
}

/// The newest report: packages, vulnerabilities (most severe first), redacted secret
/// findings, counts, unreadable files and the SBOM; `report` is null before any scan.
#[utoipa::path(get, path = "/api/v1/security/reports/latest", tag = "security",
    responses((status = 200, body = LatestReport), (status = 401), (status = 403), (status = 404)),
    extensions(("x-min-role" = json!("operator"))),
    security(("dash_key" = [])))]
pub async fn latest_report(
    State(state): State<AppState>,
    State(sec): State<Security>,
    caller: Caller,
) -> ApiResult<Json<LatestReport>> {
    require_read(&state, &caller).await?;
    Ok(Json(LatestReport {
        report: sec.latest(caller.tenant()).await?,
    }))
}

async fn find(state: &AppState, sec: &Security, caller: &Caller, id: &str) -> ApiResult<Report> {
    require_read(state, caller).await?;
    // Any id that is not one of the tenant's reports is the same 404 (a malformed one
    // included: ids are opaque to callers).
    sec.get(caller.tenant(), id).await?.ok_or_else(|| {
        ApiError::NotFound(format!(
            "no security report {:?} in this tenant",
            crate::util::truncate_chars(id, 80)
        ))
    })
}

/// One report by id.
#[utoipa::path(get, path = "/api/v1/security/reports/{id}", tag = "security",
    params(("id" = String, Path, description = "report id, e.g. scan_4bf0c1d2e3", example = "scan_00000000000000000000")),
    responses((status = 200, body = Report), (status = 401), (status = 403), (status = 404)),
    extensions(("x-min-role" = json!("operator"))),
    security(("dash_key" = [])))]
pub async fn get_report(
    State(state): State<AppState>,
    State(sec): State<Security>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<Report>> {
    Ok(Json(find(&state, &sec, &caller, &id).await?))
}

/// A report's SBOM (CycloneDX 1.5 JSON) as a download.
#[utoipa::path(get, path = "/api/v1/security/reports/{id}/sbom", tag = "security",
    params(("id" = String, Path, description = "report id, e.g. scan_4bf0c1d2e3", example = "scan_00000000000000000000")),
    responses((status = 200, description = "CycloneDX 1.5 JSON", content_type = "application/vnd.cyclonedx+json"),
        (status = 401), (status = 403), (status = 404)),
    extensions(("x-min-role" = json!("operator"))),
    security(("dash_key" = [])))]
pub async fn get_sbom(
    State(state): State<AppState>,
    State(sec): State<Security>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let r = find(&state, &sec, &caller, &id).await?;
    let body = serde_json::to_vec_pretty(&r.sbom).map_err(|e| ApiError::Internal(e.to_string()))?;
    Ok((
        [
            (header::CONTENT_TYPE, super::sbom::MEDIA_TYPE.to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"sbom-{id}.cdx.json\""),
            ),
        ],
        body,
    )
        .into_response())
}

/// The area's status: light, last scan age and duration, counts by severity.
#[utoipa::path(get, path = "/api/v1/security/status", tag = "security",
    responses((status = 200, body = SecurityStatus), (status = 401), (status = 403), (status = 404)),
    extensions(("x-min-role" = json!("operator"))),
    security(("dash_key" = [])))]
pub async fn status(
    State(state): State<AppState>,
    State(sec): State<Security>,
    caller: Caller,
) -> ApiResult<Json<SecurityStatus>> {
    require_read(&state, &caller).await?;
    Ok(Json(sec.status_for(caller.tenant()).await?))
}
