//! `/api/v1/dr/*`. DR is fleet-level: reading needs an operator key of the system tenant
//! `default` (or a superadmin); starting a backup or a rehearsal needs an admin of it —
//! a backup copies every tenant's data, so a tenant's own admin cannot start one.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;

use super::{BackupList, Dr, LatestVerify};
use crate::app::AppState;
use crate::audit::{self, NewAudit};
use crate::auth::{Caller, DEFAULT_TENANT};
use crate::error::{ApiError, ApiResult};
use crate::jobs::{Begin, Trigger};
use crate::model::Role;

/// A backup or rehearsal enqueued as a run of its job.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DrRunStarted {
    /// The job run id (`GET /api/v1/jobs/runs?job=<job>` shows its outcome).
    pub run_id: String,
    /// `backup` or `dr_verify`.
    pub job: String,
    /// True when a run of the job was already in progress: `run_id` is that run (a second
    /// one would only be skipped).
    pub already_running: bool,
}

async fn require_read(state: &AppState, caller: &Caller) -> ApiResult<()> {
    caller
        .require_system(state, Role::Operator, "dr.read", "disaster recovery")
        .await
}

/// Enqueue a run of `job` (`backup` or `dr_verify`) on behalf of `key_id`, audited;
/// returns the run id and whether it is a run already in progress. Refused with 409 when
/// the key is missing (nothing could be sealed or opened).
pub async fn enqueue(
    state: &AppState,
    dr: &Dr,
    job: &str,
    key_id: &str,
    request_id: &str,
    via: &str,
) -> ApiResult<(String, bool)> {
    if let Err(e) = dr.key() {
        return Err(ApiError::Conflict(format!("{e:#}")));
    }
    let jobs = state
        .jobs()
        .ok_or_else(|| ApiError::Unavailable("the scheduler is not started".into()))?;
    if let Some(run) = running(state, job).await? {
        return Ok((run, true));
    }
    let begin = jobs.run(state, job, Trigger::Manual).await?;
    let (outcome, run_id, already) = match begin {
        Begin::Started(id) => ("ok", id, false),
        // Lost a race with another start: follow the run that won it.
        Begin::Overlap { skipped_id } => match running(state, job).await? {
            Some(id) => ("already_running", id, true),
            None => ("skipped", skipped_id, true),
        },
    };
    let rec = NewAudit::new(
        DEFAULT_TENANT,
        key_id,
        &format!("dr.{job}"),
        job,
        outcome,
        request_id,
    )
    .detail(json!({"run_id": run_id, "via": via}));
    audit::record(&state.store, rec).await?;
    tracing::info!(target: "dr", job, job_run_id = %run_id, key_id, via, outcome, "run requested");
    Ok((run_id, already))
}

/// The id of a run of `job` in progress, if any.
async fn running(state: &AppState, job: &str) -> ApiResult<Option<String>> {
    let last = crate::jobs::list_runs(&state.store, Some(job), 1).await?;
    Ok(last
        .into_iter()
        .find(|r| r.outcome == "running")
        .map(|r| r.id))
}

/// The POST routes: an admin of the system tenant starts `job`; 202 with the run id.
async fn start(
    state: &AppState,
    dr: &Dr,
    caller: &Caller,
    job: &str,
) -> ApiResult<(StatusCode, Json<DrRunStarted>)> {
    caller
        .require_system(
            state,
            Role::Admin,
            &format!("dr.{job}"),
            "disaster recovery",
        )
        .await?;
    let (run_id, already_running) =
        enqueue(state, dr, job, &caller.key_id, &caller.request_id, "api").await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(DrRunStarted {
            run_id,
            job: job.into(),
            already_running,
        }),
    ))
}

/// Backups not deleted by retention, newest first, each with its manifest and whether a
/// rehearsal verified it; the RPO and the measured RPO.
#[utoipa::path(get, path = "/api/v1/dr/backups", tag = "dr",
    responses((status = 200, body = BackupList), (status = 401), (status = 403), (status = 404)),
    extensions(("x-min-role" = json!("operator")), ("x-system" = json!(true))),
    security(("dash_key" = [])))]
pub async fn list_backups(
    State(state): State<AppState>,
    State(dr): State<Dr>,
    caller: Caller,
) -> ApiResult<Json<BackupList>> {
    require_read(&state, &caller).await?;
    Ok(Json(dr.list().await?))
}

/// Take a backup now: enqueued as a run of the `backup` job (admin of the system tenant).
#[utoipa::path(post, path = "/api/v1/dr/backups", tag = "dr",
    responses((status = 202, body = DrRunStarted), (status = 401), (status = 403), (status = 404), (status = 409),
        (status = 415, description = "a body that is not JSON (the route takes none)"),
        (status = 422, description = "a body other than nothing, null or {} (the route takes none)")),
    extensions(("x-min-role" = json!("admin")), ("x-system" = json!(true))),
    security(("dash_key" = [])))]
pub async fn start_backup(
    State(state): State<AppState>,
    State(dr): State<Dr>,
    caller: Caller,
    _body: crate::api::extract::NoBody,
) -> ApiResult<(StatusCode, Json<DrRunStarted>)> {
    start(&state, &dr, &caller, super::backup::JOB).await
}

/// The newest restore rehearsal's report (null before the first).
#[utoipa::path(get, path = "/api/v1/dr/verify", tag = "dr",
    responses((status = 200, body = LatestVerify), (status = 401), (status = 403), (status = 404)),
    extensions(("x-min-role" = json!("operator")), ("x-system" = json!(true))),
    security(("dash_key" = [])))]
pub async fn latest_verify(
    State(state): State<AppState>,
    State(dr): State<Dr>,
    caller: Caller,
) -> ApiResult<Json<LatestVerify>> {
    require_read(&state, &caller).await?;
    Ok(Json(LatestVerify {
        rpo_minutes: dr.section().rpo_minutes,
        latest: dr.latest_verification(None).await?,
    }))
}

/// Rehearse a restore of the newest backup now: enqueued as a run of `dr_verify`.
#[utoipa::path(post, path = "/api/v1/dr/verify", tag = "dr",
    responses((status = 202, body = DrRunStarted), (status = 401), (status = 403), (status = 404), (status = 409),
        (status = 415, description = "a body that is not JSON (the route takes none)"),
        (status = 422, description = "a body other than nothing, null or {} (the route takes none)")),
    extensions(("x-min-role" = json!("admin")), ("x-system" = json!(true))),
    security(("dash_key" = [])))]
pub async fn start_verify(
    State(state): State<AppState>,
    State(dr): State<Dr>,
    caller: Caller,
    _body: crate::api::extract::NoBody,
) -> ApiResult<(StatusCode, Json<DrRunStarted>)> {
    start(&state, &dr, &caller, super::verify::JOB).await
}
