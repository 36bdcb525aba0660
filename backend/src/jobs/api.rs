//! Scheduler routes: `/api/v1/jobs/...` and `/api/v1/automations/...`.
//!
//! Jobs are system-wide. Reading runs needs `readonly`. Running a job now and stopping or
//! starting the scheduler need `operator` with a key of the system tenant `default`
//! (a tenant's operator must not pause the fleet): pausing automations is a routine,
//! reversible on-call step (maintenance windows, incident triage) that changes neither
//! access nor configuration, so it sits with operators rather than admins. All audited.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::{IntoParams, ToSchema};

use super::{AutomationsStatus, Begin, JobRuns, Jobs, Trigger};
use crate::api::extract::{ApiPath, ApiQuery};
use crate::app::AppState;
use crate::audit::{self, NewAudit};
use crate::auth::{Caller, DEFAULT_TENANT};
use crate::error::{ApiError, ApiResult};
use crate::model::Role;

fn jobs(state: &AppState) -> ApiResult<Jobs> {
    state
        .jobs()
        .ok_or_else(|| ApiError::Unavailable("the scheduler is not started".into()))
}

/// Operator or above, and a key of the system tenant (or a superadmin).
async fn require_system_operator(state: &AppState, caller: &Caller, action: &str) -> ApiResult<()> {
    caller
        .require_system(state, Role::Operator, action, "the scheduler")
        .await
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct RunsQuery {
    /// Only runs of this job.
    pub job: Option<String>,
    /// 1–500, default 50.
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<i64>,
}

/// Recorded runs, newest first.
#[utoipa::path(get, path = "/api/v1/jobs/runs", tag = "jobs", params(RunsQuery),
    responses((status = 200, body = JobRuns), (status = 400), (status = 401), (status = 403)),
    extensions(("x-min-role" = json!("readonly"))),
    security(("dash_key" = [])))]
pub async fn list_runs(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<RunsQuery>,
) -> ApiResult<Json<JobRuns>> {
    caller.require(&state, Role::Readonly, "jobs.read").await?;
    let limit = crate::api::extract::bounded("limit", q.limit, 50, 1..=500)?;
    let runs = super::list_runs(
        &state.store,
        q.job.as_deref().filter(|j| !j.is_empty()),
        limit,
    )
    .await?;
    Ok(Json(JobRuns { runs }))
}

/// The error ledger of a run: what it counted, processed and could not handle. 404 when
/// the run does not exist, or has no ledger (skipped, still running, or older than ledgers).
#[utoipa::path(get, path = "/api/v1/jobs/runs/{id}/ledger", tag = "jobs",
    params(("id" = String, Path, description = "run id, e.g. run_4bf0c1d2e3", example = "run_00000000000000000000")),
    responses((status = 200, body = super::RunLedger), (status = 401), (status = 403), (status = 404)),
    extensions(("x-min-role" = json!("readonly"))),
    security(("dash_key" = [])))]
pub async fn run_ledger(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<super::RunLedger>> {
    caller.require(&state, Role::Readonly, "jobs.read").await?;
    let Some(run) = super::get_run(&state.store, &id).await? else {
        return Err(ApiError::NotFound(format!("no job run {id:?}")));
    };
    match super::ledger::get(&state.store, &id).await? {
        Some(l) => Ok(Json(l)),
        None => Err(ApiError::NotFound(format!(
            "run {id} ({}, {}) has no error ledger yet: ledgers are written when a run ends",
            run.job,
            run.outcome.as_str()
        ))),
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RunStarted {
    pub run_id: String,
}

/// Run a job now: enqueued as a queue job of kind `scheduled:<name>` (any replica's
/// workers may run it); `run_id` is the id its run is recorded under. 409 while a run of
/// it is in progress.
#[utoipa::path(post, path = "/api/v1/jobs/{name}/run", tag = "jobs",
    params(("name" = String, Path, description = "job name, e.g. retention", example = "retention")),
    responses((status = 202, body = RunStarted), (status = 403), (status = 404), (status = 409)),
    extensions(("x-min-role" = json!("operator")), ("x-system" = json!(true))),
    security(("dash_key" = [])))]
pub async fn run_now(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(name): ApiPath<String>,
) -> ApiResult<(StatusCode, Json<RunStarted>)> {
    require_system_operator(&state, &caller, "jobs.run").await?;
    let jobs = jobs(&state)?;
    if !jobs.contains(&name) {
        return Err(ApiError::NotFound(format!(
            "no job named {name:?}; jobs: {}",
            jobs.names().join(", ")
        )));
    }
    jobs.require_run_role(&state, &caller, &name).await?;
    let begin = jobs.run(&state, &name, Trigger::Manual).await?;
    let (outcome, run_id) = match &begin {
        Begin::Started(id) => ("ok", id.clone()),
        Begin::Overlap { skipped_id } => ("conflict", skipped_id.clone()),
    };
    let rec = NewAudit::new(
        DEFAULT_TENANT,
        &caller.key_id,
        "jobs.run",
        &name,
        outcome,
        &caller.request_id,
    )
    .detail(json!({"run_id": run_id, "replica": state.cfg.replica_id}));
    audit::record(&state.store, rec).await?;
    match begin {
        Begin::Started(run_id) => {
            tracing::info!(target: "scheduler", job = %name, job_run_id = %run_id, key_id = %caller.key_id, "run requested");
            Ok((StatusCode::ACCEPTED, Json(RunStarted { run_id })))
        }
        Begin::Overlap { skipped_id } => Err(ApiError::Conflict(format!(
            "job {name:?} is already running; this request was recorded as skipped run {skipped_id}"
        ))),
    }
}

async fn status(state: &AppState) -> ApiResult<AutomationsStatus> {
    let jobs = jobs(state)?;
    let running = super::desired_running(&state.store).await?;
    Ok(AutomationsStatus {
        running,
        leader: jobs.is_leader(),
        replica_id: state.cfg.replica_id.clone(),
        generation: jobs.generation(),
        jobs: jobs.job_statuses(&state.store, running).await?,
    })
}

/// Scheduler state, this replica's leadership and every registered job.
#[utoipa::path(get, path = "/api/v1/automations/status", tag = "jobs",
    responses((status = 200, body = AutomationsStatus), (status = 401), (status = 403)),
    extensions(("x-min-role" = json!("readonly"))),
    security(("dash_key" = [])))]
pub async fn automations_status(
    State(state): State<AppState>,
    caller: Caller,
) -> ApiResult<Json<AutomationsStatus>> {
    caller.require(&state, Role::Readonly, "jobs.read").await?;
    Ok(Json(status(&state).await?))
}

/// Set the fleet-wide desired scheduler state (also used by the `restart_scheduler` ops verb).
pub async fn set_running(
    state: &AppState,
    caller: &Caller,
    running: bool,
) -> ApiResult<AutomationsStatus> {
    let action = if running {
        "automations.start"
    } else {
        "automations.stop"
    };
    require_system_operator(state, caller, action).await?;
    jobs(state)?;
    let rec = NewAudit::new(
        DEFAULT_TENANT,
        &caller.key_id,
        action,
        "scheduler",
        "ok",
        &caller.request_id,
    )
    .detail(json!({"replica": state.cfg.replica_id}));
    let changed = super::control::set_running(&state.store, running, &caller.key_id, rec).await?;
    tracing::info!(target: "scheduler", key_id = %caller.key_id, running, changed, "scheduler {}", if running { "started" } else { "stopped (running jobs finish)" });
    status(state).await
}

/// Stop scheduled runs fleet-wide; runs in progress finish. Run-now still works.
#[utoipa::path(post, path = "/api/v1/automations/stop", tag = "jobs",
    responses((status = 200, body = AutomationsStatus), (status = 403)),
    extensions(("x-min-role" = json!("operator")), ("x-system" = json!(true))),
    security(("dash_key" = [])))]
pub async fn automations_stop(
    State(state): State<AppState>,
    caller: Caller,
) -> ApiResult<Json<AutomationsStatus>> {
    Ok(Json(set_running(&state, &caller, false).await?))
}

/// Resume scheduled runs fleet-wide (missed fires are not replayed).
#[utoipa::path(post, path = "/api/v1/automations/start", tag = "jobs",
    responses((status = 200, body = AutomationsStatus), (status = 403)),
    extensions(("x-min-role" = json!("operator")), ("x-system" = json!(true))),
    security(("dash_key" = [])))]
pub async fn automations_start(
    State(state): State<AppState>,
    caller: Caller,
) -> ApiResult<Json<AutomationsStatus>> {
    Ok(Json(set_running(&state, &caller, true).await?))
}
