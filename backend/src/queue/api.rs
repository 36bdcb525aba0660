//! `/api/v1/queue/*`: enqueue, inspect, retry, purge, health, pause/resume.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use utoipa::{IntoParams, ToSchema};

use super::{EnqueueError, Enqueued, Health, Job, NewJob, Queue, RetryOutcome, STATES};
use crate::api::extract::{ApiJson, ApiPath, ApiQuery};
use crate::app::AppState;
use crate::audit::NewAudit;
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::model::Role;

fn audit_rec(caller: &Caller, action: &str, target: &str) -> NewAudit {
    NewAudit::new(
        caller.tenant(),
        &caller.key_id,
        action,
        target,
        "ok",
        &caller.request_id,
    )
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EnqueueRequest {
    /// A registered kind: echo, sleep, fail, or one added by an area.
    pub kind: String,
    /// Handler input (any JSON).
    #[schema(value_type = Value)]
    pub payload: Value,
    /// -1000..=1000, higher runs first; default 0.
    #[schema(value_type = Option<i64>, minimum = -1000, maximum = 1000)]
    pub priority: Option<Value>,
    /// RFC 3339 time before which the job does not run (at most a year ahead); default now.
    #[schema(value_type = Option<String>, format = DateTime)]
    pub run_at: Option<Value>,
    /// 1..=100; default `queue.max_attempts` (5).
    #[schema(value_type = Option<i64>, minimum = 1, maximum = 100)]
    pub max_attempts: Option<Value>,
}

fn int_field(v: &Option<Value>, name: &str, lo: i64, hi: i64) -> ApiResult<Option<i64>> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(x) => match x.as_i64() {
            Some(n) if (lo..=hi).contains(&n) => Ok(Some(n)),
            _ => Err(ApiError::Unprocessable(format!(
                "{name} must be an integer between {lo} and {hi}, got {x}"
            ))),
        },
    }
}

fn run_at_field(v: &Option<Value>, name: &str) -> ApiResult<Option<i64>> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => chrono::DateTime::parse_from_rfc3339(s)
            .map(|t| Some(t.timestamp_millis()))
            .map_err(|_| {
                ApiError::Unprocessable(format!(
                    "{name} must be an RFC 3339 time like 2026-01-01T00:00:00Z, got {s:?}"
                ))
            }),
        Some(x) => Err(ApiError::Unprocessable(format!(
            "{name} must be an RFC 3339 time string, got {x}"
        ))),
    }
}

/// The job fields both enqueue routes accept, checked; `at` prefixes field names in
/// errors (`""` for a single enqueue, `"jobs[3]."` in a batch).
fn new_job(
    kind: String,
    payload: Value,
    priority: &Option<Value>,
    run_at: &Option<Value>,
    max_attempts: &Option<Value>,
    idempotency_key: Option<String>,
    at: &str,
) -> ApiResult<NewJob> {
    Ok(NewJob {
        kind,
        payload,
        priority: int_field(priority, &format!("{at}priority"), -1000, 1000)?.unwrap_or(0),
        run_at: run_at_field(run_at, &format!("{at}run_at"))?,
        max_attempts: int_field(max_attempts, &format!("{at}max_attempts"), 1, 100)?,
        idempotency_key,
        repeat_must_match: true,
    })
}

impl From<EnqueueError> for ApiError {
    fn from(e: EnqueueError) -> ApiError {
        match e {
            EnqueueError::Invalid(m) => ApiError::Unprocessable(m),
            EnqueueError::Db(e) => e.into(),
        }
    }
}

/// Enqueue a job. With `Idempotency-Key`, a repeat returns the same job.
#[utoipa::path(post, path = "/api/v1/queue/enqueue", tag = "queue",
    request_body(content = EnqueueRequest, example = json!({"kind": "echo", "payload": {"hello": "world"}})),
    params(("Idempotency-Key" = Option<String>, Header, description = "repeat-safe enqueue")),
    responses((status = 201, body = Enqueued), (status = 400), (status = 401), (status = 403), (status = 422)),
    extensions(("x-min-role" = json!("operator"))),
    security(("dash_key" = [])))]
pub async fn enqueue(
    State(state): State<AppState>,
    State(q): State<Queue>,
    caller: Caller,
    headers: HeaderMap,
    ApiJson(req): ApiJson<EnqueueRequest>,
) -> ApiResult<(StatusCode, Json<Enqueued>)> {
    caller
        .require(&state, Role::Operator, "queue.enqueue")
        .await?;
    let idem = match headers.get("idempotency-key") {
        None => None,
        Some(v) => Some(
            v.to_str()
                .ok()
                .filter(|s| !s.is_empty() && s.len() <= 255)
                .ok_or_else(|| {
                    ApiError::BadRequest(
                        "Idempotency-Key must be 1-255 visible ASCII characters".into(),
                    )
                })?
                .to_string(),
        ),
    };
    let job = new_job(
        req.kind,
        req.payload,
        &req.priority,
        &req.run_at,
        &req.max_attempts,
        idem.clone(),
        "",
    )?;
    let rec = audit_rec(&caller, "queue.enqueue", "").detail(json!({
        "kind": job.kind,
        "priority": job.priority,
        "run_at": job.run_at.map(crate::util::rfc3339_ms),
        "max_attempts": job.max_attempts,
        "idempotency_key": idem.is_some(),
    }));
    let e = q.enqueue(caller.tenant(), job, Some(rec)).await?;
    Ok((StatusCode::CREATED, Json(e)))
}

/// Most jobs in one batch request.
pub const MAX_BATCH: usize = 1000;

/// One job of a batch: the enqueue fields plus an optional per-job idempotency key.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BatchJob {
    pub kind: String,
    #[schema(value_type = Value)]
    pub payload: Value,
    #[schema(value_type = Option<i64>, minimum = -1000, maximum = 1000)]
    pub priority: Option<Value>,
    #[schema(value_type = Option<String>, format = DateTime)]
    pub run_at: Option<Value>,
    #[schema(value_type = Option<i64>, minimum = 1, maximum = 100)]
    pub max_attempts: Option<Value>,
    /// Like the `Idempotency-Key` header of a single enqueue: a repeat returns the same job
    /// (the same kind and payload; another job under a used key → 422 naming it). Unique
    /// within the batch.
    #[schema(min_length = 1, max_length = 255)]
    pub idempotency_key: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EnqueueBatchRequest {
    /// 1..=1000 jobs, enqueued all-or-nothing.
    #[schema(min_items = 1, max_items = 1000)]
    pub jobs: Vec<BatchJob>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct EnqueuedBatch {
    /// One entry per requested job, in request order.
    pub jobs: Vec<Enqueued>,
}

/// Enqueue up to 1000 jobs in one request, all-or-nothing: any invalid job → 422 naming
/// it and nothing is enqueued. One audit record lists the created job ids.
#[utoipa::path(post, path = "/api/v1/queue/enqueue/batch", tag = "queue",
    request_body(content = EnqueueBatchRequest, example = json!({"jobs": [{"kind": "echo", "payload": {"n": 1}}, {"kind": "echo", "payload": {"n": 2}}]})),
    responses((status = 201, body = EnqueuedBatch), (status = 400), (status = 401), (status = 403), (status = 413), (status = 422)),
    extensions(("x-min-role" = json!("operator"))),
    security(("dash_key" = [])))]
pub async fn enqueue_batch(
    State(state): State<AppState>,
    State(q): State<Queue>,
    caller: Caller,
    ApiJson(req): ApiJson<EnqueueBatchRequest>,
) -> ApiResult<(StatusCode, Json<EnqueuedBatch>)> {
    caller
        .require(&state, Role::Operator, "queue.enqueue")
        .await?;
    if req.jobs.is_empty() || req.jobs.len() > MAX_BATCH {
        return Err(ApiError::Unprocessable(format!(
            "jobs must hold 1 to {MAX_BATCH} jobs, got {}",
            req.jobs.len()
        )));
    }
    let mut jobs = Vec::with_capacity(req.jobs.len());
    let mut kinds = std::collections::BTreeMap::<String, usize>::new();
    let mut keys = std::collections::HashMap::<String, usize>::new();
    for (i, j) in req.jobs.into_iter().enumerate() {
        let key = match j.idempotency_key {
            Some(k) if k.is_empty() || k.len() > 255 => {
                return Err(ApiError::Unprocessable(format!(
                    "jobs[{i}].idempotency_key must be 1-255 characters"
                )))
            }
            k => k,
        };
        // Two jobs under one key would silently become one: refuse the batch instead.
        if let Some(k) = &key {
            if let Some(first) = keys.insert(k.clone(), i) {
                return Err(ApiError::Unprocessable(format!(
                    "jobs[{i}].idempotency_key {k:?} repeats the key of jobs[{first}]; each job of a batch needs its own key"
                )));
            }
        }
        *kinds.entry(j.kind.clone()).or_default() += 1;
        jobs.push(new_job(
            j.kind,
            j.payload,
            &j.priority,
            &j.run_at,
            &j.max_attempts,
            key,
            &format!("jobs[{i}]."),
        )?);
    }
    let rec = audit_rec(&caller, "queue.enqueue_batch", "").detail(json!({
        "jobs": jobs.len(),
        "kinds": kinds,
    }));
    let jobs = q.enqueue_batch(caller.tenant(), jobs, Some(rec)).await?;
    Ok((StatusCode::CREATED, Json(EnqueuedBatch { jobs })))
}

/// One job of the caller's tenant.
#[utoipa::path(get, path = "/api/v1/queue/jobs/{id}", tag = "queue",
    params(("id" = String, Path, description = "job id", example = "job_00000000000000000000")),
    responses((status = 200, body = Job), (status = 404), (status = 401), (status = 403)),
    extensions(("x-min-role" = json!("readonly"))),
    security(("dash_key" = [])))]
pub async fn get_job(
    State(state): State<AppState>,
    State(q): State<Queue>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<Job>> {
    caller.require(&state, Role::Readonly, "queue.read").await?;
    q.get(caller.tenant(), &id)
        .await?
        .map(Json)
        .ok_or_else(|| ApiError::NotFound(format!("no job {id:?} in this tenant")))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    /// queued | running | succeeded | failed | dead
    #[param(value_type = Option<crate::queue::JobState>)]
    pub state: Option<String>,
    pub kind: Option<String>,
    /// 1..=1000, default 100.
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<i64>,
}

#[derive(Debug, Serialize, serde::Deserialize, ToSchema)]
pub struct JobList {
    pub jobs: Vec<Job>,
}

/// Jobs of the caller's tenant, newest first.
#[utoipa::path(get, path = "/api/v1/queue/jobs", tag = "queue", params(ListQuery),
    responses((status = 200, body = JobList), (status = 400), (status = 422)),
    extensions(("x-min-role" = json!("readonly"))),
    security(("dash_key" = [])))]
pub async fn list_jobs(
    State(state): State<AppState>,
    State(q): State<Queue>,
    caller: Caller,
    ApiQuery(lq): ApiQuery<ListQuery>,
) -> ApiResult<Json<JobList>> {
    caller.require(&state, Role::Readonly, "queue.read").await?;
    if let Some(s) = lq.state.as_deref() {
        if !STATES.contains(&s) {
            return Err(ApiError::Unprocessable(format!(
                "state must be one of {}, got {s:?}",
                STATES.join(", ")
            )));
        }
    }
    let limit = crate::api::extract::bounded("limit", lq.limit, 100, 1..=1000)?;
    let jobs = q
        .list(
            caller.tenant(),
            lq.state.as_deref(),
            lq.kind.as_deref(),
            limit,
        )
        .await?;
    Ok(Json(JobList { jobs }))
}

/// Retry a dead job (dead → queued, attempts reset). Other states → 409.
#[utoipa::path(post, path = "/api/v1/queue/jobs/{id}/retry", tag = "queue",
    params(("id" = String, Path, description = "job id", example = "job_00000000000000000000")),
    responses((status = 200, body = Enqueued), (status = 404), (status = 409), (status = 403)),
    extensions(("x-min-role" = json!("operator"))),
    security(("dash_key" = [])))]
pub async fn retry_job(
    State(state): State<AppState>,
    State(q): State<Queue>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<Enqueued>> {
    caller
        .require(&state, Role::Operator, "queue.retry")
        .await?;
    let rec = audit_rec(&caller, "queue.retry", &id);
    match q.retry(caller.tenant(), &id, Some(rec)).await? {
        RetryOutcome::Requeued => Ok(Json(Enqueued {
            id,
            state: crate::queue::JobState::Queued,
            created: false,
        })),
        RetryOutcome::NotDead(s) => Err(ApiError::Conflict(format!(
            "job {id} is {s}; only dead jobs can be retried"
        ))),
        RetryOutcome::NotFound => Err(ApiError::NotFound(format!("no job {id:?} in this tenant"))),
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Purged {
    pub purged: u64,
}

/// Delete every dead job of the caller's tenant.
#[utoipa::path(post, path = "/api/v1/queue/dlq/purge", tag = "queue",
    responses((status = 200, body = Purged), (status = 403)),
    extensions(("x-min-role" = json!("operator"))),
    security(("dash_key" = [])))]
pub async fn purge_dlq(
    State(state): State<AppState>,
    State(q): State<Queue>,
    caller: Caller,
) -> ApiResult<Json<Purged>> {
    caller
        .require(&state, Role::Operator, "queue.dlq.purge")
        .await?;
    let rec = audit_rec(&caller, "queue.dlq.purge", "dlq");
    let purged = q.purge_dead(caller.tenant(), Some(rec)).await?;
    Ok(Json(Purged { purged }))
}

/// Depth by state, lag, oldest ready job, throughput, live worker slots, pause flag.
#[utoipa::path(get, path = "/api/v1/queue/health", tag = "queue",
    responses((status = 200, body = Health), (status = 401)),
    extensions(("x-min-role" = json!("readonly"))),
    security(("dash_key" = [])))]
pub async fn health(
    State(state): State<AppState>,
    State(q): State<Queue>,
    caller: Caller,
) -> ApiResult<Json<Health>> {
    caller.require(&state, Role::Readonly, "queue.read").await?;
    Ok(Json(q.health(caller.tenant()).await?))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PauseState {
    pub paused: bool,
    /// False when the queue already was in the requested state.
    pub changed: bool,
}

async fn set_paused(
    state: &AppState,
    q: &Queue,
    caller: &Caller,
    paused: bool,
) -> ApiResult<Json<PauseState>> {
    let action = if paused {
        "queue.pause"
    } else {
        "queue.resume"
    };
    caller
        .require_system(state, Role::Operator, action, "the queue's pause flag")
        .await?;
    let rec = audit_rec(caller, action, "queue");
    let changed = q.set_paused(paused, &caller.key_id, Some(rec)).await?;
    Ok(Json(PauseState { paused, changed }))
}

/// Pause the queue on every replica: workers stop claiming, in-flight jobs finish.
#[utoipa::path(post, path = "/api/v1/queue/pause", tag = "queue",
    responses((status = 200, body = PauseState), (status = 403)),
    extensions(("x-min-role" = json!("operator")), ("x-system" = json!(true))),
    security(("dash_key" = [])))]
pub async fn pause(
    State(state): State<AppState>,
    State(q): State<Queue>,
    caller: Caller,
) -> ApiResult<Json<PauseState>> {
    set_paused(&state, &q, &caller, true).await
}

/// Resume claiming on every replica.
#[utoipa::path(post, path = "/api/v1/queue/resume", tag = "queue",
    responses((status = 200, body = PauseState), (status = 403)),
    extensions(("x-min-role" = json!("operator")), ("x-system" = json!(true))),
    security(("dash_key" = [])))]
pub async fn resume(
    State(state): State<AppState>,
    State(q): State<Queue>,
    caller: Caller,
) -> ApiResult<Json<PauseState>> {
    set_paused(&state, &q, &caller, false).await
}
