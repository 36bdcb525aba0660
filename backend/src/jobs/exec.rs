//! Scheduled jobs as queue jobs: one queue kind `scheduled:<name>` per job, with the job's
//! timeout, and the handler that records each attempt in `job_runs`.
//!
//! Payload: `{"trigger": "schedule"|"manual"|"startup", "run_id": "run_…", "fire_at": ms,
//! "args": {…}}` (`fire_at` only for scheduled firings, `args` only when the run was asked
//! for with arguments), tenant `_system` (`queue::SYSTEM_TENANT`). A scheduled firing's idempotency key is
//! `scheduled:<name>:<fire_at>`, so however many replicas enqueue it, one job exists.
//! Attempt 1 records its run under `run_id` (what run-now returns); a retry gets a fresh id.

use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use tracing::Instrument;

use super::runs::{self, Attempt, Begin, Outcome};
use super::{JobContext, Jobs, Trigger, RUNS_TOTAL, RUN_DURATION};
use crate::app::AppState;
use crate::queue::{JobCtx, KindSpec, NewJob, SYSTEM_TENANT};
use crate::util::random_id;

pub const KIND_PREFIX: &str = "scheduled:";
const HEARTBEAT_EVERY: Duration = Duration::from_secs(10);
const ERROR_MAX_CHARS: usize = 2000;

/// The queue kind of job `name`.
pub fn kind(name: &str) -> String {
    format!("{KIND_PREFIX}{name}")
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Payload {
    trigger: Trigger,
    run_id: String,
    #[serde(default)]
    fire_at: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    args: Option<Value>,
}

/// Register every job's queue kind (on every replica: any replica's workers may run it).
pub(super) fn register_kinds(state: &AppState, jobs: &Jobs) {
    for name in jobs.names() {
        let timeout = jobs
            .settings(&name)
            .map(|s| Duration::from_secs(s.timeout_secs));
        let store = state.store.clone();
        let on_timeout: crate::queue::kinds::TimeoutHook = std::sync::Arc::new(move |ctx, err| {
            let store = store.clone();
            Box::pin(async move { timed_out(&store, &ctx, &err).await })
        });
        let validate: crate::queue::kinds::ValidateFn = std::sync::Arc::new(|p| {
            serde_json::from_value::<Payload>(p.clone())
                .map(|_| ())
                .map_err(|e| format!("payload of a scheduled job: {e}"))
        });
        let (st, js, n) = (state.clone(), jobs.clone(), name.clone());
        jobs.inner.queue.register_kind(
            &kind(&name),
            KindSpec {
                validate: Some(validate),
                timeout,
                on_timeout: Some(on_timeout),
                internal: true,
            },
            move |ctx, payload| {
                let (st, js, n) = (st.clone(), js.clone(), n.clone());
                async move { handle(st, js, n, ctx, payload).await }
            },
        );
    }
}

/// Enqueue a run of `name`; returns the run id its first attempt records.
pub async fn enqueue(
    jobs: &Jobs,
    name: &str,
    trigger: Trigger,
    fire_at: Option<i64>,
    args: Option<Value>,
) -> anyhow::Result<String> {
    let run_id = random_id("run_", 10);
    let payload = serde_json::to_value(Payload {
        trigger,
        run_id: run_id.clone(),
        fire_at,
        args,
    })?;
    let mut job = NewJob::new(&kind(name), payload);
    // Scheduled work goes before bulk jobs of the same age.
    job.priority = 100;
    job.max_attempts = Some(jobs.inner.defs[name].max_attempts);
    job.idempotency_key = fire_at.map(|t| format!("{KIND_PREFIX}{name}:{t}"));
    let e = jobs.inner.queue.enqueue(SYSTEM_TENANT, job, None).await?;
    if e.created {
        tracing::info!(target: "scheduler", job = name, job_run_id = %run_id, queue_job_id = %e.id, trigger = trigger.as_str(), fire_at, "run enqueued");
        Ok(run_id)
    } else {
        // Another replica enqueued this firing first.
        tracing::debug!(target: "scheduler", job = name, queue_job_id = %e.id, fire_at, "firing already enqueued");
        Ok(String::new())
    }
}

/// Aborts the task when dropped: a cancelled attempt takes its job run with it.
struct AbortOnDrop<T>(tokio::task::JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// One attempt: claim the job's running slot, run it, record the end. An `Err` fails the
/// queue attempt (retry with backoff, then dead).
async fn handle(
    state: AppState,
    jobs: Jobs,
    name: String,
    ctx: JobCtx,
    payload: Value,
) -> Result<Value, String> {
    let p: Payload = serde_json::from_value(payload).map_err(|e| format!("bad payload: {e}"))?;
    let def = jobs
        .inner
        .defs
        .get(&name)
        .ok_or_else(|| format!("no job named {name:?} in this process"))?;
    let store = state.store.clone();
    let attempt = Attempt {
        queue_job_id: ctx.id.clone(),
        attempt: ctx.attempt,
        fire_at: p.fire_at,
    };
    let want_id = (ctx.attempt == 1).then(|| p.run_id.clone());
    let begin = runs::begin_run(
        &store,
        &name,
        p.trigger,
        &state.cfg.replica_id,
        Some(&attempt),
        want_id,
    )
    .await
    .map_err(|e| format!("cannot record the run: {e:#}"))?;
    let run_id = match begin {
        Begin::Overlap { skipped_id } => {
            return Ok(json!({"run_id": skipped_id, "outcome": Outcome::Skipped}))
        }
        Begin::Started(id) => id,
    };
    let span = tracing::info_span!("job_run", job_run_id = %run_id, job = %name);
    let ledger = super::Ledger::default();
    let jctx = JobContext {
        state: state.clone(),
        job: name.clone(),
        run_id: run_id.clone(),
        trigger: p.trigger,
        ledger: ledger.clone(),
        args: p.args.clone().unwrap_or(Value::Null),
    };
    // Written on every way out, a cancellation at the timeout included.
    let flush = super::ledger::FlushOnDrop {
        store: store.clone(),
        data_dir: state.cfg.data_dir.clone(),
        run_id: run_id.clone(),
        job: name.clone(),
        ledger: ledger.clone(),
        done: false,
    };
    let handler = def.handler.clone();
    async move {
        // The whole guard moves in (not just the field written below): it must drop
        // with this future.
        let mut flush = flush;
        tracing::info!(target: "scheduler", job = %name, job_run_id = %run_id, trigger = p.trigger.as_str(), attempt = ctx.attempt, queue_job_id = %ctx.id, "run started");
        let started = Instant::now();
        // Heartbeats tell other replicas this run is alive (see runs::STALE_MS).
        let (hb_store, hb_id) = (store.clone(), run_id.clone());
        let _heartbeat = AbortOnDrop(tokio::spawn(async move {
            let mut every = tokio::time::interval(HEARTBEAT_EVERY);
            every.tick().await;
            loop {
                every.tick().await;
                let _ = runs::heartbeat(&hb_store, &hb_id).await;
            }
        }));
        // Its own task, so a panic in a job is a failed run; aborted with this attempt
        // when the queue cancels it at the timeout.
        let mut task = AbortOnDrop(tokio::spawn((handler)(jctx).in_current_span()));
        let res = (&mut task.0).await;
        if let Ok(Ok(v)) = &res {
            ledger.absorb_result_errors(&name, v);
        }
        let (outcome, error, result) = match res {
            Ok(Ok(v)) if ledger.has_blocking() => {
                let n = ledger.snapshot().errors.iter().filter(|e| e.blocking).count();
                (Outcome::Failed, Some(format!("{n} item(s) failed; see the run's error ledger")), Some(v))
            }
            Ok(Ok(v)) => (Outcome::Succeeded, None, Some(v)),
            Ok(Err(e)) => (Outcome::Failed, Some(format!("{e:#}")), None),
            Err(e) if e.is_panic() => (Outcome::Failed, Some("the job panicked".to_string()), None),
            Err(_) => (Outcome::Failed, Some("the job was cancelled".to_string()), None),
        };
        let error = error.map(|e| crate::util::truncate_chars(&crate::logging::redact_secrets(&e), ERROR_MAX_CHARS));
        let elapsed = started.elapsed();
        let duration_ms = elapsed.as_millis() as i64;
        if let Err(e) = runs::finish_run(&store, &run_id, outcome, error.as_deref(), result.as_ref(), duration_ms).await {
            tracing::error!(target: "scheduler", job = %name, job_run_id = %run_id, error = %e, "could not record the run's end");
        }
        flush.done = true;
        if let Err(e) = super::ledger::persist(&store, &state.cfg.data_dir, &run_id, &name, outcome.as_str(), &ledger).await {
            tracing::error!(target: "scheduler", job = %name, job_run_id = %run_id, error = %format!("{e:#}"), "could not write the error ledger");
        }
        metrics::counter!(RUNS_TOTAL, "job" => name.clone(), "outcome" => outcome.as_str()).increment(1);
        metrics::histogram!(RUN_DURATION, "job" => name.clone()).record(elapsed.as_secs_f64());
        match &error {
            None => tracing::info!(target: "scheduler", job = %name, job_run_id = %run_id, outcome = outcome.as_str(), duration_ms, "run finished"),
            Some(err) => tracing::warn!(target: "scheduler", job = %name, job_run_id = %run_id, outcome = outcome.as_str(), duration_ms, error = %err, "run finished"),
        }
        // Item errors are recorded, not retried (the batch carried on); a failed run is.
        match (result, error) {
            (Some(v), _) => Ok(json!({"run_id": run_id, "outcome": outcome, "result": v})),
            (None, e) => Err(format!("run {run_id}: {}", e.unwrap_or_default())),
        }
    }
    .instrument(span)
    .await
}

/// The queue cancelled an attempt at the job's timeout: close its run as `timed_out`.
async fn timed_out(store: &crate::store::Store, ctx: &JobCtx, err: &str) {
    match runs::close_timed_out(store, &ctx.id, ctx.attempt, err).await {
        Ok(Some((run_id, job))) => {
            metrics::counter!(RUNS_TOTAL, "job" => job.clone(), "outcome" => "timed_out")
                .increment(1);
            tracing::warn!(target: "scheduler", job = %job, job_run_id = %run_id, queue_job_id = %ctx.id, attempt = ctx.attempt, outcome = "timed_out", error = err, "run finished");
        }
        Ok(None) => {}
        Err(e) => {
            tracing::error!(target: "scheduler", queue_job_id = %ctx.id, error = %e, "could not record a timed-out run")
        }
    }
}
