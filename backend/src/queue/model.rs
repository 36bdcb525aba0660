//! Queue rows and the types the API shows. Rows decode through `sqlx::FromRow` structs;
//! states are a `text_enum!` stored as TEXT (a value outside the vocabulary is a decode
//! error, not a default), JSON columns are `store::Json` and corrupt JSON is a decode error
//! too.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use crate::util::rfc3339_ms;

crate::text_enum! {
    /// Where a job is in its life: `queued → running → succeeded | failed (waits for a
    /// retry) | dead`.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, ToSchema)]
    #[serde(rename_all = "lowercase")]
    pub enum JobState {
        Queued = "queued",
        Running = "running",
        Succeeded = "succeeded",
        /// The last attempt failed; waiting for its retry time.
        Failed = "failed",
        Dead = "dead",
    }
}

/// A JSON document stored as TEXT (the store's vocabulary: corrupt JSON is a decode error).
pub type JsonText = crate::store::Json<Value>;

/// One `queue_jobs` row as the API reads it.
#[derive(Debug, sqlx::FromRow)]
pub(crate) struct JobRow {
    id: String,
    kind: String,
    state: JobState,
    attempts: i64,
    max_attempts: i64,
    priority: i64,
    payload: JsonText,
    result: Option<JsonText>,
    error: Option<String>,
    worker: Option<String>,
    run_at: i64,
    enqueued_at: i64,
    started_at: Option<i64>,
    finished_at: Option<i64>,
}

pub(crate) const JOB_COLUMNS: &str = "id, kind, state, attempts, max_attempts, priority, payload, \
                                      result, error, worker, run_at, enqueued_at, started_at, finished_at";

impl From<JobRow> for Job {
    fn from(r: JobRow) -> Job {
        Job {
            id: r.id,
            kind: r.kind,
            state: r.state,
            attempts: r.attempts,
            max_attempts: r.max_attempts,
            priority: r.priority,
            payload: r.payload.0,
            result: r.result.map(|j| j.0),
            error: r.error,
            worker: r.worker,
            run_at: rfc3339_ms(r.run_at),
            enqueued_at: rfc3339_ms(r.enqueued_at),
            started_at: r.started_at.map(rfc3339_ms),
            finished_at: r.finished_at.map(rfc3339_ms),
        }
    }
}

/// A job as the API shows it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Job {
    pub id: String,
    pub kind: String,
    /// queued | running | succeeded | failed (waiting for a retry) | dead
    pub state: JobState,
    pub attempts: i64,
    pub max_attempts: i64,
    pub priority: i64,
    #[schema(value_type = Value)]
    pub payload: Value,
    #[schema(value_type = Option<Value>)]
    pub result: Option<Value>,
    /// Last attempt's error; a run cancelled at its kind's timeout starts with `timed_out:`.
    pub error: Option<String>,
    /// `<replica_id>#<process instance>` of the worker that ran (or runs) the last attempt.
    pub worker: Option<String>,
    pub run_at: String,
    pub enqueued_at: String,
    pub started_at: Option<String>,
    pub finished_at: Option<String>,
}
/// A job to enqueue (already validated by [`Queue::validate`] or trusted in-process code).
#[derive(Debug, Clone)]
pub struct NewJob {
    pub kind: String,
    pub payload: Value,
    pub priority: i64,
    /// Unix ms; `None` = now.
    pub run_at: Option<i64>,
    pub max_attempts: Option<i64>,
    pub idempotency_key: Option<String>,
    /// A repeat under `idempotency_key` must be the same job (kind and payload, by value),
    /// else the enqueue is refused naming the job the key already holds. Set for API
    /// callers; scheduled firings repeat by key alone (each carries a fresh run id).
    pub repeat_must_match: bool,
}

impl NewJob {
    pub fn new(kind: &str, payload: Value) -> NewJob {
        NewJob {
            kind: kind.into(),
            payload,
            priority: 0,
            run_at: None,
            max_attempts: None,
            idempotency_key: None,
            repeat_must_match: false,
        }
    }
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Enqueued {
    pub id: String,
    pub state: JobState,
    /// False when an earlier job with the same idempotency key was returned.
    #[serde(skip)]
    pub created: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum EnqueueError {
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Db(#[from] sqlx::Error),
}

#[derive(Debug, Clone, Serialize, serde::Deserialize, ToSchema)]
pub struct Depth {
    pub queued: i64,
    pub running: i64,
    pub failed: i64,
    pub dead: i64,
    pub succeeded: i64,
}

#[derive(Debug, Clone, Serialize, serde::Deserialize, ToSchema)]
#[schema(as = QueueHealth)]
pub struct Health {
    pub depth: Depth,
    /// How late the oldest ready job is (now − its due time), ms.
    pub lag_ms: i64,
    /// Age of the oldest ready job since it was enqueued, seconds.
    pub oldest_ready_age_s: i64,
    /// Jobs finished (succeeded or dead) in the last 60 s.
    pub throughput_per_min: i64,
    /// Worker slots of live worker pools across all replicas.
    pub workers: i64,
    pub paused: bool,
}

/// Outcome of a retry request.
pub enum RetryOutcome {
    Requeued,
    NotDead(JobState),
    NotFound,
}
