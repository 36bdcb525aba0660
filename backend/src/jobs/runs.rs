//! Run history: `job_runs`, owned by the jobs area. One row per attempt of a scheduled-job
//! queue job (or a skipped start), written by the scheduled-job handler ([`super::exec`]).
//!
//! A job never overlaps itself, fleet-wide: a partial unique index allows one `running`
//! row per job, so a second start loses the insert and is recorded as `skipped`.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use super::{Trigger, RUNS_TOTAL};
use crate::queue::JsonText;
use crate::store::Store;
use crate::util::{now_ms, random_id, rfc3339_ms};

/// Runs whose heartbeat is older than this belong to a replica that died mid-run.
pub const STALE_MS: i64 = 60_000;
const DELETE_BATCH: i64 = 5000;

crate::text_enum! {
    /// How a run ended (or that it is still going).
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, ToSchema)]
    #[serde(rename_all = "snake_case")]
    pub enum Outcome {
        Running = "running",
        Succeeded = "succeeded",
        Failed = "failed",
        /// Cancelled at the job's timeout (`jobs.<name>.timeout_secs`).
        TimedOut = "timed_out",
        /// Not started: another run of the job was in progress.
        Skipped = "skipped",
    }
}

/// One recorded run, as returned by the API.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct JobRun {
    pub id: String,
    pub job: String,
    /// schedule, manual or startup.
    pub trigger: Trigger,
    pub started_at: String,
    pub finished_at: Option<String>,
    /// running, succeeded, failed, timed_out or skipped.
    pub outcome: Outcome,
    pub error: Option<String>,
    pub duration_ms: Option<i64>,
    pub replica: String,
    /// What the job returned (counts, per-item errors).
    #[schema(value_type = Option<Object>)]
    pub result: Option<Value>,
    /// The queue job this run is an attempt of (null for skipped run-now requests).
    pub queue_job_id: Option<String>,
    /// Attempt number of that queue job (1-based).
    pub attempt: Option<i64>,
    /// The cron fire time of a scheduled run (RFC 3339).
    pub fire_at: Option<String>,
}

#[derive(Debug, sqlx::FromRow)]
struct RunRow {
    id: String,
    job: String,
    trigger_kind: Trigger,
    started_at: i64,
    finished_at: Option<i64>,
    outcome: Outcome,
    error: Option<String>,
    duration_ms: Option<i64>,
    replica: String,
    result: Option<JsonText>,
    queue_job_id: Option<String>,
    attempt: Option<i64>,
    fire_at: Option<i64>,
}

impl From<RunRow> for JobRun {
    fn from(r: RunRow) -> JobRun {
        JobRun {
            id: r.id,
            job: r.job,
            trigger: r.trigger_kind,
            started_at: rfc3339_ms(r.started_at),
            finished_at: r.finished_at.map(rfc3339_ms),
            outcome: r.outcome,
            error: r.error,
            duration_ms: r.duration_ms,
            replica: r.replica,
            result: r.result.map(|j| j.0),
            queue_job_id: r.queue_job_id,
            attempt: r.attempt,
            fire_at: r.fire_at.map(rfc3339_ms),
        }
    }
}

const RUN_COLS: &str =
    "id, job, trigger_kind, started_at, finished_at, outcome, error, duration_ms, \
                        replica, result, queue_job_id, attempt, fire_at";

/// Outcome of asking to start a run.
pub enum Begin {
    Started(String),
    /// Another run of the job is in progress; the attempt was recorded as `skipped`.
    Overlap {
        skipped_id: String,
    },
}

/// The queue job attempt a run belongs to.
#[derive(Debug, Clone)]
pub struct Attempt {
    pub queue_job_id: String,
    pub attempt: i64,
    pub fire_at: Option<i64>,
}

/// Close out runs abandoned by a dead replica (or an earlier attempt of the same queue
/// job: the queue only runs an attempt again once the previous one lost its lease), then
/// claim the job's single `running` slot under `run_id` (a fresh id if it is taken).
pub async fn begin_run(
    store: &Store,
    name: &str,
    trigger: Trigger,
    replica: &str,
    attempt: Option<&Attempt>,
    run_id: Option<String>,
) -> anyhow::Result<Begin> {
    let now = now_ms();
    sqlx::query(
        "UPDATE job_runs SET outcome = 'failed', finished_at = heartbeat_at, \
         duration_ms = heartbeat_at - started_at, \
         error = 'abandoned: the replica running it stopped sending heartbeats' \
         WHERE job = $1 AND outcome = 'running' AND heartbeat_at < $2",
    )
    .bind(name)
    .bind(now - STALE_MS)
    .execute(store.writer())
    .await?;
    if let Some(a) = attempt {
        sqlx::query(
            "UPDATE job_runs SET outcome = 'failed', finished_at = $1, duration_ms = $1 - started_at, \
             error = 'abandoned: its queue lease expired (the replica died or stalled); retried as attempt ' || $2 \
             WHERE queue_job_id = $3 AND outcome = 'running'",
        )
        .bind(now)
        .bind(a.attempt.to_string())
        .bind(&a.queue_job_id)
        .execute(store.writer())
        .await?;
    }
    let mut id = run_id.unwrap_or_else(|| random_id("run_", 10));
    // A job released at shutdown runs again under the same attempt number.
    let taken: Option<i64> = sqlx::query_scalar("SELECT 1 FROM job_runs WHERE id = $1")
        .bind(&id)
        .fetch_optional(store.reader())
        .await?;
    if taken.is_some() {
        id = random_id("run_", 10);
    }
    let inserted = sqlx::query(
        "INSERT INTO job_runs (id, job, trigger_kind, started_at, outcome, replica, heartbeat_at, \
         queue_job_id, attempt, fire_at) \
         VALUES ($1, $2, $3, $4, 'running', $5, $4, $6, $7, $8) ON CONFLICT DO NOTHING",
    )
    .bind(&id)
    .bind(name)
    .bind(trigger.as_str())
    .bind(now)
    .bind(replica)
    .bind(attempt.map(|a| a.queue_job_id.clone()))
    .bind(attempt.map(|a| a.attempt))
    .bind(attempt.and_then(|a| a.fire_at))
    .execute(store.writer())
    .await?
    .rows_affected();
    if inserted == 1 {
        return Ok(Begin::Started(id));
    }
    let skipped_id = record_skipped(store, name, trigger, replica, attempt, &id).await?;
    Ok(Begin::Overlap { skipped_id })
}

/// The run of `name` in progress, if any (and not abandoned).
pub async fn running_run(store: &Store, name: &str) -> Result<Option<JobRun>, sqlx::Error> {
    let row: Option<RunRow> = sqlx::query_as(&format!(
        "SELECT {RUN_COLS} FROM job_runs WHERE job = $1 AND outcome = 'running' AND heartbeat_at >= $2"
    ))
    .bind(name)
    .bind(now_ms() - STALE_MS)
    .fetch_optional(store.reader())
    .await?;
    Ok(row.map(JobRun::from))
}

/// Record a start that lost to a run in progress as `skipped`.
pub async fn record_skipped(
    store: &Store,
    name: &str,
    trigger: Trigger,
    replica: &str,
    attempt: Option<&Attempt>,
    id: &str,
) -> anyhow::Result<String> {
    let now = now_ms();
    let running: Option<String> =
        sqlx::query_scalar("SELECT id FROM job_runs WHERE job = $1 AND outcome = 'running'")
            .bind(name)
            .fetch_optional(store.reader())
            .await?;
    let error = match &running {
        Some(r) => format!("previous run {r} still running"),
        None => "previous run still running".to_string(),
    };
    sqlx::query(
        "INSERT INTO job_runs (id, job, trigger_kind, started_at, finished_at, outcome, error, duration_ms, \
         replica, heartbeat_at, queue_job_id, attempt, fire_at) \
         VALUES ($1, $2, $3, $4, $4, 'skipped', $5, 0, $6, $4, $7, $8, $9)",
    )
    .bind(id)
    .bind(name)
    .bind(trigger.as_str())
    .bind(now)
    .bind(&error)
    .bind(replica)
    .bind(attempt.map(|a| a.queue_job_id.clone()))
    .bind(attempt.map(|a| a.attempt))
    .bind(attempt.and_then(|a| a.fire_at))
    .execute(store.writer())
    .await?;
    metrics::counter!(RUNS_TOTAL, "job" => name.to_string(), "outcome" => "skipped").increment(1);
    tracing::info!(target: "scheduler", job = name, job_run_id = %id, trigger = trigger.as_str(), outcome = "skipped", reason = %error, "run skipped: would overlap");
    Ok(id.to_string())
}

/// Record the end of a run started with [`begin_run`] (only if it is still running: a
/// run closed as timed out or abandoned stays so).
pub async fn finish_run(
    store: &Store,
    run_id: &str,
    outcome: Outcome,
    error: Option<&str>,
    result: Option<&Value>,
    duration_ms: i64,
) -> Result<bool, sqlx::Error> {
    let n = sqlx::query(
        "UPDATE job_runs SET outcome = $1, error = $2, finished_at = $3, duration_ms = $4, result = $5 \
         WHERE id = $6 AND outcome = 'running'",
    )
    .bind(outcome.as_str())
    .bind(error)
    .bind(now_ms())
    .bind(duration_ms)
    .bind(result.map(|v| v.to_string()))
    .bind(run_id)
    .execute(store.writer())
    .await?
    .rows_affected();
    Ok(n == 1)
}

/// Close the run of a queue job attempt that the queue cancelled at its timeout.
pub async fn close_timed_out(
    store: &Store,
    queue_job_id: &str,
    attempt: i64,
    error: &str,
) -> Result<Option<(String, String)>, sqlx::Error> {
    let now = now_ms();
    let row: Option<(String, String)> = sqlx::query_as(
        "UPDATE job_runs SET outcome = 'timed_out', error = $1, finished_at = $2, duration_ms = $2 - started_at \
         WHERE queue_job_id = $3 AND attempt = $4 AND outcome = 'running' RETURNING id, job",
    )
    .bind(error)
    .bind(now)
    .bind(queue_job_id)
    .bind(attempt)
    .fetch_optional(store.writer())
    .await?;
    Ok(row)
}

/// Keep a running run's heartbeat fresh (see [`STALE_MS`]).
pub async fn heartbeat(store: &Store, run_id: &str) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE job_runs SET heartbeat_at = $1 WHERE id = $2 AND outcome = 'running'")
        .bind(now_ms())
        .bind(run_id)
        .execute(store.writer())
        .await?;
    Ok(())
}

/// Newest runs first, optionally of one job.
pub async fn list_runs(
    store: &Store,
    job: Option<&str>,
    limit: i64,
) -> Result<Vec<JobRun>, sqlx::Error> {
    let rows: Vec<RunRow> = sqlx::query_as(&format!(
        "SELECT {RUN_COLS} FROM job_runs WHERE ($1 = '' OR job = $1) \
         ORDER BY started_at DESC, id DESC LIMIT $2"
    ))
    .bind(job.unwrap_or(""))
    .bind(limit)
    .fetch_all(store.reader())
    .await?;
    Ok(rows.into_iter().map(JobRun::from).collect())
}

pub async fn get_run(store: &Store, id: &str) -> Result<Option<JobRun>, sqlx::Error> {
    let row: Option<RunRow> =
        sqlx::query_as(&format!("SELECT {RUN_COLS} FROM job_runs WHERE id = $1"))
            .bind(id)
            .fetch_optional(store.reader())
            .await?;
    Ok(row.map(JobRun::from))
}

/// Start times of the newest succeeded runs of `job` (with `trigger`, if given), newest
/// first (the alert rules' and the summary's view of the scheduler heartbeat).
pub async fn succeeded_starts(
    store: &Store,
    job: &str,
    trigger: Option<Trigger>,
    limit: i64,
) -> Result<Vec<i64>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT started_at FROM job_runs WHERE job = $1 AND ($2 = '' OR trigger_kind = $2) \
         AND outcome = 'succeeded' ORDER BY started_at DESC LIMIT $3",
    )
    .bind(job)
    .bind(trigger.as_ref().map_or("", Trigger::as_str))
    .bind(limit)
    .fetch_all(store.reader())
    .await
}

/// Runs started since `since_ms`, counted by outcome (every outcome present, 0 if none).
pub async fn outcome_counts(
    store: &Store,
    since_ms: i64,
) -> Result<Vec<(Outcome, i64)>, sqlx::Error> {
    let rows: Vec<(String, i64)> = sqlx::query_as(
        "SELECT outcome, COUNT(*) AS n FROM job_runs WHERE started_at >= $1 GROUP BY outcome",
    )
    .bind(since_ms)
    .fetch_all(store.reader())
    .await?;
    let mut out: Vec<(Outcome, i64)> = Outcome::ALL.iter().map(|o| (*o, 0)).collect();
    for (o, n) in rows {
        let o: Outcome = o.parse().map_err(|e| sqlx::Error::Decode(Box::new(e)))?;
        if let Some(slot) = out.iter_mut().find(|(x, _)| *x == o) {
            slot.1 = n;
        }
    }
    Ok(out)
}

/// Delete finished runs started before `cutoff`, in batches (on SQLite every other
/// writer waits behind a long delete).
pub async fn prune_runs(store: &Store, cutoff: i64) -> anyhow::Result<u64> {
    let mut total = 0;
    loop {
        let n = sqlx::query(
            "DELETE FROM job_runs WHERE id IN (SELECT id FROM job_runs \
             WHERE started_at < $1 AND outcome <> 'running' LIMIT $2)",
        )
        .bind(cutoff)
        .bind(DELETE_BATCH)
        .execute(store.writer())
        .await?
        .rows_affected();
        total += n;
        if n < DELETE_BATCH as u64 {
            return Ok(total);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::testing;

    #[tokio::test]
    async fn a_second_start_while_running_is_recorded_as_skipped() {
        for backend in testing::backends() {
            let (store, _db) = testing::fresh(backend).await;
            let Begin::Started(first) = begin_run(&store, "j", Trigger::Schedule, "r1", None, None)
                .await
                .unwrap()
            else {
                panic!("{backend}: first start must win");
            };
            // Another replica tries while the first run is alive.
            let Begin::Overlap { skipped_id } =
                begin_run(&store, "j", Trigger::Manual, "r2", None, None)
                    .await
                    .unwrap()
            else {
                panic!("{backend}: overlap must be detected");
            };
            let skipped = get_run(&store, &skipped_id).await.unwrap().unwrap();
            assert_eq!(skipped.outcome, Outcome::Skipped);
            assert!(
                skipped.error.unwrap().contains(&first),
                "names the running run"
            );
            // Other jobs are independent.
            assert!(matches!(
                begin_run(&store, "k", Trigger::Manual, "r1", None, None)
                    .await
                    .unwrap(),
                Begin::Started(_)
            ));
            // A run whose replica stopped heartbeating is closed out, and the job can run again.
            sqlx::query("UPDATE job_runs SET heartbeat_at = heartbeat_at - 120000 WHERE id = $1")
                .bind(&first)
                .execute(store.writer())
                .await
                .unwrap();
            assert!(matches!(
                begin_run(&store, "j", Trigger::Schedule, "r2", None, None)
                    .await
                    .unwrap(),
                Begin::Started(_)
            ));
            let old = get_run(&store, &first).await.unwrap().unwrap();
            assert_eq!(old.outcome, Outcome::Failed);
            assert!(old.error.unwrap().starts_with("abandoned"));
        }
    }

    #[tokio::test]
    async fn a_retried_attempt_closes_the_previous_one_and_timeouts_are_recorded() {
        for backend in testing::backends() {
            let (store, _db) = testing::fresh(backend).await;
            let a1 = Attempt {
                queue_job_id: "job_x".into(),
                attempt: 1,
                fire_at: Some(1_700_000_000_000),
            };
            let Begin::Started(r1) = begin_run(
                &store,
                "j",
                Trigger::Schedule,
                "r1",
                Some(&a1),
                Some("run_a".into()),
            )
            .await
            .unwrap() else {
                panic!("{backend}: starts");
            };
            assert_eq!(r1, "run_a");
            // The replica died: the queue re-runs the job as attempt 2 elsewhere, well
            // within the heartbeat staleness window. It must run, not be skipped.
            let a2 = Attempt {
                attempt: 2,
                ..a1.clone()
            };
            let Begin::Started(r2) = begin_run(
                &store,
                "j",
                Trigger::Schedule,
                "r2",
                Some(&a2),
                Some("run_a".into()),
            )
            .await
            .unwrap() else {
                panic!("{backend}: the retry must not be skipped");
            };
            assert_ne!(r2, r1, "a taken id is not reused");
            let old = get_run(&store, &r1).await.unwrap().unwrap();
            assert_eq!(old.outcome, Outcome::Failed);
            assert!(old.error.unwrap().contains("lease expired"));
            let closed = close_timed_out(&store, "job_x", 2, "timed_out: cancelled")
                .await
                .unwrap();
            assert_eq!(closed, Some((r2.clone(), "j".to_string())));
            let run = get_run(&store, &r2).await.unwrap().unwrap();
            assert_eq!(run.outcome, Outcome::TimedOut);
            assert_eq!(run.attempt, Some(2));
            assert!(run.fire_at.is_some());
            // A late finish from the cancelled handler does not overwrite it.
            assert!(!finish_run(&store, &r2, Outcome::Succeeded, None, None, 5)
                .await
                .unwrap());
            let counts = outcome_counts(&store, 0).await.unwrap();
            assert!(counts.contains(&(Outcome::TimedOut, 1)), "{counts:?}");
        }
    }

    #[tokio::test]
    async fn a_bad_outcome_or_corrupt_result_is_a_decode_error() {
        for backend in testing::backends() {
            let (store, _db) = testing::fresh(backend).await;
            let Begin::Started(id) = begin_run(&store, "j", Trigger::Manual, "r", None, None)
                .await
                .unwrap()
            else {
                panic!()
            };
            sqlx::query(
                "UPDATE job_runs SET outcome = 'succeeded', result = '{not json' WHERE id = $1",
            )
            .bind(&id)
            .execute(store.writer())
            .await
            .unwrap();
            let err = get_run(&store, &id).await.unwrap_err().to_string();
            assert!(err.contains("stored JSON is invalid"), "{backend}: {err}");
            sqlx::query("UPDATE job_runs SET outcome = 'exploded', result = NULL WHERE id = $1")
                .bind(&id)
                .execute(store.writer())
                .await
                .unwrap();
            let err = list_runs(&store, None, 10).await.unwrap_err().to_string();
            assert!(err.contains("unknown Outcome"), "{backend}: {err}");
        }
    }
}
